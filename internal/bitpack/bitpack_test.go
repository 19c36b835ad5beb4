package bitpack

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKnownLayouts(t *testing.T) {
	cases := []struct {
		width  int
		values []uint64
		want   []byte
	}{
		{8, []uint64{1, 2, 255}, []byte{1, 2, 255}},
		{16, []uint64{0x1234, 0xabcd}, []byte{0x12, 0x34, 0xab, 0xcd}},
		{12, []uint64{0xabc, 0xdef}, []byte{0xab, 0xcd, 0xef}},
		{4, []uint64{0xa, 0xb, 0xc, 0xd}, []byte{0xab, 0xcd}},
		{1, []uint64{1, 0, 1, 0, 0, 0, 0, 1}, []byte{0xa1}},
		{64, []uint64{0x0102030405060708}, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{63, []uint64{1<<63 - 1, 0, 0, 0, 0, 0, 0, 0}, append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, make([]byte, 55)...)},
	}
	for _, c := range cases {
		p := New(c.width, nil)
		for _, v := range c.values {
			p.Add(v)
		}
		got := p.Bytes()
		assert.Equal(t, c.want, got, "width %d", c.width)
		assert.Zero(t, p.Pending(), "width %d", c.width)
		assert.Equal(t, c.values, Unpack(got, c.width, len(c.values)), "width %d", c.width)
	}
}

func TestPendingBitsHeldBack(t *testing.T) {
	p := New(12, nil)
	p.Add(0xabc)
	assert.Equal(t, []byte{0xab}, p.Bytes())
	assert.Equal(t, 4, p.Pending())
	p.Add(0xdef)
	assert.Equal(t, []byte{0xab, 0xcd, 0xef}, p.Bytes())
}

func TestRoundTripAllWidths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for w := 1; w <= 64; w++ {
		n := 8 * (1 + r.IntN(200))
		vals := make([]uint64, n)
		p := New(w, nil)
		for i := range vals {
			vals[i] = r.Uint64() >> (64 - w)
			p.Add(vals[i])
		}
		out := p.Bytes()
		require.Len(t, out, n*w/8, "width %d", w)
		require.Equal(t, vals, Unpack(out, w, n), "width %d", w)
	}
}

func TestNewRejectsBadWidth(t *testing.T) {
	assert.PanicsWithValue(t, "bitpack: width 0 outside 1..64", func() { New(0, nil) })
	assert.PanicsWithValue(t, "bitpack: width 65 outside 1..64", func() { New(65, nil) })
}

func FuzzPackUnpack(f *testing.F) {
	f.Add(uint8(12), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(uint8(64), []byte{0xff, 0xee})
	f.Add(uint8(1), []byte{0})
	f.Fuzz(func(t *testing.T, w8 uint8, seed []byte) {
		w := int(w8%64) + 1
		if len(seed) > 512 {
			seed = seed[:512] // Unpack is bit by bit: keep each input quick
		}
		r := rand.New(rand.NewChaCha8([32]byte(append(append([]byte{}, seed...), make([]byte, 32)...)[:32])))
		n := len(seed) * 8
		vals := make([]uint64, n)
		p := New(w, nil)
		for i := range vals {
			vals[i] = r.Uint64() >> (64 - w)
			p.Add(vals[i])
		}
		out := p.Bytes()
		if len(out) != n*w/8 || p.Pending() != 0 {
			t.Fatalf("width %d, %d values: %d bytes, %d pending", w, n, len(out), p.Pending())
		}
		got := Unpack(out, w, n)
		for i := range vals {
			if got[i] != vals[i] {
				t.Fatalf("width %d value %d: got %#x want %#x", w, i, got[i], vals[i])
			}
		}
	})
}
