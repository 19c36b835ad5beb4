package health

import (
	crand "crypto/rand"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/internal/lowentropy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func random(n int) []byte { b := make([]byte, n); crand.Read(b); return b }

// smallest is the smallest batch a Source makes at this width: 4096
// values over the width's largest power-of-two factor, 512 bytes or more.
func smallest(bits int) int { return 4096 / (bits & -bits) * bits / 8 }

// exactTailLog2 is log2 P[Binomial(n, p) >= k], summed term by term from
// k until the terms no longer matter: the reference the cutoffs' bound is
// checked against.
func exactTailLog2(n, k int, p float64) float64 {
	if k > n {
		return math.Inf(-1)
	}
	top := binomLog2PMF(n, k, p)
	sum := 0.0
	for i := k; i <= n; i++ {
		d := binomLog2PMF(n, i, p) - top
		sum += math.Exp2(d)
		if d < -60 && i > k+10 {
			break
		}
	}
	return top + math.Log2(sum)
}

// Each cutoff keeps its check's false alarms at or below 2^-44 per batch
// for every source of the assumed min-entropy (7 bits a byte: a k-bit
// piece takes one value with probability at most 2^(-7k/8)), by the
// exact distribution at the assumption's edge, and is not much stricter
// than it must be: one below it, the exact probability is above 2^-48.
// The fast paths' preconditions hold too: at least 7 equal bytes, and 57
// equal 1-bit values, in a row before a run fails.
func TestCutoffsMeetTheirBudget(t *testing.T) {
	const a = CheckAlphaLog2
	edge := func(k int) float64 { return math.Pow(2, -7*float64(k)/8) } // the most probable k-bit value may be
	for bits := 1; bits <= 64; bits++ {
		for _, n := range []int{smallest(bits), 200_000, 1_000_000 * bits / 8} {
			c := derive(n, bits)
			name := fmt.Sprintf("%d bits, %d bytes", bits, n)
			run := func(places int, p float64, cut int) (float64, float64) {
				f := func(c int) float64 { return math.Log2(float64(max(places-c+1, 1))) + float64(c-1)*math.Log2(p) }
				return f(cut), f(cut - 1)
			}
			at, below := run(n, edge(8), c.ByteRun)
			assert.LessOrEqual(t, at, -float64(a), "%s: byte runs", name)
			assert.Greater(t, below, -float64(a), "%s: byte runs, one below", name)
			assert.GreaterOrEqual(t, c.ByteRun, 7, "%s: byte runs' fast path", name)
			if bits != 8 {
				at, below = run(c.Values, edge(bits), c.ValueRun)
				assert.LessOrEqual(t, at, -float64(a), "%s: value runs", name)
				assert.Greater(t, below, -float64(a), "%s: value runs, one below", name)
			}
			if bits == 1 {
				assert.GreaterOrEqual(t, c.ValueRun, 57, "%s: bit runs' fast path", name)
			}
			count := func(what string, places float64, trials int, p float64, cut int) {
				t.Helper()
				at := math.Log2(places) + exactTailLog2(trials, cut, p)
				assert.LessOrEqual(t, at, -float64(a), "%s: %s at its cutoff %d", name, what, cut)
				if cut-1 > int(float64(trials)*p) {
					assert.Greater(t, math.Log2(places)+exactTailLog2(trials, cut-1, p), -float64(a+4), "%s: %s one below", name, what)
				}
			}
			count("byte APT", math.Ceil(float64(n)/Window), Window-1, edge(8), c.ByteAPT-1)
			if c.ValueAPT > 0 {
				count("value APT", math.Ceil(float64(c.Values)/float64(c.ValueWindow)), c.ValueWindow-1, edge(bits), c.ValueAPT-1)
			}
			count("lanes", 256*float64(c.Lanes), c.LaneSamples, edge(8), c.LaneMax)
			count("bits", 2*float64(bits), c.BitSamples, edge(1), c.BitMax)
			assert.Equal(t, c.LaneSamples*c.Lanes*8/bits, c.BitSamples)
		}
	}
}

// The cutoffs the README quotes, for the smallest and the default batch
// at the default width (16 bits: 256 values, 512 bytes; 100,096 values,
// 200,192 bytes).
func TestDocumentedCutoffs(t *testing.T) {
	small, def := ForBits(16).Cutoffs(512), ForBits(16).Cutoffs(200_192)
	assert.Equal(t, [2]int{9, 10}, [2]int{small.ByteRun, def.ByteRun}, "equal bytes in a row")
	assert.Equal(t, [2]int{5, 6}, [2]int{small.ValueRun, def.ValueRun}, "equal values in a row")
	assert.Equal(t, [2]int{28, 31}, [2]int{small.ByteAPT, def.ByteAPT}, "a byte in a 512-byte window")
	assert.Equal(t, [2]int{7, 9}, [2]int{small.ValueAPT, def.ValueAPT}, "a value in a 512-value window (the whole batch of 256 at the smallest)")
	assert.Equal(t, [2]int{23, 1022}, [2]int{small.LaneMax, def.LaneMax}, "a byte value in a lane")
	assert.Equal(t, [2]int{201, 55818}, [2]int{small.BitMax, def.BitMax}, "ones (or zeros) at a bit position")
}

// Genuine data passes, many times over, at every width and at the
// smallest, a middling and an odd batch size; and at the largest batch
// for a few widths.
func TestGenuineBatchesPass(t *testing.T) {
	rounds := 40
	if testing.Short() || raceEnabled {
		rounds = 4
	}
	for bits := 1; bits <= 64; bits++ {
		tr := ForBits(bits)
		for _, n := range []int{smallest(bits), 4 * smallest(bits), 24_001} {
			for range rounds {
				b := random(n)
				require.NoError(t, tr.Check(b), "%d bits, %d bytes", bits, n)
			}
		}
	}
	largest := []int{1, 12, 16, 63, 64}
	if raceEnabled {
		largest = []int{12}
	}
	for _, bits := range largest {
		b := random(1_000_000 * bits / 8)
		require.NoError(t, ForBits(bits).Check(b), "%d bits, 1,000,000 values", bits)
	}
}

// Sources at the edge of the assumed min-entropy pass, where cutoffs
// that assumed full entropy rejected them: independent bits each 1 (or
// 0) with probability 0.545, bits that repeat the one before with
// probability 0.545, a byte value with probability 1/128 in every lane;
// at every width at the smallest batch, many times over, and at the
// largest batch (1,000,000 values) at several widths.
func TestSourcesAtTheAssumedMinEntropyPass(t *testing.T) {
	seed := [32]byte{}
	crand.Read(seed[:])
	r := rand.NewChaCha8(seed)
	t.Logf("seed %x", seed)
	rounds := 10
	if testing.Short() || raceEnabled {
		rounds = 2
	}
	largest := []int{1, 7, 12, 16, 63, 64}
	if raceEnabled { // the race detector slows these loops a hundredfold
		largest = []int{16}
	}
	for _, m := range lowentropy.Edge() {
		for bits := 1; bits <= 64; bits++ {
			tr := ForBits(bits)
			b := make([]byte, smallest(bits))
			for range rounds {
				m.Fill(r, b)
				require.NoError(t, tr.Check(b), "%v: %d bits, %d bytes", m, bits, len(b))
			}
		}
		for _, bits := range largest {
			b := make([]byte, 1_000_000*bits/8)
			m.Fill(r, b)
			require.NoError(t, ForBits(bits).Check(b), "%v: %d bits, 1,000,000 values", m, bits)
		}
	}
}

// The assumption has an edge, and the cutoffs sit close past it at large
// batches: at 1,000,000 16-bit values, one bit position set 56% of the
// time (the others uniform) fails the bit positions' count (the cutoff is
// 549,174 ones of 1,000,000), and 44% too; bits all set 56% of the time
// fail (the heaviest byte value, 0xff, then has probability 0.0097, past
// 1/128); a byte value with probability 3/256 (1.5 times the assumption's
// 1/128) fails the lane count (cutoff 8,547 of 1,000,000).
func TestSourcesPastTheAssumptionFailLargeBatches(t *testing.T) {
	r := rand.NewChaCha8([32]byte{4})
	b := make([]byte, 2_000_000)
	c := ForBits(16).Cutoffs(len(b))
	assert.Equal(t, [2]int{549_174, 8_547}, [2]int{c.BitMax, c.LaneMax})
	oneBit := func(p float64) func([]byte) {
		return func(b []byte) {
			r.Read(b)
			u := rand.New(r)
			for i := 0; i < len(b); i += 2 { // the top bit of a 16-bit value: the first byte's
				b[i] &^= 0x80
				if u.Float64() < p {
					b[i] |= 0x80
				}
			}
		}
	}
	for _, tc := range []struct {
		name string
		fill func([]byte)
		test string
	}{
		{"the top bit set 56% of the time", oneBit(0.56), "bit positions: bit 0 of 16"},
		{"the top bit set 44% of the time", oneBit(0.44), "bit positions: bit 0 of 16"},
		{"every bit set 56% of the time", func(b []byte) { lowentropy.Independent(0.56).Fill(r, b) }, ""},
		{"byte 0xa5 at 3/256", func(b []byte) { lowentropy.Heavy(0xa5, 3.0/256).Fill(r, b) }, "byte lanes: byte 0xa5"},
	} {
		tc.fill(b)
		err := ForBits(16).Check(b)
		if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.test, tc.name)
		}
	}
}

// Each failure mode, at the smallest and the default batch, at several
// widths: the batch fails, and the error names the test.
func TestFailureModes(t *testing.T) {
	type mode struct {
		name, test string
		spoil      func(b []byte, bits int, r *rand.Rand)
		applies    func(bits int) bool
	}
	all := func(int) bool { return true }
	modes := []mode{
		{"all zero", "repetition count test", func(b []byte, _ int, _ *rand.Rand) { clear(b) }, all},
		{"a run of equal bytes", "repetition count test", func(b []byte, _ int, _ *rand.Rand) {
			for i := range 12 {
				b[100+i] = 0x5a
			}
		}, all},
		{"a run of equal values", "repetition count test", func(b []byte, bits int, r *rand.Rand) {
			v := r.Uint64N(1<<(bits-1)) | 1<<(bits-1)
			run := ForBits(bits).Cutoffs(len(b)).ValueRun + 1 // past the cutoff, too short for the proportion tests
			mapValues(b, bits, func(i int, old uint64) uint64 {
				if i >= 10 && i < 10+run {
					return v
				}
				return old
			})
		}, func(bits int) bool { return bits != 8 && bits <= 56 }},
		{"one byte value in every lane, a third of the time", "", func(b []byte, _ int, r *rand.Rand) {
			for i := range b {
				if r.IntN(3) == 0 {
					b[i] = 0xc3
				}
			}
		}, all},
		{"the low byte of 16-bit values always 0", "", func(b []byte, _ int, _ *rand.Rand) {
			for i := 1; i < len(b); i += 2 {
				b[i] = 0
			}
		}, func(bits int) bool { return bits == 16 }},
		{"the last lane half 0x42", "", func(b []byte, bits int, r *rand.Rand) {
			lanes := bits / gcd(bits, 8)
			for i := lanes - 1; i < len(b); i += lanes {
				if r.IntN(2) == 0 {
					b[i] = 0x42
				}
			}
		}, func(bits int) bool { return bits/gcd(bits, 8) > 1 }},

		{"bit 3 always 1", "", func(b []byte, bits int, _ *rand.Rand) {
			mapValues(b, bits, func(_ int, v uint64) uint64 { return v | 8 })
		}, func(bits int) bool { return bits > 3 }},
		{"the top bit always 0", "", func(b []byte, bits int, _ *rand.Rand) {
			mapValues(b, bits, func(_ int, v uint64) uint64 { return v &^ (1 << (bits - 1)) })
		}, func(bits int) bool { return bits > 1 }},
		{"a value repeated in a window", "adaptive proportion test", func(b []byte, bits int, r *rand.Rand) {
			v := r.Uint64N(1<<(bits-1)) | 1
			mapValues(b, bits, func(i int, old uint64) uint64 {
				if i < 512 && i%16 == 0 {
					return v
				}
				return old
			})
		}, func(bits int) bool { return bits >= 10 && bits <= 56 }},
	}
	for _, bits := range []int{1, 7, 8, 12, 16, 24, 63, 64} {
		sizes := []int{smallest(bits), 100_000 * bits / 8}
		if raceEnabled && bits != 12 && bits != 16 { // the race detector slows these loops a hundredfold
			sizes = sizes[:1]
		}
		for _, n := range sizes {
			tr := ForBits(bits)
			for _, m := range modes {
				if !m.applies(bits) {
					continue
				}
				r := rand.New(rand.NewPCG(uint64(bits), uint64(n)))
				b := random(n)
				require.NoError(t, tr.Check(b))
				m.spoil(b, bits, r)
				err := tr.Check(b)
				if assert.Error(t, err, "%d bits, %d bytes: %s", bits, n, m.name) && m.test != "" && len(b) >= 100_000 {
					assert.Contains(t, err.Error(), m.test, "%d bits, %d bytes: %s", bits, n, m.name)
				}
			}
		}
	}
}

// A byte value over-represented in one lane only, too mildly for the
// proportion tests (a lane is at most half of a window), is found by the
// lane counts, at every width with more than one lane, at the default
// batch: 0x42 in one of 16 bytes of the last lane instead of one in 256.
func TestLaneBiasFoundByTheLaneCounts(t *testing.T) {
	for bits := 1; bits <= 64; bits++ {
		if raceEnabled && bits%5 != 1 { // the race detector slows these loops a hundredfold
			continue
		}
		n := 100_000 * bits / 8
		c := ForBits(bits).Cutoffs(n)
		b := random(n)
		require.NoError(t, checkLanes(b, c))
		r := rand.New(rand.NewPCG(uint64(bits), 1))
		for i := c.Lanes - 1; i < len(b); i += c.Lanes {
			if r.IntN(16) == 0 {
				b[i] = 0x42
			}
		}
		err := checkLanes(b, c)
		require.Error(t, err, "%d bits", bits)
		assert.Contains(t, err.Error(), fmt.Sprintf("byte lanes: byte 0x42 occurs"), "%d bits", bits)
		assert.Contains(t, err.Error(), fmt.Sprintf("of lane %d of %d", c.Lanes-1, c.Lanes), "%d bits", bits)
	}
}

// A run of equal values fails at its cutoff and passes one below it, on
// the 16-bit fast path and the general one, in the middle of the batch
// and at its end.
func TestValueRunCutoffIsExact(t *testing.T) {
	for _, bits := range []int{16, 12, 7, 64, 2} {
		n := 100_000 * bits / 8
		c := ForBits(bits).Cutoffs(n)
		values := 8 * n / bits
		for _, start := range []int{values / 2, values - c.ValueRun} {
			for _, length := range []int{c.ValueRun - 1, c.ValueRun} {
				b := random(n)
				v := uint64(1)<<(bits-1) | 1
				mapValues(b, bits, func(i int, old uint64) uint64 {
					switch {
					case i >= start && i < start+length:
						return v
					case i == start-1 || i == start+length:
						return v ^ 2 // a different value on each side
					}
					return old
				})
				err := ForBits(bits).Check(b)
				if length < c.ValueRun {
					assert.NoError(t, err, "%d bits: a run of %d from %d", bits, length, start)
				} else if assert.Error(t, err, "%d bits: a run of %d from %d", bits, length, start) {
					assert.Contains(t, err.Error(), fmt.Sprintf("repeated %d times from value %d", length, start))
				}
			}
		}
	}
}

// A stuck bit position is found at each of the bits positions, at the
// smallest batch, stuck at 0 and at 1, and the error names it: in a
// genuine batch and in a batch of one of the sources at the assumption's
// edge, taken in turn (a stuck bit among bits biased the other way, or
// leaning on their neighbours).
func TestEveryStuckBitPositionFound(t *testing.T) {
	r := rand.NewChaCha8([32]byte{3})
	edge := lowentropy.Edge()
	turn := 0
	for _, bits := range []int{2, 7, 12, 16, 33, 64} {
		n := smallest(bits)
		for pos := range bits {
			for _, one := range []bool{false, true} {
				turn++
				for _, base := range []*lowentropy.Model{lowentropy.Independent(0.5), edge[turn%len(edge)]} {
					b := make([]byte, n)
					base.Fill(r, b)
					mask := uint64(1) << (bits - 1 - pos) // pos 0: the most significant bit
					mapValues(b, bits, func(_ int, v uint64) uint64 {
						if one {
							return v | mask
						}
						return v &^ mask
					})
					err := ForBits(bits).Check(b)
					require.Error(t, err, "%v: %d bits, bit %d stuck at %v", base, bits, pos, one)
					if bits >= 7 { // narrower values fail other tests first
						assert.Contains(t, err.Error(), fmt.Sprintf("bit positions: bit %d of %d", pos, bits), "%v", base)
					}
				}
			}
		}
	}
}

// Every byte is in a tested window, a tail shorter than a window too: a
// byte over-represented only in the tail fails the proportion test.
func TestTailAfterLastWindowIsTested(t *testing.T) {
	b := random(Window + 300)
	tail := b[Window:]
	for i := 0; i < len(tail); i += 2 {
		tail[i] = 0xAA // 150 times in the tail, never twice in a row
	}
	b[len(b)-Window] = 0xAA // the last window starts with the biased value
	err := Default().Check(b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "adaptive proportion test: byte 0xaa occurs")
	assert.Contains(t, err.Error(), fmt.Sprintf("in the 512 bytes at offset %d", len(b)-Window))
}

// The values' last window ends at the batch's end too: a value repeated
// only in the values past the last whole window fails, at 12 bits (the
// general path) and at 16 (the fast one).
func TestValueTailAfterLastWindowIsTested(t *testing.T) {
	for _, bits := range []int{12, 16} {
		n := 1000 * bits / 8 // 1000 values: one whole window and 488 more
		b := random(n)
		require.NoError(t, ForBits(bits).Check(b))
		v := uint64(0x5a5) // not 0: the bit and lane counts stay calm
		mapValues(b, bits, func(i int, old uint64) uint64 {
			if i == 1000-512 || (i > 512 && i%40 == 0) {
				return v
			}
			return old
		})
		err := ForBits(bits).Check(b)
		require.Error(t, err, "%d bits", bits)
		assert.Contains(t, err.Error(), fmt.Sprintf("adaptive proportion test: %d-bit value 0x5a5 occurs", bits))
		assert.Contains(t, err.Error(), "from value 488")
	}
}

// The zero Tester tests bytes, as Default does.
func TestZeroTesterIsBytes(t *testing.T) {
	var z Tester
	assert.Equal(t, 8, z.Bits())
	assert.Equal(t, Default().Cutoffs(4096), z.Cutoffs(4096))
	assert.Error(t, z.Check(make([]byte, 4096)))
	assert.Panics(t, func() { ForBits(0) })
	assert.Panics(t, func() { ForBits(65) })
}

// values and pack turn b into its bits-wide values and back (package
// bitpack, not the code under test).
func values(b []byte, bits int) []uint64 { return bitpack.Unpack(b, bits, 8*len(b)/bits) }

func pack(b []byte, bits int, vs []uint64) {
	p := bitpack.New(bits, make([]byte, 0, len(b)))
	for _, v := range vs {
		p.Add(v)
	}
	copy(b, p.Bytes())
}

// mapValues applies f to every value of b.
func mapValues(b []byte, bits int, f func(i int, v uint64) uint64) {
	vs := values(b, bits)
	for i, v := range vs {
		vs[i] = f(i, v)
	}
	pack(b, bits, vs)
}
