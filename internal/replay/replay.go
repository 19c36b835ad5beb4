// Package replay spots bytes that repeat earlier bytes at any offset: a
// stuck or lying source that sends a batch again, whole, shifted or in
// part, or repeats itself within a batch.
//
// It works on anchors chosen by content, not by position: a rolling hash
// runs over every Window-byte run of a batch, and the runs whose hash
// meets a condition (on average one run in Spacing) become anchors, each
// remembered by a 128-bit fingerprint. Since the choice depends only on
// the bytes, a repeated run of bytes has the same anchors wherever it
// lies, so a repeat of a few Spacings or more of bytes is found with near
// certainty (a repeat of L bytes holds no anchor with probability about
// exp(-L/Spacing)). Genuine random batches share a fingerprint with
// probability about 2^-100 per pair of anchors.
package replay

import "math/bits"

// Window is the length of the byte runs that anchors fingerprint.
const Window = 32

// Two rolling polynomial hashes modulo 2^64 with odd bases; together they
// fingerprint a run.
const (
	base1 = 0x100000001b3 | 1
	base2 = 0x9E3779B97F4A7C15 | 1
	mix   = 0xD6E8FEB86659FD93
)

// Fingerprint identifies a Window-byte run.
type Fingerprint [2]uint64

// Memory is how many recent batches ForBatches remembers.
const Memory = 16

// ForBatches returns the Index this module uses for batches of batchBytes,
// at a Source and at a pool's filler alike: anchors about every 64 bytes,
// or sparser for large batches so that each keeps at most about 8192 (a
// repeat must then be a few KiB long to be seen), over the last Memory
// batches.
func ForBatches(batchBytes int) *Index { return New(max(64, batchBytes/8192), Memory) }

// Index remembers the anchors of the last Memory batches. An Index is not
// safe for concurrent use.
type Index struct {
	shift  uint // anchor when the mixed hash's top bits, 64-shift of them, are zero
	memory int
	gens   []map[Fingerprint]struct{} // oldest first
}

// New returns an Index that anchors about one run in spacing (rounded up
// to a power of two, at least 2) and remembers memory batches.
func New(spacing, memory int) *Index {
	k := bits.Len(uint(max(spacing, 2) - 1)) // spacing <= 2^k
	return &Index{shift: uint(64 - k), memory: max(memory, 1)}
}

// Anchors returns the fingerprints of b's anchors, in order. It reads
// only b, so it may run without the caller's lock.
func (x *Index) Anchors(b []byte) []Fingerprint {
	if len(b) < Window {
		return nil
	}
	var pow1, pow2 uint64 = 1, 1 // base^(Window-1)
	for range Window - 1 {
		pow1 *= base1
		pow2 *= base2
	}
	var h1, h2 uint64
	for _, c := range b[:Window] {
		h1 = h1*base1 + uint64(c)
		h2 = h2*base2 + uint64(c)
	}
	var out []Fingerprint
	for i := Window; ; i++ {
		if (h1*mix)>>x.shift == 0 {
			out = append(out, Fingerprint{h1, h2})
		}
		if i == len(b) {
			return out
		}
		outb, in := uint64(b[i-Window]), uint64(b[i])
		h1 = (h1-outb*pow1)*base1 + in
		h2 = (h2-outb*pow2)*base2 + in
	}
}

// Remember checks anchors against the remembered batches and against each
// other. If none repeats, it remembers them as the newest batch (dropping
// the oldest past Memory) and returns -1; else it returns the index of
// the first anchor that repeats and remembers nothing.
func (x *Index) Remember(anchors []Fingerprint) int {
	cur := make(map[Fingerprint]struct{}, len(anchors))
	for i, a := range anchors {
		if _, dup := cur[a]; dup {
			return i
		}
		for _, g := range x.gens {
			if _, dup := g[a]; dup {
				return i
			}
		}
		cur[a] = struct{}{}
	}
	if len(x.gens) == x.memory {
		x.gens = append(x.gens[:0], x.gens[1:]...)
	}
	x.gens = append(x.gens, cur)
	return -1
}
