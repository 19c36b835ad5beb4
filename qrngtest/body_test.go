package qrngtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func numbersRequest(n, bits int) string {
	return `{"distribution":"uniform_discrete","output_type":"decimal","n_samples":` + strconv.Itoa(n) + `,"n_bits":` + strconv.Itoa(bits) + `}`
}

// render writes values as the service does: "[5845, 7686, 2788]".
func render(values []uint64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(v, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// TestBodyIsTheRecordedBatch checks, for every width and with and without
// a seed, that the body is exactly the recorded batch in the service's
// format, that every value is below 2^bits, and that the values use their
// whole width (the top bit is set in some, not in others).
func TestBodyIsTheRecordedBatch(t *testing.T) {
	for _, seed := range []uint64{0, 3} {
		s := NewServer(Options{Seed: seed, Record: true, QuotaBits: -1})
		tok := accessToken(t, s)
		for bits := 1; bits <= 64; bits++ {
			n := 1 + 997*bits%3000
			code, _, body := post(t, s.URL+PathRandomNumbers, tok, numbersRequest(n, bits))
			require.Equal(t, 200, code, body)
			batches := s.Batches()
			require.Len(t, batches, bits)
			vals := batches[bits-1]
			require.Len(t, vals, n)
			require.Equal(t, render(vals), body, "bits %d", bits)
			top := 0
			for _, v := range vals {
				require.Zero(t, v>>1>>(bits-1), "bits %d: %d is out of range", bits, v)
				top += int(v >> (bits - 1))
			}
			if n >= 100 {
				assert.Greater(t, top, n/4, "bits %d: the top bit is seldom set", bits)
				assert.Less(t, top, 3*n/4, "bits %d: the top bit is nearly always set", bits)
			}
		}
		s.Close()
	}
}

// TestBodyFaults checks the shape of each body fault.
func TestBodyFaults(t *testing.T) {
	s := NewServer(Options{Seed: 1, QuotaBits: -1})
	defer s.Close()
	tok := accessToken(t, s)
	const n = 20000 // a body of several write chunks
	get := func(f Fault, bits int) (int, string, error) {
		s.Inject(f)
		req, err := http.NewRequest("POST", s.URL+PathRandomNumbers, strings.NewReader(numbersRequest(n, bits)))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	decodeArray := func(t *testing.T, body string) []uint64 {
		var vals []uint64
		require.NoError(t, json.Unmarshal([]byte(body), &vals))
		return vals
	}

	_, plain, err := get(Fault{Path: "/none"}, 16) // no fault on this request
	require.NoError(t, err)
	assert.Len(t, decodeArray(t, plain), n)

	t.Run("wrong count", func(t *testing.T) {
		for _, d := range []int{-1, 1, 2, -n + 1} {
			_, body, err := get(Fault{WrongCount: d}, 16)
			require.NoError(t, err)
			vals := decodeArray(t, body)
			assert.Len(t, vals, n+d)
			if d > 0 {
				assert.Equal(t, vals[:d], vals[n:], "the extra values repeat the batch from its start")
			}
		}
	})
	t.Run("out of range", func(t *testing.T) {
		for _, bits := range []int{1, 16, 63} {
			_, body, err := get(Fault{OutOfRange: true}, bits)
			require.NoError(t, err)
			vals := decodeArray(t, body)
			require.Len(t, vals, n)
			assert.Equal(t, uint64(1)<<bits, vals[n/2])
			for i, v := range vals {
				if i != n/2 {
					require.Less(t, v, uint64(1)<<bits)
				}
			}
		}
		_, body, err := get(Fault{OutOfRange: true}, 64)
		require.NoError(t, err)
		assert.Equal(t, n/2, strings.Count(body[:strings.Index(body, "18446744073709551616")], ","))
	})
	t.Run("zero values", func(t *testing.T) {
		_, body, err := get(Fault{ZeroValues: true}, 16)
		require.NoError(t, err)
		assert.Equal(t, make([]uint64, n), decodeArray(t, body))
	})
	t.Run("replay", func(t *testing.T) {
		_, first, err := get(Fault{Path: "/none"}, 16)
		require.NoError(t, err)
		_, again, err := get(Fault{Replay: true}, 16)
		require.NoError(t, err)
		assert.Equal(t, first, again)
	})
	t.Run("wrap", func(t *testing.T) {
		_, body, err := get(Fault{Wrap: true}, 16)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(body, `{"data": [`), body[:20])
		var w struct{ Data []uint64 }
		require.NoError(t, json.Unmarshal([]byte(body), &w))
		assert.Len(t, w.Data, n)
	})
	t.Run("malformed", func(t *testing.T) {
		_, body, err := get(Fault{Malformed: true}, 16)
		require.NoError(t, err)
		assert.Equal(t, `[1, 2, "three", {`, body)
	})
	t.Run("truncate", func(t *testing.T) {
		_, body, err := get(Fault{Truncate: true}, 16)
		require.Error(t, err, "the connection is closed mid-body")
		assert.True(t, strings.HasPrefix(body, "["))
		assert.Equal(t, n/2-1, strings.Count(body, ","), "cut before value n/2")
	})
	t.Run("slow body", func(t *testing.T) {
		start := time.Now()
		_, body, err := get(Fault{SlowBody: 20 * time.Millisecond}, 16)
		require.NoError(t, err)
		assert.Len(t, decodeArray(t, body), n)
		pauses := len(body) / (16 << 10)
		assert.GreaterOrEqual(t, time.Since(start), time.Duration(pauses)*20*time.Millisecond, "a pause after each 16 KiB")
	})
	t.Run("endless", func(t *testing.T) {
		s.Inject(Fault{Endless: true})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+PathRandomNumbers, strings.NewReader(numbersRequest(100, 16)))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		got, err := io.CopyN(io.Discard, resp.Body, 4<<20)
		require.NoError(t, err)
		assert.Equal(t, int64(4<<20), got, "far more than 100 values")
	})
}
