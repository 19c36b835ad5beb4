package replay

// table is a set of fingerprints, each tagged with the generation (the
// batch) that added it, in one open-addressing hash table with linear
// probing: a fingerprint is in the set while its generation is one of the
// last memory. Forgetting a generation costs nothing: its slots become
// dead, and are reused by later insertions or dropped when the table is
// rebuilt (whenever it is half full, live or dead). The fingerprints are
// random already, so their first word is the hash.
type table struct {
	keys   []Fingerprint
	gens   []uint32 // 0: empty; dead: undone; else the generation that added it
	used   int      // slots not empty
	gen    uint32   // the newest generation added; live ones are gen-memory+1..gen
	memory uint32
}

const dead = 1 // the generation of an insertion taken back; real ones start at 2

func newTable(memory int) *table {
	t := &table{memory: uint32(memory), gen: dead}
	t.resize(1024)
	return t
}

func (t *table) live(g uint32) bool { return g > dead && g+t.memory > t.gen }

func (t *table) resize(size int) {
	keys, gens := t.keys, t.gens
	t.keys, t.gens, t.used = make([]Fingerprint, size), make([]uint32, size), 0
	mask := uint64(size - 1)
	for i, g := range gens {
		if !t.live(g) {
			continue
		}
		j := keys[i][0] & mask
		for t.gens[j] != 0 {
			j = (j + 1) & mask
		}
		t.keys[j], t.gens[j] = keys[i], g
		t.used++
	}
}

// add inserts every fingerprint of fps into a new generation, unless one
// of them is live already (or repeats an earlier one of fps): then it
// takes the insertions back and returns that one's index. It returns -1
// on success.
func (t *table) add(fps []Fingerprint) int {
	if 2*(t.used+len(fps)) > len(t.keys) {
		live := 0
		for _, g := range t.gens {
			if t.live(g) {
				live++
			}
		}
		size := 1024
		for size < 4*(live+len(fps)) {
			size *= 2
		}
		t.resize(size)
	}
	cur := t.gen + 1
	mask := uint64(len(t.keys) - 1)
	for i, fp := range fps {
		j := fp[0] & mask
		free := -1 // the first dead slot on the way, to reuse
		for {
			g := t.gens[j]
			if g == 0 {
				break
			}
			if g == cur || t.live(g) {
				if t.keys[j] == fp {
					t.undo(fps[:i], cur)
					return i
				}
			} else if free < 0 {
				free = int(j)
			}
			j = (j + 1) & mask
		}
		if free < 0 {
			free = int(j)
			t.used++
		}
		t.keys[free], t.gens[free] = fp, cur
	}
	t.gen = cur
	return -1
}

// undo takes back the insertions of fps into generation cur: their slots
// become dead (not empty, which would cut other fingerprints' probe
// sequences).
func (t *table) undo(fps []Fingerprint, cur uint32) {
	mask := uint64(len(t.keys) - 1)
	for _, fp := range fps {
		for j := fp[0] & mask; t.gens[j] != 0; j = (j + 1) & mask {
			if t.gens[j] == cur && t.keys[j] == fp {
				t.gens[j] = dead
				break
			}
		}
	}
}

// len is the number of live fingerprints.
func (t *table) len() int {
	n := 0
	for _, g := range t.gens {
		if t.live(g) {
			n++
		}
	}
	return n
}
