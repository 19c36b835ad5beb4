package replay

// table is the set of the anchors of the last memory batches: one
// open-addressing hash table with linear probing over them all, and, for
// each batch, the list of its anchors, so that the oldest batch's can be
// deleted when a new one comes. Deletion shifts the entries after a
// deleted one back (Knuth's Algorithm R), so no tombstones build up and
// the table never needs rebuilding: each batch costs one insertion and
// at most one deletion per anchor, and nothing more. The fingerprints are
// random already, so their first word is the hash.
type table struct {
	keys   []Fingerprint
	full   []bool
	live   int
	batch  [][]Fingerprint // each remembered batch's anchors, oldest first
	memory int
}

func newTable(memory int) *table {
	t := &table{memory: memory}
	t.resize(64)
	return t
}

func (t *table) mask() uint64 { return uint64(len(t.keys) - 1) }

// resize rehashes every entry into a table of size slots (a power of two).
func (t *table) resize(size int) {
	keys, full := t.keys, t.full
	t.keys, t.full = make([]Fingerprint, size), make([]bool, size)
	for i, f := range full {
		if f {
			t.put(keys[i])
		}
	}
}

// put inserts fp, known to be absent, and returns its slot.
func (t *table) put(fp Fingerprint) uint64 {
	j := fp[0] & t.mask()
	for t.full[j] {
		j = (j + 1) & t.mask()
	}
	t.keys[j], t.full[j] = fp, true
	return j
}

// add remembers fps as the newest batch, unless one of them is remembered
// already (or repeats an earlier one of fps): then it takes its insertions
// back and returns that one's index. It returns -1 on success. It keeps
// a copy of fps.
func (t *table) add(fps []Fingerprint) int {
	if need := 2 * (t.live + len(fps)); need > len(t.keys) {
		size := len(t.keys)
		for size < need {
			size *= 2
		}
		t.resize(size)
	}
	for i, fp := range fps {
		j := fp[0] & t.mask()
		for ; t.full[j]; j = (j + 1) & t.mask() {
			if t.keys[j] == fp {
				for _, back := range fps[:i] {
					t.delete(back)
				}
				return i
			}
		}
		t.keys[j], t.full[j] = fp, true
		t.live++
	}
	t.batch = append(t.batch, append([]Fingerprint(nil), fps...))
	if len(t.batch) > t.memory {
		for _, fp := range t.batch[0] {
			t.delete(fp)
		}
		t.batch[0] = nil
		t.batch = t.batch[1:]
	}
	return -1
}

// delete removes fp, which is in the table, and moves back every entry of
// the run after it that would otherwise no longer be found.
func (t *table) delete(fp Fingerprint) {
	m := t.mask()
	i := fp[0] & m
	for ; t.keys[i] != fp; i = (i + 1) & m {
		if !t.full[i] {
			return // not here (it always is)
		}
	}
	t.full[i], t.keys[i] = false, Fingerprint{}
	t.live--
	for j := (i + 1) & m; t.full[j]; j = (j + 1) & m {
		home := t.keys[j][0] & m
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j]: then it is already as near home as it can be.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.keys[i], t.full[i] = t.keys[j], true
			t.full[j], t.keys[j] = false, Fingerprint{}
			i = j
		}
	}
}

// len is the number of fingerprints remembered.
func (t *table) len() int { return t.live }
