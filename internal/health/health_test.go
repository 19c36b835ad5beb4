package health

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cutoffs of SP 800-90B's tables for alpha = 2^-20 and W = 512 and of
// its formulas for alpha = 2^-40.
func TestCutoffs(t *testing.T) {
	for _, c := range []struct {
		h        float64
		rct, apt int
	}{{1, 21, 311}, {2, 11, 177}, {4, 6, 62}, {8, 4, 13}} {
		assert.Equal(t, c.rct, RCTCutoff(20, c.h), "RCT h=%v", c.h)
		assert.Equal(t, c.apt, APTCutoff(512, 20, c.h), "APT h=%v", c.h)
	}
	assert.Equal(t, 7, RCTCutoff(40, 7))
	assert.Equal(t, 41, RCTCutoff(40, 1))
	tester := New(40, 7)
	assert.Equal(t, 7, tester.RCT)
	// The cutoff is where the binomial tail drops to 2^-40.
	apt := tester.APT
	assert.Less(t, tail(512, apt-1, 1.0/128), 1.0/(1<<40)*2, "tail at the cutoff is about 2^-40 or less")
	assert.Greater(t, tail(512, apt-2, 1.0/128), 1.0/(1<<40), "one below the cutoff the tail is above 2^-40")
}

func tail(n, k int, p float64) float64 {
	s := 0.0
	for i := k; i <= n; i++ {
		s += binomPMF(n, i, p)
	}
	return s
}

func TestCheck(t *testing.T) {
	tester := New(40, 7)
	good := make([]byte, 1<<20)
	rand.Read(good)
	require.NoError(t, tester.Check(good), "uniform bytes pass")

	zeros := make([]byte, 4096)
	assert.ErrorContains(t, tester.Check(zeros), "repetition count test: byte 0x00 repeated 7 times at offset 0")

	run := append([]byte{}, good[:4096]...)
	for i := 100; i < 100+tester.RCT; i++ {
		run[i] = 0xab
	}
	run[99], run[100+tester.RCT] = 0, 1
	assert.ErrorContains(t, tester.Check(run), "repeated 7 times at offset 100")

	alternating := make([]byte, 4096)
	for i := range alternating {
		alternating[i] = byte(0x55 + 0x33*(i%2))
	}
	assert.ErrorContains(t, tester.Check(alternating), "adaptive proportion test: byte 0x55 occurs 256 times")

	shortRun := append([]byte{}, good[:4096]...)
	for i := 200; i < 200+tester.RCT-1; i++ {
		shortRun[i] = 7
	}
	shortRun[199], shortRun[200+tester.RCT-1] = 8, 9
	assert.NoError(t, tester.Check(shortRun), "a run one below the cutoff passes")
}

// A tail shorter than a window is tested too, in the last full window:
// the first release never looked at bytes past the last whole window.
func TestTailAfterLastWindowIsTested(t *testing.T) {
	tr := New(40, 7)
	b := make([]byte, Window+300)
	for i := range b {
		b[i] = byte(i*7 + i/256) // every value about equally often, no runs
	}
	require.NoError(t, tr.Check(b))
	tail := b[Window:]
	for i := 0; i < len(tail); i += 2 {
		tail[i] = 0xAA // 150 times in the tail, never twice in a row
	}
	b[len(b)-Window] = 0xAA // the last window starts with the biased value
	err := tr.Check(b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "adaptive proportion test")
	assert.Contains(t, err.Error(), fmt.Sprintf("offset %d", len(b)-Window))
}

func TestDefaultIsTheDocumentedAssumption(t *testing.T) {
	d := Default()
	assert.Equal(t, New(40, 7), d)
	assert.Equal(t, 7, d.RCT, "a run of 7 equal bytes fails")
	assert.Equal(t, 26, d.APT, "a byte seen 26 times in a 512-byte window fails")
}
