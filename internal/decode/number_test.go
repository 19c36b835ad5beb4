package decode

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDigitsClassifiesEveryByte puts each of the 256 byte values at each
// of the eight positions after digits and checks that digits counts the
// digits before it: the SWAR test must not take ':' or '/' for a digit.
func TestDigitsClassifiesEveryByte(t *testing.T) {
	for _, fill := range []byte{'0', '9', '5'} {
		for pos := range 8 {
			for c := range 256 {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				for i := pos + 1; i < 8; i++ {
					b[i] = byte(c) // what follows must not matter
				}
				want := pos
				if c >= '0' && c <= '9' {
					want = 8
				}
				n, _ := digits(binary.LittleEndian.Uint64(b[:]))
				if !assert.Equal(t, want, n, "bytes %q", b[:]) {
					return
				}
			}
		}
	}
}

// TestParse8 checks every digit count with random digits and the extremes.
func TestParse8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for k := 1; k <= 8; k++ {
		for range 2000 {
			var b [8]byte
			for i := range b {
				b[i] = '0' + byte(r.IntN(10))
			}
			if r.IntN(10) == 0 {
				for i := range b {
					b[i] = '9'
				}
			}
			n, tv := digits(binary.LittleEndian.Uint64(b[:]))
			require.Equal(t, 8, n)
			want, err := strconv.ParseUint(string(b[:k]), 10, 64)
			require.NoError(t, err)
			require.Equal(t, want, parse8(top(tv, k)), "digits %q", b[:k])
		}
	}
	assert.Equal(t, uint64(0), topOrZero(0x0909090909090909, 0))
}

// TestOutOfRangeAnywhere puts 2^bits at the start, the middle and the end
// of a long body, for every width, and 2^bits-1 in the same places.
func TestOutOfRangeAnywhere(t *testing.T) {
	const n = 200
	for bits := 1; bits <= 64; bits++ {
		maxV := uint64(1)<<bits - 1
		if bits == 64 {
			maxV = 1<<64 - 1
		}
		for _, at := range []int{0, 1, n / 2, n - 2, n - 1} {
			for _, over := range []bool{false, true} {
				vals := make([]string, n)
				for i := range vals {
					vals[i] = strconv.FormatUint(maxV>>1, 10)
				}
				vals[at] = strconv.FormatUint(maxV, 10)
				if over {
					if bits == 64 {
						vals[at] = "18446744073709551616"
					} else {
						vals[at] = strconv.FormatUint(maxV+1, 10)
					}
				}
				got, err := decodeAll("["+strings.Join(vals, ", ")+"]", n, bits)
				if !over {
					require.NoError(t, err, "bits %d at %d", bits, at)
					require.Equal(t, maxV, got[at])
					continue
				}
				var de *Error
				require.ErrorAs(t, err, &de, "bits %d at %d", bits, at)
				assert.Equal(t, at, de.Index, "bits %d", bits)
				if bits == 64 {
					assert.Contains(t, err.Error(), "exceeds 64 bits")
				} else {
					assert.Contains(t, err.Error(), "out of range")
				}
			}
		}
	}
}

// TestTruncatedLongBodies cuts a long body at many places, read in pieces
// of many sizes, so that the cut falls after bytes left in the buffer by
// earlier reads: the decoder must report the body cut short, never take
// stale bytes for the rest of a number, nor hand over a value that is not
// in the body.
func TestTruncatedLongBodies(t *testing.T) {
	const n = 20000
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(uint64(1e19)+uint64(i)*7919, 10))
	}
	b.WriteString("]")
	body := []byte(b.String())
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		cut := 1 + r.IntN(len(body)-1)
		sizes := []int{1 + r.IntN(bufSize)}
		var got int
		err := Decode(&chunkReader{data: body[:cut], sizes: sizes}, n, 64, MaxBytes(n), func(v uint64) {
			if v != uint64(1e19)+uint64(got)*7919 {
				t.Fatalf("cut at %d, chunks %v: value %d is %d, not in the body", cut, sizes, got, v)
			}
			got++
		})
		var de *Error
		require.ErrorAs(t, err, &de, "cut at %d of %d, chunks %v", cut, len(body), sizes)
		require.True(t, de.Truncated, "cut at %d, chunks %v: %v", cut, sizes, err)
		assert.Less(t, got, n)
	}
}
