// Package replay spots bytes that repeat earlier bytes: a stuck source
// that cycles within a batch, or a lying one that sends a recent batch
// again, whole, shifted or in part.
//
// It works on anchors chosen by content, by winnowing (Schleimer, Wilkerson
// and Aiken, 2003): every position of a batch gets a key computed from the
// 8 bytes there, and in every window of W consecutive positions the one
// with the least key (the rightmost of equals) is an anchor, remembered by
// a 128-bit fingerprint of the 32 bytes (256 bits) that start there. An
// anchor depends only on the bytes of its window, so a run of bytes that
// occurs twice has the same anchors in both places: since every window has
// an anchor, whatever its content, a repeat of at least MinRepeat bytes
// always shares an anchor with the original and is found. No content can
// avoid anchors, and the keys are keyed by a secret drawn for each Index,
// so an upstream cannot tell where the anchors fall either.
//
// Positions are byte offsets (the byte pass) and, for values whose width
// is not a multiple of 8, also value boundaries (the value pass, over the
// bit stream): a batch shifted by a whole number of values is then found
// at any width, though at 12, 7 or 1 bits such a shift is no byte shift.
package replay

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"
)

// Span is how many bytes an anchor fingerprints.
const Span = 32

// Memory is how many recent batches an Index made by ForBatch remembers.
const Memory = 16

// Fingerprint identifies the Span bytes at an anchor: two maphash values
// with independent random seeds.
type Fingerprint [2]uint64

// maxAnchors is the most anchors random content should yield for one
// batch, both passes together: the winnowing window grows with large
// batches to keep the memory of an Index at about Memory * maxAnchors
// fingerprints, whatever the batch size (see MemoryBytes).
const maxAnchors = 16384

// Index finds repeats within a batch and between a batch and the last
// batches it remembers. An Index is not safe for concurrent use, except
// that Scan and Anchors (which read only the Index's parameters) may run
// beside each other and beside one Remember.
type Index struct {
	bits   int // value width; the value pass runs when it is not a multiple of 8
	wByte  int // winnowing window of the byte pass, in byte positions
	wValue int // winnowing window of the value pass, in value positions
	k0, k1 uint64
	s0, s1 maphash.Seed
	memory int

	seen    *table // the anchors of every remembered batch
	batches int    // how many batches it remembers now
}

// ForBatches returns the Index for a stream of bytes in batches of
// batchBytes: ForBatch(batchBytes, 8).
func ForBatches(batchBytes int) *Index { return ForBatch(batchBytes, 8) }

// ForBatch returns the Index this module uses for batches of batchBytes
// bytes of bits-wide values, at a Source and at a pool's filler alike,
// remembering the last Memory batches. The byte pass's window is
// batchBytes/64 positions, at least 16 and at most 256, and larger for
// batches over 2 MiB (1 MiB with a value pass) so that a batch yields
// about maxAnchors anchors at most; see MinRepeat for what that finds
// (47 bytes at a 512-byte batch, 287 from 16 KiB to 2 MiB, 1,008 at 8 MB
// without a value pass, about 1,950 with one).
func ForBatch(batchBytes, bits int) *Index {
	budget := maxAnchors
	if bits%8 != 0 {
		budget /= 2 // two passes share it
	}
	w := min(max(batchBytes/64, 16), 256)
	w = max(w, (2*batchBytes+budget-1)/budget)
	x := New(w, bits, Memory)
	// Room for the anchors of Memory+1 random batches (the oldest is
	// dropped after the newest is in), so the table need not grow.
	perBatch := 2*batchBytes/(x.wByte+1) + 16
	if x.wValue > 0 {
		perBatch += 2 * (8 * batchBytes / bits) / (x.wValue + 1)
	}
	x.seen.resize(3 * (Memory + 1) * (perBatch + perBatch/16) / 2)
	return x
}

// New returns an Index whose byte pass winnows over windows of window
// positions (at least 2), for bits-wide values (1..64), remembering
// memory batches (at least 1). The value pass, for widths that are not a
// multiple of 8, gets the window that finds repeats of the same length in
// bits.
func New(window, bits, memory int) *Index {
	if bits < 1 || bits > 64 {
		panic(fmt.Sprintf("replay: value width %d outside 1..64", bits))
	}
	x := &Index{bits: bits, wByte: max(window, 2), memory: max(memory, 1),
		s0: maphash.MakeSeed(), s1: maphash.MakeSeed()}
	x.seen = newTable(x.memory)
	if bits%8 != 0 {
		x.wValue = 8*(x.wByte-1)/bits + 1
	}
	var k [16]byte
	rand.Read(k[:])
	x.k0, x.k1 = binary.LittleEndian.Uint64(k[:]), binary.LittleEndian.Uint64(k[8:])|1
	return x
}

// MinRepeat is the length, in bytes, of the shortest repeat always found:
// a run of at least this many bytes that occurs twice, in one batch or in
// a batch and one of the remembered batches, at byte offsets, shares an
// anchor (the Span bytes at a position, plus W-1 more positions so that
// a whole window lies inside the run). ValueRepeat is the same in bits
// for a repeat at value boundaries (0 if there is no value pass: at
// widths that are multiples of 8 value boundaries are byte offsets).
func (x *Index) MinRepeat() (bytes, valueBits int) {
	bytes = Span + x.wByte - 1
	if x.wValue > 0 {
		valueBits = 8*Span + (x.wValue-1)*x.bits
	}
	return bytes, valueBits
}

// Scan returns the fingerprints of b's anchors, byte pass first. It
// returns an error instead when the scan itself shows that b repeats
// itself (two anchors in a row with the same fingerprint: a run of
// identical positions, as a short cycle makes) or that b is far from
// random (more anchors than random data yields with any probability worth
// counting: see anchorBound). It reads only b and the Index's parameters.
func (x *Index) Scan(b []byte) ([]Fingerprint, error) {
	// Room for the anchors random content yields (about 2 per window of
	// positions) in both passes, with some to spare.
	expect := 2*len(b)/(x.wByte+1) + 16
	if x.wValue > 0 {
		expect += 2 * (8 * len(b) / x.bits) / (x.wValue + 1)
	}
	out, err := x.pass(b, false, make([]Fingerprint, 0, expect+expect/8))
	if err != nil {
		return out, err
	}
	if x.wValue > 0 {
		out, err = x.pass(b, true, out)
	}
	return out, err
}

// Anchors is Scan for callers that only Remember: when Scan finds b
// repeating itself, the list it returns ends with a repeated
// fingerprint, so that Remember rejects it.
func (x *Index) Anchors(b []byte) []Fingerprint {
	a, err := x.Scan(b)
	if err != nil && len(a) > 0 {
		a = append(a, a[len(a)-1])
	} else if err != nil {
		a = []Fingerprint{{}, {}}
	}
	return a
}

// Remember checks anchors against the remembered batches and against each
// other. If none repeats, it remembers them as the newest batch (forgetting
// the oldest past its memory) and returns -1; else it returns the index of
// the first anchor that repeats and remembers nothing. It keeps anchors:
// the caller must not change the slice afterwards.
func (x *Index) Remember(anchors []Fingerprint) int {
	i := x.seen.add(anchors)
	if i < 0 {
		x.batches = min(x.batches+1, x.memory)
	}
	return i
}

// Remembered is how many batches the Index remembers now, and how many
// anchors in all.
func (x *Index) Remembered() (batches, anchors int) { return x.batches, x.seen.len() }

// MemoryBytes is how much memory the Index holds for what it remembers:
// about 45 bytes an anchor (1.1 MiB at the default batch of 16-bit
// values, under 12 MiB at the largest batches).
func (x *Index) MemoryBytes() int { return x.seen.bytes() }

// A pass winnows over positions: byte offsets, or (values) value
// boundaries of the bit stream. At each position it reads 8 bytes for the
// key and 32 for the fingerprint, the value pass one more for the bit
// shift; a position is used only if they lie inside b.
type pass struct {
	b      []byte
	values bool
	stride uint // bits from one position to the next
	n      int  // positions
	w      int  // window
	k0, k1 uint64
}

// newPass returns the byte pass or the value pass over b.
func (x *Index) newPass(b []byte, values bool) *pass {
	p := &pass{b: b, values: values, stride: 8, w: x.wByte, k0: x.k0, k1: x.k1}
	if values {
		p.stride, p.w = uint(x.bits), x.wValue
		if len(b) >= Span+1 {
			p.n = (8*(len(b)-Span-1))/x.bits + 1 // o>>3 + Span+1 <= len(b)
		}
	} else {
		p.n = max(len(b)-Span+1, 0)
	}
	return p
}

func (x *Index) pass(b []byte, values bool, out []Fingerprint) ([]Fingerprint, error) {
	p := x.newPass(b, values)
	if p.n <= 0 {
		return out, nil
	}
	first := len(out)
	bound := anchorBound(p.n, p.w)
	var last Fingerprint
	var lastPos int
	err := p.winnow(func(pos int) error {
		fp := x.fingerprint(p, pos)
		if len(out) > first && fp == last {
			return fmt.Errorf("the %d bytes at %s repeat at %s of the same batch", Span, p.where(lastPos), p.where(pos))
		}
		if len(out)-first >= bound {
			return fmt.Errorf("its content selects more than %d anchors in %d positions (random data selects about %d): it is far from random",
				bound, p.n, 2*p.n/(p.w+1))
		}
		out = append(out, fp)
		last, lastPos = fp, pos
		return nil
	})
	return out, err
}

// where names position pos in an error.
func (p *pass) where(pos int) string {
	if !p.values {
		return fmt.Sprintf("byte %d", pos)
	}
	return fmt.Sprintf("value %d", pos)
}

// anchorBound is the most anchors a pass over n random positions with
// window w yields, but with probability below 2^-46; beyond it a batch is
// rejected as far from random.
//
// A full window's least key changes at step i only if the key at i is
// less than the w-1 before it (event A_i), or if the least key of the
// window ending at i-1 is its first (event B_i, the least key leaves).
// Treat the keys of random content as independent and continuous (a
// keyed mixing of each position's 8 bytes: equal only for equal bytes),
// so that P[A_i] = P[B_i] = 1/w. A_i and A_j (or B_i and B_j) are
// independent when |i-j| >= w+8: their windows' keys read no byte in
// common. Split the positions into s = w+8 classes by i mod s; each
// class's count of A events is Binomial(m, 1/w) at most, m = ceil(n/s).
// If the A events total at least s*k, some class has at least k, so
// P[A >= s*k] <= s * P[Binomial(m, 1/w) >= k] <= s * (e*m/(w*k))^k (the
// Chernoff bound). With k = max(8*m/w, 64), e*m/(w*k) <= e/8 and
// s * (e/8)^64 < 2^21 * 2^-99 < 2^-47; the same for B. The first window
// adds one anchor. So the anchors number at most 2*s*k + 1 but with
// probability 2^-46; a repeated-keys case (equal content, a short cycle)
// can pass this bound, and the scan catches that directly. The healthy
// but imperfect sources that package health's cutoffs admit (biased
// bits, bits leaning on the one before) are not uniform, but their keys
// are as distinct (a tie needs 8 equal bytes, of at least 56 bits of
// min-entropy), and their anchors stay as far below the bound: that is
// measured (TestBiasedBatchesPass), not derived.
func anchorBound(n, w int) int {
	s := w + 8
	m := (n + s - 1) / s
	k := max((8*m+w-1)/w, 64)
	return 2*s*k + 1
}

// key is the winnowing key of the 64 bits at position pos: a bijection of
// them, keyed, so equal keys mean equal bits.
func (p *pass) key(pos int) uint64 {
	return (p.gram(pos) ^ p.k0) * p.k1
}

// gram returns the 64 bits at position pos (the byte pass), or the 56
// bits there (the value pass: one load whatever the bit shift).
func (p *pass) gram(pos int) uint64 {
	if !p.values {
		return binary.LittleEndian.Uint64(p.b[pos:])
	}
	o := uint(pos) * p.stride
	return binary.BigEndian.Uint64(p.b[o>>3:]) << (o & 7) >> 8
}

// bitsAt returns the 64 bits of b starting at bit o (most significant
// first); b must hold the 9 bytes from o/8.
func bitsAt(b []byte, o uint) uint64 {
	j, s := o>>3, o&7
	return binary.BigEndian.Uint64(b[j:])<<s | uint64(b[j+8])>>(8-s)
}

func (x *Index) fingerprint(p *pass, pos int) Fingerprint {
	if !p.values {
		s := p.b[pos : pos+Span]
		return Fingerprint{maphash.Bytes(x.s0, s), maphash.Bytes(x.s1, s)}
	}
	var s [Span]byte
	o := uint(pos) * p.stride
	for i := 0; i < Span; i += 8 {
		binary.BigEndian.PutUint64(s[i:], bitsAt(p.b, o+uint(8*i)))
	}
	// The value pass's fingerprints differ from the byte pass's for the
	// same bits, so a position that is both a byte offset and a value
	// boundary is not taken for a repeat of itself.
	return Fingerprint{maphash.Bytes(x.s0, s[:]), maphash.Bytes(x.s1, s[:]) ^ 0x9E3779B97F4A7C15}
}

// winnow calls anchor, in order, with the position of the least key (the
// rightmost of equals) of every full window of w positions, each time it
// changes; of the one partial window if there are fewer than w positions.
// It stops at the first error anchor returns.
//
// Most windows' least keys are small: it first collects the positions
// whose keys are below a threshold at which a window of random content
// holds about 20, and winnows over those alone when every full window
// holds at least one (the least key of a window is then one of them).
// Otherwise (a window of random content lacks one with probability about
// e^-20), and for small windows, it winnows over every position.
func (p *pass) winnow(anchor func(pos int) error) error {
	if p.w <= 64 || p.n < p.w {
		return p.winnowAll(anchor)
	}
	const perWindow = 20
	tau := ^uint64(0) / uint64(p.w) * perWindow
	expect := perWindow * (p.n / p.w)
	cp := candidates.Get().(*[]int32)
	defer func() { candidates.Put(cp) }()
	cand := slices.Grow((*cp)[:0], expect+expect/4+2*collectBlock)
	defer func() { *cp = cand[:0] }()
	for start := 0; start < p.n; start += collectBlock {
		if len(cand) > 4*expect+collectBlock {
			return p.winnowAll(anchor) // far more than random content has
		}
		cand = slices.Grow(cand, collectBlock+1)
		k := p.collect(start, min(start+collectBlock, p.n), tau, cand[len(cand):cap(cand)])
		cand = cand[:len(cand)+k]
	}
	k := len(cand)
	if k == 0 || int(cand[0]) >= p.w || int(cand[k-1]) < p.n-p.w {
		return p.winnowAll(anchor)
	}
	for j := 1; j < k; j++ {
		if int(cand[j]-cand[j-1]) >= p.w {
			return p.winnowAll(anchor)
		}
	}
	// The first full window.
	j, mj, minv := 0, -1, ^uint64(0)
	for ; j < k && int(cand[j]) < p.w; j++ {
		if g := p.key(int(cand[j])); g <= minv {
			minv, mj = g, j
		}
	}
	if err := anchor(int(cand[mj])); err != nil {
		return err
	}
	for {
		// Candidate j enters at step cand[j]; the least key leaves at
		// step exp (the window ending there no longer holds it).
		exp := int(cand[mj]) + p.w
		if j < k && int(cand[j]) <= exp {
			if g := p.key(int(cand[j])); g <= minv {
				minv, mj = g, j
				j++
				if err := anchor(int(cand[mj])); err != nil {
					return err
				}
				continue
			}
			j++
			if int(cand[j-1]) < exp {
				continue
			}
		} else if exp >= p.n {
			return nil
		}
		// The window ending at exp: its candidates are those after mj that
		// have entered.
		minv = ^uint64(0)
		for q := mj + 1; q < j; q++ {
			if g := p.key(int(cand[q])); g <= minv {
				minv, mj = g, q
			}
		}
		if err := anchor(int(cand[mj])); err != nil {
			return err
		}
	}
}

// candidates holds the winnowing's scratch lists for reuse: a batch's
// list is about 20 positions a window, tens of thousands at large batches.
var candidates = sync.Pool{New: func() any { return new([]int32) }}

// collectBlock is how many positions collect looks at in one call.
const collectBlock = 1024

// collect writes the positions in [from, to) whose keys are below tau to
// cand, in order, and returns how many there are. cand must have room for
// to-from+1 entries: every position is written, and kept by advancing
// past it, without a branch.
func (p *pass) collect(from, to int, tau uint64, cand []int32) int {
	cand = cand[:to-from+1]
	k, k0, k1 := 0, p.k0, p.k1
	if !p.values {
		b := p.b[from : to+7]
		m := to - from
		i := 0
		for ; i+4 <= m; i += 4 { // four at a time: the loads and multiplies overlap
			w := b[i : i+11]
			g0 := (binary.LittleEndian.Uint64(w[0:]) ^ k0) * k1
			g1 := (binary.LittleEndian.Uint64(w[1:]) ^ k0) * k1
			g2 := (binary.LittleEndian.Uint64(w[2:]) ^ k0) * k1
			g3 := (binary.LittleEndian.Uint64(w[3:]) ^ k0) * k1
			_, b0 := bits.Sub64(g0, tau, 0)
			_, b1 := bits.Sub64(g1, tau, 0)
			_, b2 := bits.Sub64(g2, tau, 0)
			_, b3 := bits.Sub64(g3, tau, 0)
			pos := int32(from + i)
			cand[k] = pos
			k += int(b0)
			cand[k] = pos + 1
			k += int(b1)
			cand[k] = pos + 2
			k += int(b2)
			cand[k] = pos + 3
			k += int(b3)
		}
		for ; i < m; i++ {
			g := (binary.LittleEndian.Uint64(b[i:]) ^ k0) * k1
			cand[k] = int32(from + i)
			_, below := bits.Sub64(g, tau, 0)
			k += int(below)
		}
		return k
	}
	stride := p.stride
	b := p.b[:(uint(to-1)*stride)>>3+8]
	o := uint(from) * stride
	for i := from; i < to; i++ {
		x := binary.BigEndian.Uint64(b[o>>3:]) << (o & 7) >> 8 // as gram
		g := (x ^ k0) * k1
		cand[k] = int32(i)
		_, below := bits.Sub64(g, tau, 0)
		k += int(below)
		o += stride
	}
	return k
}

// winnowAll is winnow over every position.
func (p *pass) winnowAll(anchor func(pos int) error) error {
	w := min(p.w, p.n)
	minv, minp := ^uint64(0), -1
	for i := range w {
		if g := p.key(i); g <= minv {
			minv, minp = g, i
		}
	}
	if err := anchor(minp); err != nil {
		return err
	}
	for i := w; i < p.n; i++ {
		g := p.key(i)
		if g <= minv {
			minv, minp = g, i
			if err := anchor(i); err != nil {
				return err
			}
			continue
		}
		if minp > i-w {
			continue
		}
		minv = ^uint64(0)
		for j := i - w + 1; j <= i; j++ {
			if gj := p.key(j); gj <= minv {
				minv, minp = gj, j
			}
		}
		if err := anchor(minp); err != nil {
			return err
		}
	}
	return nil
}
