package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decodeAll(body string, n, bits int) ([]uint64, error) {
	var got []uint64
	err := Decode(strings.NewReader(body), n, bits, MaxBytes(n), func(v uint64) { got = append(got, v) })
	return got, err
}

func TestAccepts(t *testing.T) {
	cases := []struct {
		name string
		body string
		n    int
		bits int
		want []uint64
	}{
		{"quickstart", "[5845, 7686, 2788, 7021, 1913]", 5, 16, []uint64{5845, 7686, 2788, 7021, 1913}},
		{"compact", "[0,1,65535]", 3, 16, []uint64{0, 1, 65535}},
		{"white space everywhere", " \n[\t1 ,\r\n2 ] \n", 2, 8, []uint64{1, 2}},
		{"max uint64 exact", "[18446744073709551615,9007199254740993]", 2, 64, []uint64{math.MaxUint64, 9007199254740993}},
		{"one bit", "[0,1,1]", 3, 1, []uint64{0, 1, 1}},
		{"data wrapper", `{"data": [3, 4]}`, 2, 8, []uint64{3, 4}},
		{"data wrapper escaped key", `{"d\u0061ta":[3]}`, 1, 8, []uint64{3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeAll(c.body, c.n, c.bits)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		n, bits   int
		msg       string
		truncated bool
	}{
		{"too few", "[1,2]", 3, 8, "got 2 values, want 3", false},
		{"too many", "[1,2,3,4]", 3, 8, "value 3 (byte 7): more than the 3 values asked for", false},
		{"empty array", "[]", 1, 8, "got 0 values, want 1", false},
		{"negative", "[1,-2]", 2, 8, "value 1 (byte 3): negative number", false},
		{"float", "[1.5]", 1, 8, "not an integer", false},
		{"exponent", "[1e3]", 1, 16, "not an integer", false},
		{"out of range", "[256]", 1, 8, "256 is out of range (at most 255)", false},
		{"long number out of range", "[10000000000000000]", 1, 50, "a 17-digit number is out of range (at most 1125899906842623)", false},
		{"control byte", "[1]\x01", 1, 8, "trailing data after the answer", false},
		{"non-ASCII byte", "\xff", 1, 8, "unexpected byte 0xff, want '['", false},
		{"bad escape in the member name", `{"d\q":[1]}`, 1, 8, "bad escape in a string", false},
		{"long member name", `{"` + strings.Repeat("d", 100) + `":[1]}`, 1, 8, `unexpected object member (a long name), want only "data"`, false},
		{"over 64 bits", "[18446744073709551616]", 1, 64, "number exceeds 64 bits", false},
		{"leading zero", "[01]", 1, 8, "leading zero", false},
		{"string value", `["1"]`, 1, 8, `unexpected '"', want a number (found a string)`, false},
		{"null value", `[null]`, 1, 8, `unexpected 'n', want a number`, false},
		{"trailing data", "[1] x", 1, 8, `trailing data after the answer`, false},
		{"two arrays", "[1][2]", 1, 8, `trailing data after the answer (found an array)`, false},
		{"trailing comma", "[1,]", 2, 8, `unexpected ']', want a number`, false},
		{"missing comma", "[1 2]", 2, 8, `unexpected '2', want ',' or ']'`, false},
		{"truncated mid array", "[1, 2, 3", 5, 8, "body ended early, after 2 of 5 values", true},
		{"truncated mid number", "[1, 2, 3", 3, 8, "body ended early", true},
		{"empty body", "", 1, 8, "body ended early", true},
		{"object without data", `{"values": [1]}`, 1, 8, `byte 1: unexpected object member, want only "data"`, false},
		{"object with two members", `{"data": [1], "x": 1}`, 1, 8, "more than one member", false},
		{"html error page", "<html>502</html>", 1, 8, `unexpected '<', want '['`, false},
		{"detail object", `{"detail": "quota"}`, 1, 8, `byte 1: unexpected object member, want only "data"`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeAll(c.body, c.n, c.bits)
			var de *Error
			require.ErrorAs(t, err, &de)
			assert.Contains(t, err.Error(), c.msg)
			assert.Equal(t, c.truncated, de.Truncated)
		})
	}
}

func TestSizeLimit(t *testing.T) {
	// An endless body of white space ends at the limit, not in memory.
	endless := io.MultiReader(strings.NewReader("["), iotest.OneByteReader(repeatReader(" ")))
	err := Decode(endless, 1, 8, 1<<20, func(uint64) {})
	var de *Error
	require.ErrorAs(t, err, &de)
	assert.Contains(t, err.Error(), "body exceeds the size limit of 1048576 bytes")

	// An endless array of numbers stops after n values.
	endlessNums := io.MultiReader(strings.NewReader("["), repeatReader("1,"))
	err = Decode(endlessNums, 1000, 8, 1<<30, func(uint64) {})
	assert.ErrorContains(t, err, "more than the 1000 values asked for")
}

func TestReadErrorPassesThrough(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("[1,2"), iotest.ErrReader(boom))
	err := Decode(r, 3, 8, 100, func(uint64) {})
	assert.ErrorIs(t, err, boom)
	var de *Error
	assert.False(t, errors.As(err, &de), "a read error is not a malformed body")
}

func TestValuesAcrossBufferBoundaries(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	const n = 50000
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(math.MaxUint64-uint64(i), 10))
	}
	b.WriteString("]")
	var i int
	err := Decode(iotest.HalfReader(strings.NewReader(b.String())), n, 64, MaxBytes(n), func(v uint64) {
		if v != math.MaxUint64-uint64(i) {
			t.Fatalf("value %d: got %d", i, v)
		}
		i++
	})
	require.NoError(t, err)
	assert.Equal(t, n, i)
}

type repeatReader []byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r[i%len(r)]
	}
	return len(p) - len(p)%len(r), nil
}

// reference decodes with encoding/json under the same acceptance rule:
// a bare array, or an object with the one member "data", of exactly n
// integers below 2^bits.
func reference(data []byte, n, bits int) ([]uint64, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.Token() // '{'
		members := 0
		var arr json.RawMessage
		for dec.More() {
			k, _ := dec.Token()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, false
			}
			members++
			if k == "data" {
				arr = raw
			}
		}
		if members != 1 || arr == nil {
			return nil, false
		}
		data = arr
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil || raws == nil || len(raws) != n {
		return nil, false
	}
	out := make([]uint64, n)
	for i, r := range raws {
		v, err := strconv.ParseUint(string(bytes.TrimSpace(r)), 10, 64)
		if err != nil || (bits < 64 && v >= 1<<bits) {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		"[5845, 7686, 2788, 7021, 1913]", "[1,2,3]", "[1.0]", "[-1]", "[1e2]", "[01]",
		`{"data":[1,2]}`, `{"data":[1],"data":[2]}`, `{"dat\u0061":[7]}`, "[18446744073709551615]",
		"[18446744073709551616]", "[1,]", " [ 1 ] ", "[1]x", "[null]", `{"data":[1],"x":2}`, "",
	} {
		f.Add([]byte(s), uint8(3), uint8(16))
	}
	f.Fuzz(func(t *testing.T, data []byte, n8, bits8 uint8) {
		n, bits := int(n8%8)+1, int(bits8%64)+1
		want, ok := reference(data, n, bits)
		var got []uint64
		err := Decode(bytes.NewReader(data), n, bits, MaxBytes(n)+int64(len(data)), func(v uint64) { got = append(got, v) })
		if ok != (err == nil) {
			t.Fatalf("input %q n=%d bits=%d: encoding/json accepts=%v, Decode err=%v", data, n, bits, ok, err)
		}
		if ok && !slicesEqual(got, want) {
			t.Fatalf("input %q: got %v, encoding/json %v", data, got, want)
		}
		// The same body a byte at a time: values straddle every read.
		var got1 []uint64
		err1 := DecodeTo(iotest.OneByteReader(bytes.NewReader(data)), n, bits, MaxBytes(n)+int64(len(data)), func(vs []uint64) { got1 = append(got1, vs...) })
		if ok != (err1 == nil) || ok && !slicesEqual(got1, want) {
			t.Fatalf("input %q n=%d bits=%d read a byte at a time: got %v, %v; encoding/json %v, %v", data, n, bits, got1, err1, want, ok)
		}
	})
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
