package decode

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkReader hands out its data in pieces of the sizes in turn.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.sizes[c.i%len(c.sizes)], len(p), len(c.data))
	c.i++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// edgeValue draws a value of at most bits bits, often at a digit-count
// boundary (10^k-1, 10^k) or at the width's maximum.
func edgeValue(r *rand.Rand, bits int) uint64 {
	maxV := uint64(math.MaxUint64) >> (64 - bits)
	var v uint64
	switch r.IntN(4) {
	case 0:
		v = r.Uint64() >> (64 - bits)
	case 1:
		v = pow(r.IntN(20)) - uint64(r.IntN(2)) // 10^k or 10^k - 1
	case 2:
		v = maxV - uint64(r.IntN(3))
	default:
		v = r.Uint64N(1000)
	}
	return min(v, maxV)
}

func pow(k int) uint64 {
	v := uint64(1)
	for range k {
		v *= 10
	}
	return v
}

var separators = []string{", ", ",", " ,", " , ", ",\n", "\t,\r\n  ", ",  "}

// TestLongBodiesInAnyChunking decodes long bodies of every width, with
// values at digit-count boundaries and varied white space, delivered in
// pieces of many sizes (so that values and separators straddle reads and
// the decoder's buffer), and checks every value.
func TestLongBodiesInAnyChunking(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	chunkings := [][]int{{1}, {3, 1, 7}, {31}, {32}, {33}, {8, 24, 40}, {1000, 5}, {bufSize}, {1 << 20}}
	n := 3000
	if testing.Short() {
		n = 500
	}
	for bits := 1; bits <= 64; bits++ {
		want := make([]uint64, n)
		var body []byte
		if bits%5 == 0 {
			body = append(body, " { \"data\" :\n"...)
		}
		body = append(body, '[')
		sep := separators[bits%len(separators)]
		for i := range want {
			if i > 0 {
				if bits%3 == 0 {
					sep = separators[r.IntN(len(separators))]
				}
				body = append(body, sep...)
			}
			want[i] = edgeValue(r, bits)
			body = strconv.AppendUint(body, want[i], 10)
		}
		body = append(body, ']')
		if bits%5 == 0 {
			body = append(body, '}')
		}
		body = append(body, "\n"...)
		for _, sizes := range chunkings {
			got := make([]uint64, 0, n)
			err := DecodeTo(&chunkReader{data: body, sizes: sizes}, n, bits, MaxBytes(n), func(vs []uint64) {
				assert.LessOrEqual(t, len(vs), BatchLen)
				got = append(got, vs...)
			})
			require.NoError(t, err, "bits %d, chunks %v", bits, sizes)
			require.Equal(t, want, got, "bits %d, chunks %v", bits, sizes)
		}
	}
}

// TestMutatedBodiesMatchEncodingJSON damages long bodies (a byte changed,
// inserted or removed) and checks that the decoder accepts exactly what
// encoding/json does, with the same values, whatever the chunking.
func TestMutatedBodiesMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 300
	alphabet := []byte("0123456789 ,[]{}\"-.eE\n\tx:/\x00\xff")
	rounds := 400
	if testing.Short() {
		rounds = 50
	}
	accepted := 0
	for round := range rounds {
		bits := 1 + r.IntN(64)
		body := []byte{'['}
		for i := range n {
			if i > 0 {
				body = append(body, separators[r.IntN(2)]...)
			}
			body = strconv.AppendUint(body, edgeValue(r, bits), 10)
		}
		body = append(body, ']')
		if round%4 != 0 { // leave some intact
			at := r.IntN(len(body))
			c := alphabet[r.IntN(len(alphabet))]
			if r.IntN(4) == 0 {
				c = byte(r.IntN(256))
			}
			switch r.IntN(3) {
			case 0:
				body[at] = c
			case 1:
				body = append(body[:at], append([]byte{c}, body[at:]...)...)
			default:
				body = append(body[:at], body[at+1:]...)
			}
		}
		want, ok := reference(body, n, bits)
		if ok {
			accepted++
		}
		for _, sizes := range [][]int{{len(body)}, {1}, {33}, {5, 40}} {
			var got []uint64
			err := DecodeTo(&chunkReader{data: body, sizes: sizes}, n, bits, MaxBytes(n), func(vs []uint64) { got = append(got, vs...) })
			require.Equal(t, ok, err == nil, "body %q bits %d chunks %v: encoding/json accepts %v, DecodeTo: %v", body, bits, sizes, ok, err)
			if ok {
				require.Equal(t, want, got)
			}
		}
	}
	assert.Greater(t, accepted, rounds/4, "too few accepted bodies to compare values")
	assert.Less(t, accepted, rounds, "no rejected bodies")
}

func TestDecodeAndDecodeToAgree(t *testing.T) {
	body := bytes.Repeat([]byte("65535, "), 2000)
	body = append(append([]byte{'['}, body...), "7]"...)
	var a, b []uint64
	require.NoError(t, Decode(bytes.NewReader(body), 2001, 16, MaxBytes(2001), func(v uint64) { a = append(a, v) }))
	require.NoError(t, DecodeTo(bytes.NewReader(body), 2001, 16, MaxBytes(2001), func(vs []uint64) { b = append(b, vs...) }))
	assert.Len(t, a, 2001)
	assert.Equal(t, a, b)
	assert.Equal(t, uint64(7), a[2000])
}
