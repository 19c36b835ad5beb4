package qrngtest

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decimalEdges are values at every digit-count and bit-length boundary.
func decimalEdges() []uint64 {
	vs := []uint64{0, math.MaxUint64, math.MaxUint64 - 1}
	p := uint64(1)
	for range 20 {
		vs = append(vs, p-1, p, p+1, p*9, p*10-1)
		p *= 10
	}
	for b := range 64 {
		vs = append(vs, uint64(1)<<b-1, uint64(1)<<b, uint64(1)<<b+1)
	}
	return vs
}

func TestAppendValuesMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vs := decimalEdges()
	for range 20000 {
		vs = append(vs, r.Uint64()>>r.IntN(64))
	}
	for _, first := range []bool{true, false} {
		prefix := []byte("x")
		got := appendValues(prefix, vs, first)
		want := []byte("x")
		for i, v := range vs {
			if i > 0 || !first {
				want = append(want, ", "...)
			}
			want = strconv.AppendUint(want, v, 10)
		}
		require.Equal(t, string(want), string(got))
	}
	assert.Equal(t, "[", string(appendValues([]byte("["), nil, true)))
}

func TestEightDigits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range append([]uint32{0, 1, 9, 10, 99, 100, 9999, 10000, 99999999, 12345678}, r.Uint32N(1e8), r.Uint32N(1e8)) {
		var b [8]byte
		w := eightDigits(n)
		for i := range b {
			b[i] = byte(w >> (8 * i))
		}
		assert.Equal(t, strconv.FormatUint(1e8+uint64(n), 10)[1:], string(b[:]), "n = %d", n)
	}
	for n := uint32(0); n < 1e8; n += 9973 {
		w := eightDigits(n)
		var b [8]byte
		for i := range b {
			b[i] = byte(w >> (8 * i))
		}
		require.Equal(t, strconv.FormatUint(1e8+uint64(n), 10)[1:], string(b[:]))
	}
}

func TestDigitCount(t *testing.T) {
	for _, v := range decimalEdges() {
		assert.Equal(t, len(strconv.FormatUint(v, 10)), digitCount(v), "v = %d", v)
	}
}

// TestFillValuesTakesEachBitOnce fills values of every width from a known
// byte stream and checks them against the stream read bit by bit: value i
// is bits [i*bits, (i+1)*bits) of each block (least significant bit of
// each byte first), or, above 56 bits, the top bits of 8 bytes.
func TestFillValuesTakesEachBitOnce(t *testing.T) {
	for bits := 1; bits <= 64; bits++ {
		for _, n := range []int{1, 7, drawBlock, drawBlock + 3, 2*drawBlock + 1} {
			var stream []byte
			src := rand.NewChaCha8([32]byte{byte(bits)})
			random := func(p []byte) {
				src.Read(p)
				stream = append(stream, p...)
			}
			vals := make([]uint64, n)
			fillValues(vals, bits, random)
			width := bits
			if bits > 56 {
				width = 64
			}
			blockBytes := drawBlock * width / 8
			require.Len(t, stream, (n/drawBlock)*blockBytes+(n%drawBlock*width+7)/8, "bits %d n %d: only the bytes needed", bits, n)
			for i, v := range vals {
				blk, j := i/drawBlock, i%drawBlock
				raw := stream[blk*blockBytes:]
				var want uint64
				if width == 64 {
					for k := range 8 {
						want |= uint64(raw[8*j+k]) << (8 * k)
					}
					want >>= 64 - bits
				} else {
					for k := range bits {
						o := j*bits + k
						want |= uint64(raw[o/8]>>(o%8)&1) << k
					}
				}
				if !assert.Equal(t, want, v, "bits %d n %d value %d", bits, n, i) {
					return
				}
			}
		}
	}
}
