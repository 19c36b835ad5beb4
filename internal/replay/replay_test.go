package replay

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func random(n int) []byte { b := make([]byte, n); rand.Read(b); return b }

func TestAnchorsFollowContentNotPosition(t *testing.T) {
	x := New(64, 4)
	b := random(64 << 10)
	a := x.Anchors(b)
	assert.InDelta(t, len(b)/64, len(a), float64(len(b)/64)/4, "about one anchor in 64 bytes")
	shifted := append(random(13), b...) // the same bytes, 13 later
	assert.Subset(t, x.Anchors(shifted), a, "a shifted copy has the same anchors")
}

func TestRepeatsFound(t *testing.T) {
	for name, second := range map[string]func(first []byte) []byte{
		"the same batch":        func(f []byte) []byte { return append([]byte(nil), f...) },
		"shifted by one value":  func(f []byte) []byte { return append(random(8), f[:len(f)-8]...) },
		"shifted by one byte":   func(f []byte) []byte { return append(random(1), f[:len(f)-1]...) },
		"4 KiB of it, anywhere": func(f []byte) []byte { b := random(len(f)); copy(b[9000:], f[2000:6096]); return b },
	} {
		t.Run(name, func(t *testing.T) {
			x := New(64, 4)
			first := random(32 << 10)
			require.Equal(t, -1, x.Remember(x.Anchors(first)))
			assert.GreaterOrEqual(t, x.Remember(x.Anchors(second(first))), 0)
		})
	}
	x := New(64, 4)
	half := random(8 << 10)
	self := append(append([]byte(nil), half...), half...)
	assert.GreaterOrEqual(t, x.Remember(x.Anchors(self)), 0, "a batch that repeats itself")
}

func TestMemoryIsBoundedAndGenuineBatchesPass(t *testing.T) {
	x := New(64, 3)
	var old []byte
	for i := range 50 {
		b := random(16 << 10)
		if i == 0 {
			old = b
		}
		require.Equal(t, -1, x.Remember(x.Anchors(b)), "genuine batch %d", i)
	}
	assert.Len(t, x.gens, 3)
	assert.Equal(t, -1, x.Remember(x.Anchors(old)), "a batch older than the memory is forgotten")
	assert.Nil(t, x.Anchors(random(Window-1)))
}
