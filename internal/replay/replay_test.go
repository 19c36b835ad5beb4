package replay

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/qrng-go/qrng/internal/lowentropy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func random(n int) []byte { b := make([]byte, n); crand.Read(b); return b }

// The widths the tests try: bytes, values that straddle bytes in every
// way (12: two per 3 bytes; 7 and 63: odd; 1: bits), and whole words.
var widths = []int{1, 7, 8, 12, 16, 63, 64}

// sizes are the batch sizes tried at a width: the smallest, a small one
// and the default (100,000 values); under the race detector, which slows
// these loops a hundredfold, the default only at 12 and 16 bits.
func sizes(bits int) []int {
	if raceEnabled && bits != 12 && bits != 16 {
		return []int{512, 4096}
	}
	return []int{512, 4096, 100_000 * bits / 8}
}

// shiftBits returns b's bit stream moved later by k bits: k random bits
// first, then b's bits, cut at len(b) bytes.
func shiftBits(b []byte, k int) []byte {
	q, r := k/8, uint(k%8)
	src := append(random(q+1), b...) // src's bit 8(q+1)+i is b's bit i
	out := make([]byte, len(b))
	for i := range out {
		// out's bit 8i is b's bit 8i-k, src's bit 8i+8-r: the low r bits
		// of src[i], then the high 8-r of src[i+1].
		out[i] = src[i]<<(8-r) | src[i+1]>>r
	}
	return out
}

// dropBits returns b's bit stream moved earlier by k bits, random bits
// filling the end.
func dropBits(b []byte, k int) []byte {
	q, r := k/8, uint(k%8)
	src := append(slices.Clone(b[q:]), random(2)...)
	out := make([]byte, len(b))
	for i := range len(b) - q {
		out[i] = src[i]<<r | src[i+1]>>(8-r)
	}
	crand.Read(out[len(b)-q:])
	return out
}

// minRepeatBytes is the shortest repeat at byte offsets and, for a value
// pass, at value boundaries (in whole bytes, rounded up) that x finds.
func minRepeatBytes(x *Index) int {
	b, v := x.MinRepeat()
	return max(b, (v+7)/8)
}

func remembers(t *testing.T, x *Index, b []byte) {
	t.Helper()
	a, err := x.Scan(b)
	require.NoError(t, err)
	require.Equal(t, -1, x.Remember(a), "a genuine batch is taken for a repeat")
}

// found reports whether x finds b repeating itself or a remembered batch.
func found(x *Index, b []byte) bool {
	a, err := x.Scan(b)
	return err != nil || x.Remember(a) >= 0
}

// A replayed batch is found however it is shifted: by whole values at
// every width (bit shifts at 12, 7 and 1 bits, not byte shifts), by a
// byte, in part, from any of the last 16 batches, at the smallest batch
// and at large ones.
func TestReplaysFound(t *testing.T) {
	for _, bits := range widths {
		for _, size := range sizes(bits) {
			t.Run(fmt.Sprintf("%dbit/%dB", bits, size), func(t *testing.T) {
				x := ForBatch(size, bits)
				run := minRepeatBytes(x)
				cases := map[string]func(first []byte) []byte{
					"the same batch":        func(f []byte) []byte { return slices.Clone(f) },
					"shifted by one value":  func(f []byte) []byte { return shiftBits(f, bits) },
					"shifted by 3 values":   func(f []byte) []byte { return shiftBits(f, 3*bits) },
					"shifted back a value":  func(f []byte) []byte { return dropBits(f, bits) },
					"shifted by one byte":   func(f []byte) []byte { return append(random(1), f[:len(f)-1]...) },
					"a run of it, anywhere": func(f []byte) []byte { b := random(len(f)); copy(b[len(f)-run-3:], f[5:5+run]); return b },
				}
				for name, second := range cases {
					first := random(size)
					remembers(t, x, first)
					assert.True(t, found(x, second(first)), "%s", name)
				}
				// A batch from 15 batches ago is still remembered.
				old := random(size)
				remembers(t, x, old)
				for range Memory - 1 {
					remembers(t, x, random(size))
				}
				assert.True(t, found(x, old), "a batch 15 batches old")
			})
		}
	}
}

// The first release's anchor rule, for the regression below: a 32-byte
// rolling hash whose mixed value has its top 6 bits zero.
func oldRuleAnchors(b []byte) int {
	const base1, base2, mix = 0x100000001b3 | 1, 0x9E3779B97F4A7C15 | 1, 0xD6E8FEB86659FD93
	var pow1, h1 uint64 = 1, 0
	for range 31 {
		pow1 *= base1
	}
	for _, c := range b[:32] {
		h1 = h1*base1 + uint64(c)
	}
	n := 0
	for i := 32; ; i++ {
		if (h1*mix)>>58 == 0 {
			n++
		}
		if i == len(b) {
			return n
		}
		h1 = (h1-uint64(b[i-32])*pow1)*base1 + uint64(b[i])
	}
}

// Issue 15.2: the anchor rule is public, so an upstream can send a
// smallest batch that has no anchor under it (about 1 in 1,900 random
// 512-byte batches), and replay it for ever. Now every window has an
// anchor, whatever its content: such a batch is found like any other.
func TestAnchorlessUnderTheOldRuleIsFound(t *testing.T) {
	var b []byte
	for b == nil || oldRuleAnchors(b) != 0 {
		b = random(512)
	}
	for _, bits := range widths {
		x := ForBatch(512, bits)
		a, err := x.Scan(b)
		require.NoError(t, err)
		assert.NotEmpty(t, a)
		require.Equal(t, -1, x.Remember(a))
		assert.True(t, found(x, slices.Clone(b)), "%d bits: a replay of a batch anchorless by the old rule", bits)
	}
}

// Every full window of positions has an anchor, whatever the content: for
// random batches of every size the anchors never lie further apart than a
// window, and no batch is anchorless.
func TestEveryWindowHasAnAnchor(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 300
	if raceEnabled {
		rounds = 60
	}
	for range rounds {
		n := 512 + r.IntN(20000)
		bits := 1 + r.IntN(64)
		x := ForBatch(n, bits)
		b := random(n)
		for _, values := range []bool{false, true} {
			p := x.newPass(b, values)
			if p.n == 0 || (values && x.wValue == 0) {
				continue
			}
			var pos []int
			require.NoError(t, p.winnow(func(q int) error { pos = append(pos, q); return nil }))
			require.NotEmpty(t, pos, "n=%d bits=%d", n, bits)
			if p.n >= p.w {
				assert.Less(t, pos[0], p.w, "the first window's anchor")
				assert.GreaterOrEqual(t, pos[len(pos)-1], p.n-p.w, "the last window's anchor")
			}
			for i := 1; i < len(pos); i++ {
				require.Greater(t, pos[i], pos[i-1], "anchors in order, each once")
				require.LessOrEqual(t, pos[i]-pos[i-1], p.w, "n=%d bits=%d values=%v: a window with no anchor", n, bits, values)
			}
		}
	}
}

// The fast path (winnowing over the positions with small keys) selects
// exactly what winnowing over every position does.
func TestWinnowFastPathIsExact(t *testing.T) {
	for _, bits := range widths {
		for _, n := range append(sizes(bits), 5000) {
			x := ForBatch(n, bits)
			b := random(n)
			for _, values := range []bool{false, true} {
				p := x.newPass(b, values)
				if values && x.wValue == 0 {
					continue
				}
				var fast, all []int
				require.NoError(t, p.winnow(func(q int) error { fast = append(fast, q); return nil }))
				require.NoError(t, p.winnowAll(func(q int) error { all = append(all, q); return nil }))
				assert.Equal(t, all, fast, "bits=%d n=%d values=%v", bits, n, values)
			}
		}
	}
}

// Issue 15.1: a stuck cycle of any period up to 4 KiB inside a batch is
// found, in bytes and in values at every width, whatever its content.
func TestStuckCyclesFound(t *testing.T) {
	for _, bits := range widths {
		for _, size := range sizes(bits) {
			x := ForBatch(size, bits)
			run := minRepeatBytes(x)
			for _, period := range []int{1, 2, 3, 24, 32, 64, 128, 256, 1000, 4096} {
				if period+run > size {
					continue // the batch holds less than one repeat that is sure to be found
				}
				cycle := random(period)
				b := make([]byte, size)
				for i := range b {
					b[i] = cycle[i%period]
				}
				assert.True(t, found(x, b), "%d bits, %d bytes: byte cycle of %d", bits, size, period)
			}
			// A cycle of a number of values that is no whole number of bytes.
			for _, values := range []int{3, 37, 1001, 8*4096/bits - 1} {
				periodBits := values * bits
				if periodBits%8 == 0 || (periodBits+7)/8+run > size || periodBits > 8*4096 {
					continue
				}
				// The cycle's bits, then the bits so far again after them,
				// doubling until the batch is full: periodic throughout.
				b := random(size)
				for have := periodBits; have < 8*size; have *= 2 {
					next := shiftBits(b, have) // next's bits from have on are b's from 0
					i := have / 8
					keep := ^byte(0xff >> (have % 8)) // the bits of b[i] before have
					b[i] = b[i]&keep | next[i]&^keep
					copy(b[i+1:], next[i+1:])
				}
				for i := 0; i+periodBits < 8*size; i += 8*size/64 + 1 {
					j := i + periodBits
					require.Equal(t, b[i/8]>>(7-i%8)&1, b[j/8]>>(7-j%8)&1, "the batch is periodic")
				}
				assert.True(t, found(x, b), "%d bits, %d bytes: cycle of %d values", bits, size, values)
			}
		}
	}
}

// Genuine batches are never taken for repeats: of themselves, or of any
// of the 16 before, at every width.
func TestGenuineBatchesPass(t *testing.T) {
	for _, bits := range widths {
		for _, size := range sizes(bits) {
			x := ForBatch(size, bits)
			count := 60
			if size > 50_000 || raceEnabled {
				count = Memory + 2
			}
			for range count {
				remembers(t, x, random(size))
			}
			batches, anchors := x.Remembered()
			assert.Equal(t, Memory, batches)
			a, _ := x.Scan(random(size))
			assert.LessOrEqual(t, anchors, (Memory+1)*len(a)+Memory*64, "memory holds about 16 batches' anchors")
		}
	}
}

// Batches of sources at the edge of the min-entropy the health checks
// assume (package lowentropy: biased bits, bits leaning on the one
// before, a byte value twice as frequent as uniform) are not taken for
// repeats either, and their anchors stay far below the bound: at every
// width tried, at the smallest batch (17 of them, the memory and one
// more) and at the largest (1,000,000 values; under the race detector,
// which slows these loops a hundredfold, 100,000 values at 12 bits).
func TestBiasedBatchesPass(t *testing.T) {
	r := rand.NewChaCha8([32]byte{9})
	largest, values := widths, 1_000_000
	if raceEnabled {
		largest, values = []int{12}, 100_000
	}
	for _, m := range lowentropy.Edge() {
		for _, bits := range widths {
			x := ForBatch(512, bits)
			for range Memory + 1 {
				b := make([]byte, 512)
				m.Fill(r, b)
				remembers(t, x, b)
			}
		}
		for _, bits := range largest {
			n := values * bits / 8
			x := ForBatch(n, bits)
			b := make([]byte, n)
			m.Fill(r, b)
			a, err := x.Scan(b)
			require.NoError(t, err, "%v: %d bits, %d bytes", m, bits, n)
			require.Equal(t, -1, x.Remember(a), "%v: %d bits, %d bytes", m, bits, n)
			for _, values := range []bool{false, true} {
				p := x.newPass(b, values)
				if values && x.wValue == 0 {
					continue
				}
				count := 0
				require.NoError(t, p.winnow(func(int) error { count++; return nil }))
				assert.Less(t, 4*count, anchorBound(p.n, p.w), "%v: %d bits, values %v: %d anchors", m, bits, values, count)
			}
		}
	}
}

// A batch older than the memory is forgotten, and a rejected batch is
// not remembered.
func TestMemoryIsBounded(t *testing.T) {
	x := New(16, 8, 3)
	old := random(4096)
	remembers(t, x, old)
	for range 3 {
		remembers(t, x, random(4096))
	}
	assert.False(t, found(x, old), "a batch older than the memory is forgotten")

	a := random(4096)
	self := append(slices.Clone(a), a...)
	assert.True(t, found(x, self))
	assert.False(t, found(x, a), "the rejected batch left nothing behind")
}

// The table rebuilds itself and reuses the slots of forgotten
// generations: many generations in, it stays small and still finds what
// it remembers.
func TestTableStaysSmall(t *testing.T) {
	tb := newTable(4)
	r := rand.New(rand.NewPCG(3, 4))
	var last []Fingerprint
	for g := range 2000 {
		fps := make([]Fingerprint, 100)
		for i := range fps {
			fps[i] = Fingerprint{r.Uint64(), r.Uint64()}
		}
		require.Equal(t, -1, tb.add(fps), "generation %d", g)
		last = fps
	}
	assert.Equal(t, 400, tb.len())
	assert.LessOrEqual(t, len(tb.keys), 3*500/2*2, "at most two thirds full, doubled while it grew")
	assert.Equal(t, 7, tb.add([]Fingerprint{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}, {13, 14}, last[42]}))
	assert.Equal(t, 400, tb.len(), "the refused generation is taken back")
	assert.Equal(t, 1, tb.add([]Fingerprint{{1, 2}, {1, 2}}))
}

// What an Index holds stays near 45 bytes an anchor, and at the largest
// batches (8 MB of 64-bit values, or of 63-bit ones, with two passes)
// under 12 MiB once it remembers its 16 batches.
func TestMemoryAtTheLargestBatches(t *testing.T) {
	for _, bits := range []int{64, 63} {
		n := 1_000_000 * bits / 8
		x := ForBatch(n, bits)
		a, err := x.Scan(random(n))
		require.NoError(t, err)
		require.Equal(t, -1, x.Remember(a))
		r := rand.New(rand.NewPCG(uint64(bits), 7))
		for range Memory { // as many anchors as a random batch has, without scanning 8 MB more
			fps := make([]Fingerprint, len(a))
			for i := range fps {
				fps[i] = Fingerprint{r.Uint64(), r.Uint64()}
			}
			require.Equal(t, -1, x.Remember(fps))
		}
		_, anchors := x.Remembered()
		assert.Equal(t, Memory*len(a), anchors)
		assert.LessOrEqual(t, len(a), maxAnchors+maxAnchors/8, "%d bits: anchors a batch", bits)
		assert.Less(t, x.MemoryBytes(), 12<<20, "%d bits: %d anchors", bits, anchors)
		assert.Less(t, x.MemoryBytes(), 60*anchors)
	}
}

// The anchor bound sits far above what random content yields.
func TestAnchorBoundIsFarAboveRandomCounts(t *testing.T) {
	for _, n := range []int{481, 10_000, 200_000, 2_000_000} {
		x := ForBatch(n+Span-1, 8)
		p := x.newPass(random(n+Span-1), false)
		count := 0
		require.NoError(t, p.winnow(func(int) error { count++; return nil }))
		assert.Less(t, 4*count, anchorBound(p.n, p.w), "n=%d: %d anchors", n, count)
	}
}

// Deleting the oldest batch's anchors keeps every other anchor findable,
// however the runs of the table wrap around its end: checked against a
// plain map, with a table kept small so that runs are long.
func TestTableDeletionKeepsEveryOtherAnchor(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tb := newTable(3)
	want := map[Fingerprint]int{} // fingerprint -> the batch that added it
	for g := range 500 {
		fps := make([]Fingerprint, 1+r.IntN(40))
		for i := range fps {
			// Homes at the table's very start or end (a first word
			// near 0 or near 2^64): long runs that wrap.
			first := r.Uint64N(1 << 54)
			if r.IntN(2) == 0 {
				first = ^first
			}
			fps[i] = Fingerprint{first, r.Uint64()}
		}
		if tb.add(fps) >= 0 {
			continue
		}
		for _, fp := range fps {
			want[fp] = g
		}
		for fp, at := range want {
			if at <= g-3 {
				delete(want, fp)
			}
		}
		require.Equal(t, len(want), tb.len(), "batch %d", g)
		for fp := range want {
			require.Equal(t, 0, tb.add([]Fingerprint{fp}), "batch %d: a remembered anchor is found", g)
		}
	}
}
