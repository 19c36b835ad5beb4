package replay

import "math/bits"

// table is the set of the anchors of the last memory batches: one
// open-addressing hash table with linear probing over them all, at most
// two thirds full, and, for each batch, the list of its anchors, so that
// the oldest batch's can be deleted when a new one comes. Deletion shifts
// the entries after a deleted one back (Knuth's Algorithm R), so no
// tombstones build up and the table never needs rebuilding: each batch
// costs one insertion and at most one deletion per anchor, and nothing
// more. The fingerprints are random already: their first word, scaled to
// the table's size, is the slot.
type table struct {
	keys   []Fingerprint // the zero Fingerprint marks an empty slot
	live   int
	batch  [][]Fingerprint // each remembered batch's anchors, oldest first
	memory int
}

func newTable(memory int) *table {
	t := &table{memory: memory}
	t.resize(64)
	return t
}

// home is fp's slot: its first word scaled to the table's size.
func (t *table) home(fp Fingerprint) int {
	hi, _ := bits.Mul64(fp[0], uint64(len(t.keys)))
	return int(hi)
}

// next is the slot after j, wrapping around.
func (t *table) next(j int) int {
	if j++; j == len(t.keys) {
		return 0
	}
	return j
}

// resize rehashes every entry into a table of size slots.
func (t *table) resize(size int) {
	keys := t.keys
	t.keys = make([]Fingerprint, size)
	for _, fp := range keys {
		if fp != (Fingerprint{}) {
			t.put(fp)
		}
	}
}

// put inserts fp, known to be absent.
func (t *table) put(fp Fingerprint) {
	j := t.home(fp)
	for t.keys[j] != (Fingerprint{}) {
		j = t.next(j)
	}
	t.keys[j] = fp
}

// key is fp as the table holds it: the zero Fingerprint (which marks an
// empty slot) stands for itself as {0, 1}.
func key(fp Fingerprint) Fingerprint {
	if fp == (Fingerprint{}) {
		return Fingerprint{0, 1}
	}
	return fp
}

// add remembers fps as the newest batch, unless one of them is remembered
// already (or repeats an earlier one of fps): then it takes its insertions
// back and returns that one's index. It returns -1 on success. It keeps
// fps: the caller must not change it afterwards.
func (t *table) add(fps []Fingerprint) int {
	if need := 3 * (t.live + len(fps)) / 2; need > len(t.keys) {
		t.resize(need + need/8) // rare: ForBatch sizes the table for its batches
	}
	for i, fp := range fps {
		fp = key(fp)
		j := t.home(fp)
		for ; t.keys[j] != (Fingerprint{}); j = t.next(j) {
			if t.keys[j] == fp {
				for _, back := range fps[:i] {
					t.delete(back)
				}
				return i
			}
		}
		t.keys[j] = fp
		t.live++
	}
	t.batch = append(t.batch, fps)
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
	fp = key(fp)
	i := t.home(fp)
	for ; t.keys[i] != fp; i = t.next(i) {
		if t.keys[i] == (Fingerprint{}) {
			return // not here (it always is)
		}
	}
	t.keys[i] = Fingerprint{}
	t.live--
	for j := t.next(i); t.keys[j] != (Fingerprint{}); j = t.next(j) {
		home := t.home(t.keys[j])
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j]: then it is already as near home as it can be.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.keys[i], t.keys[j] = t.keys[j], Fingerprint{}
			i = j
		}
	}
}

// bytes is how much memory the table holds: its slots and the lists.
func (t *table) bytes() int {
	n := len(t.keys) * 16
	for _, b := range t.batch {
		n += 16 * cap(b)
	}
	return n
}

// len is the number of fingerprints remembered.
func (t *table) len() int { return t.live }
