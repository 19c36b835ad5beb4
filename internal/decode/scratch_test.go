package decode

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keepingReader is a transport that keeps every slice it was asked to
// fill, as a careless or hostile Body could, to look at it later.
type keepingReader struct {
	r    io.Reader
	kept [][]byte
}

func (k *keepingReader) Read(p []byte) (int, error) {
	k.kept = append(k.kept, p)
	return k.r.Read(p)
}

// TestScratchClearedWhenDecodingEnds checks that no value read from the
// body stays in the decoder's buffer once Decode returns, on success and
// on every kind of failure.
func TestScratchClearedWhenDecodingEnds(t *testing.T) {
	long := "[" + strings.Repeat("65535, ", 20000) // 140 KB: several buffers
	cases := []struct {
		name string
		body io.Reader
		n    int
		ok   bool
	}{
		{"success", strings.NewReader("[5845, 7686, 2788, 7021, 1913]"), 5, true},
		{"success over several buffers", strings.NewReader(long + "65535]"), 20001, true},
		{"small reads", iotest.HalfReader(strings.NewReader(long + "65535]")), 20001, true},
		{"out of range", strings.NewReader("[5845, 7686, 65536, 7021, 1913]"), 5, false},
		{"malformed", strings.NewReader(`[5845, 7686, "x", 7021]`), 4, false},
		{"too many values", strings.NewReader(long + "1]"), 100, false},
		{"too few values", strings.NewReader("[5845, 7686]"), 3, false},
		{"truncated", strings.NewReader(long), 20001, false},
		{"read error", io.MultiReader(strings.NewReader(long), iotest.ErrReader(errors.New("reset"))), 20001, false},
		{"trailing data", strings.NewReader("[5845, 7686] 7021"), 2, false},
		{"too large", strings.NewReader(long + "65535]"), 20001, false}, // limit below
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := &keepingReader{r: c.body}
			limit := MaxBytes(c.n)
			if c.name == "too large" {
				limit = 100_000
			}
			var got int
			err := Decode(k, c.n, 16, limit, func(uint64) { got++ })
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, c.n, got)
			} else {
				require.Error(t, err)
				if c.name == "too large" {
					assert.ErrorContains(t, err, "size limit")
				}
			}
			require.NotEmpty(t, k.kept)
			for i, p := range k.kept {
				assert.Equal(t, -1, firstNonZero(p), "read %d of %d: a byte of the body is still in the buffer", i+1, len(k.kept))
			}
		})
	}
}

func firstNonZero(p []byte) int {
	for i, b := range p {
		if b != 0 {
			return i
		}
	}
	return -1
}
