package lowentropy

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The models make what they say: measured over 2 MiB (1 MiB under the
// race detector), each model's bit bias, bit repetition and heaviest byte
// are what it was built with, and within the assumption (no byte value
// above 1/128, no bit above 0.5453).
func TestModelsMakeWhatTheySay(t *testing.T) {
	r := rand.NewChaCha8([32]byte{1})
	b := make([]byte, 2<<20)
	if raceEnabled { // the race detector slows these loops tenfold
		b = b[:1<<20]
	}
	type want struct{ ones, same, heaviest float64 }
	for _, c := range []struct {
		m *Model
		w want
	}{
		{Independent(0.545), want{0.545, 0.545*0.545 + 0.455*0.455, math.Pow(0.545, 8)}},
		{Independent(0.455), want{0.455, 0.545*0.545 + 0.455*0.455, math.Pow(0.545, 8)}},
		{Sticky(0.545), want{0.5, 0.545, 0.5 * math.Pow(0.545, 7)}},
		{Heavy(0xa5, 1.0/128), want{0.5, heavySame(1.0 / 128), 1.0 / 128}},
		{Independent(0.5), want{0.5, 0.5, 1.0 / 256}},
	} {
		c.m.Fill(r, b)
		var counts [256]int
		ones, same := 0, 0
		last := b[0] >> 7
		for _, x := range b {
			counts[x]++
			ones += bits.OnesCount8(x)
			same += bits.OnesCount8(^(x ^ x>>1) & 0x7f) // the 7 pairs inside the byte
			if x>>7 == last {
				same++ // the first bit and the last of the byte before (the first byte: itself)
			}
			last = x & 1
		}
		same-- // the first byte's first bit has none before it
		nbits := float64(8 * len(b))
		heaviest := 0
		for _, n := range counts {
			heaviest = max(heaviest, n)
		}
		assert.InDelta(t, c.w.ones, float64(ones)/nbits, 0.001, "%v: ones", c.m)
		assert.InDelta(t, c.w.same, float64(same)/(nbits-1), 0.001, "%v: a bit equal to the one before", c.m)
		assert.InDelta(t, c.w.heaviest, float64(heaviest)/float64(len(b)), 0.0005, "%v: the heaviest byte", c.m)
		assert.LessOrEqual(t, c.w.heaviest, 1.0/128, "%v: within the assumption", c.m)
		assert.LessOrEqual(t, math.Max(c.w.ones, 1-c.w.ones), math.Exp2(-7.0/8), "%v: within the assumption", c.m)
	}
}

// heavySame is how often a bit equals the one before in Heavy(0xa5, p):
// 0xa5 (10100101) has one equal pair of its 7, the other 255 bytes 895
// between them; both its end bits are 1, as are 127 of the others'.
func heavySame(p float64) float64 {
	inside := (p*1 + (1-p)*895/255) / 7
	one := p + (1-p)*127/255
	across := one*one + (1-one)*(1-one)
	return inside*7/8 + across/8
}

func BenchmarkFill(b *testing.B) {
	m, r, buf := Independent(0.545), rand.NewChaCha8([32]byte{}), make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		m.Fill(r, buf)
	}
}
