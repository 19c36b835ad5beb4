package qrng

import (
	"bytes"
	"compress/flate"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const matrixToken = "matrix-api-token-5f2c9e81"

// accessTokenRE matches the access tokens qrngtest issues.
var accessTokenRE = regexp.MustCompile(`at-[0-9a-f]{48}`)

// syncBuf collects log output from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertNoSecrets checks that neither the API token nor an access token
// appears in text.
func assertNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	assert.NotContains(t, text, matrixToken, "API token in %s", what)
	assert.False(t, accessTokenRE.MatchString(text), "access token in %s: %q", what, accessTokenRE.FindString(text))
}

// tapRecord collects what the Source's test seams report; they are
// called with the Source's lock held.
type tapRecord struct {
	ranges []struct {
		off int64
		p   []byte
	}
	pushed [][]byte
}

// The fault matrix: every fault qrngtest can produce, what the Source does
// about it, and two invariants checked every time: no byte of a bad answer
// reaches a caller, and no byte is served twice.
func TestFaultMatrix(t *testing.T) {
	const (
		recovered = "recovered" // all bytes quantum
		fallback  = "fallback"  // some bytes from crypto/rand
	)
	cases := []struct {
		name    string
		opts    qrngtest.Options
		faults  []qrngtest.Fault
		outcome string
		check   func(t *testing.T, st Stats, c qrngtest.Counters)
	}{
		{"500", qrngtest.Options{}, []qrngtest.Fault{{Status: 500, Body: "boom"}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.Retries) }},
		{"503 with Retry-After", qrngtest.Options{}, []qrngtest.Fault{{Status: 503, RetryAfter: "1"}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.Retries) }},
		{"429 rate limit", qrngtest.Options{}, []qrngtest.Fault{{Status: 429, Body: `{"detail":"too many requests"}`, RetryAfter: "1"}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.Retries) }},
		{"429 quota", qrngtest.Options{}, []qrngtest.Fault{{Status: 429, Body: `{"detail":"monthly quota exceeded"}`}}, fallback,
			func(t *testing.T, st Stats, c qrngtest.Counters) {
				assert.ErrorIs(t, st.LastError, ErrQuotaExceeded)
				assert.Equal(t, 1, c.RandomRequests, "not retried, nothing more asked this month")
			}},
		{"token expires mid-stream", qrngtest.Options{}, []qrngtest.Fault{{}, {Status: 401, Body: `{"detail":"token expired"}`}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) {
				assert.Equal(t, 2, c.TokenRequests)
				assert.Zero(t, st.Retries)
			}},
		{"truncated JSON", qrngtest.Options{}, []qrngtest.Fault{{Truncate: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.Retries) }},
		{"wrong count", qrngtest.Options{}, []qrngtest.Fault{{WrongCount: -3}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.FailedRequests) }},
		{"out-of-range value", qrngtest.Options{}, []qrngtest.Fault{{OutOfRange: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.FailedRequests) }},
		{"malformed body", qrngtest.Options{}, []qrngtest.Fault{{Malformed: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.FailedRequests) }},
		{"reset connection", qrngtest.Options{}, []qrngtest.Fault{{Reset: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.Retries) }},
		{"slow body", qrngtest.Options{}, []qrngtest.Fault{{SlowBody: 30 * time.Millisecond, Latency: 30 * time.Millisecond}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.Zero(t, st.FailedRequests) }},
		{"all-zero values", qrngtest.Options{}, []qrngtest.Fault{{ZeroValues: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.RejectedBatches) }},
		{"replayed batch", qrngtest.Options{}, []qrngtest.Fault{{}, {Replay: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.RejectedBatches) }},
		{"endless body", qrngtest.Options{}, []qrngtest.Fault{{Endless: true}}, recovered,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.EqualValues(t, 1, st.FailedRequests) }},
		{"server echoes the token", qrngtest.Options{}, []qrngtest.Fault{{Status: 400, Body: `{"detail":"bad key ` + matrixToken + `"}`}}, fallback,
			func(t *testing.T, st Stats, c qrngtest.Counters) {
				assert.ErrorIs(t, st.LastError, ErrBadRequest) // not retried: a 400 is final for that request
				assert.Contains(t, st.LastError.Error(), "bad key [REDACTED]")
			}},
		{"outage", qrngtest.Options{}, []qrngtest.Fault{{Status: 503, Times: -1}}, fallback,
			func(t *testing.T, st Stats, c qrngtest.Counters) { assert.ErrorIs(t, st.LastError, ErrServer) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Token, opts.Record = matrixToken, true
			srv := newServer(t, opts)
			logs := &syncBuf{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
			src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, MaxRetries: 2, WaitTimeout: 2 * time.Second, Logger: logger})
			var rec tapRecord
			src.tap = func(off int64, p []byte) {
				rec.ranges = append(rec.ranges, struct {
					off int64
					p   []byte
				}{off, append([]byte(nil), p...)})
			}
			src.onPush = func(p []byte) { rec.pushed = append(rec.pushed, append([]byte(nil), p...)) }
			srv.Inject(tc.faults...)

			sizes := []int{1, 13, 100, 999, 2048, 8}
			for i, total := 0, 0; total < 12000; i++ {
				p := make([]byte, sizes[i%len(sizes)])
				n, err := src.Read(p)
				require.NoError(t, err)
				require.Equal(t, len(p), n)
				total += n
			}
			st := src.Stats()
			src.Close()
			switch tc.outcome {
			case recovered:
				assert.Zero(t, st.FallbackBytes, "recovered without fallback")
			case fallback:
				assert.Positive(t, st.FallbackBytes, "fell back")
			}
			tc.check(t, st, srv.Counters())

			// Invariant 1: every batch that reached the buffer is a batch
			// the server sent intact, and none twice.
			good := map[string]int{}
			for _, b := range srv.Batches() {
				p := bitpack.New(16, nil)
				for _, v := range b {
					p.Add(v)
				}
				good[string(p.Bytes())]++
			}
			var stream []byte
			for _, b := range rec.pushed {
				require.Positive(t, good[string(b)], "a pushed batch was not an intact answer")
				good[string(b)]--
				stream = append(stream, b...)
			}
			// Invariant 2: served ranges tile the stream once, in order.
			var off int64
			for _, r := range rec.ranges {
				require.Equal(t, off, r.off, "served ranges are contiguous and disjoint")
				require.Equal(t, stream[r.off:r.off+int64(len(r.p))], r.p)
				off += int64(len(r.p))
			}
			assert.Equal(t, st.QuantumBytes, off)

			// No token in logs or errors.
			assertNoSecrets(t, "logs", logs.String())
			if st.LastError != nil {
				assertNoSecrets(t, "LastError", st.LastError.Error())
			}
		})
	}
}

// The same faults under FallbackNever: errors and panics carry no token.
func TestFaultMatrixErrorsAndPanicsCarryNoToken(t *testing.T) {
	for _, f := range []qrngtest.Fault{
		{Status: 400, Body: `{"detail":"bad key ` + matrixToken + `"}`, Times: -1},
		{Status: 401, Body: `{"detail":"` + matrixToken + `"}`, Times: -1},
		{Status: 503, Body: matrixToken, Times: -1},
		{Malformed: true, Times: -1},
		{Status: 429, Body: `{"detail":"quota used by ` + matrixToken + `"}`, Times: -1},
	} {
		srv := newServer(t, qrngtest.Options{Token: matrixToken})
		src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, MaxRetries: 1, Fallback: FallbackNever, WaitTimeout: time.Second})
		srv.Inject(f)
		_, err := src.Read(make([]byte, 10))
		require.Error(t, err)
		assertNoSecrets(t, "error", err.Error())
		assertNoSecrets(t, "error (%+v)", fmt.Sprintf("%+v", err))
		panicText := func() (s string) {
			defer func() { s = fmt.Sprint(recover()) }()
			src.Uint64()
			return ""
		}()
		require.NotEqual(t, "<nil>", panicText)
		assertNoSecrets(t, "panic", panicText)
	}
}

func TestHealthFailuresInARowAreAnOutage(t *testing.T) {
	// Two bad batches are fetched again at once: no fallback.
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, WaitTimeout: 5 * time.Second})
	src.cooldown = time.Hour // an outage would last: make it visible
	srv.Inject(qrngtest.Fault{ZeroValues: true, Times: 2})
	_, err := src.Read(make([]byte, 100))
	require.NoError(t, err)
	st := src.Stats()
	assert.EqualValues(t, 2, st.RejectedBatches)
	assert.Zero(t, st.FallbackBytes)
	assert.Equal(t, 3, srv.Counters().RandomRequests)

	// A third in a row is an outage: the cooldown starts and the caller
	// falls back after WaitTimeout.
	srv2 := newServer(t, qrngtest.Options{})
	src2 := newTestSource(t, srv2, Config{BatchSize: 1000, Workers: 1, WaitTimeout: 300 * time.Millisecond})
	src2.cooldown = time.Hour
	srv2.Inject(qrngtest.Fault{ZeroValues: true, Times: 3})
	_, err = src2.Read(make([]byte, 100))
	require.NoError(t, err)
	st = src2.Stats()
	assert.EqualValues(t, 3, st.RejectedBatches)
	assert.EqualValues(t, 100, st.FallbackBytes)
	assert.ErrorIs(t, st.LastError, ErrRejectedBatch)
	assert.Zero(t, st.QuantumBytes, "no byte of a rejected batch is served")
	assert.Equal(t, 3, srv2.Counters().RandomRequests)
}

func TestMixChangesEveryByteButKeepsAccounting(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 11, Record: true})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, Mix: true})
	out := make([]byte, 2000)
	_, err := src.Read(out)
	require.NoError(t, err)
	p := bitpack.New(16, nil)
	for _, v := range srv.Batches()[0] {
		p.Add(v)
	}
	raw := p.Bytes()
	same := 0
	for i := range out {
		if out[i] == raw[i] {
			same++
		}
	}
	assert.Less(t, same, 40, "about 1 in 256 bytes equal by chance, not the quantum bytes as they came")
	assert.EqualValues(t, 2000, src.Stats().QuantumBytes)
	v1, v2 := src.Uint64(), src.Uint64()
	assert.NotEqual(t, v1, v2)
}

func TestOutputLooksRandom(t *testing.T) {
	size := 8 << 20
	if testing.Short() || raceEnabled {
		size = 2 << 20
	}
	srv := newServer(t, qrngtest.Options{QuotaBits: -1})
	src := newTestSource(t, srv, Config{Bits: 64, BatchSize: 1 << 17, Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
	out := make([]byte, size)
	n, err := src.Read(out) // one large read, like crypto/rand's own test
	require.NoError(t, err)
	require.Equal(t, size, n)
	require.Zero(t, src.Stats().FallbackBytes)

	// It does not compress (crypto/rand's test: at least 99% of its size).
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(out[:1<<20])
	w.Close()
	assert.GreaterOrEqual(t, z.Len(), (1<<20)*99/100)

	// All 256 byte values appear.
	var seen [256]bool
	for _, b := range out[:64<<10] {
		seen[b] = true
	}
	for v, ok := range seen {
		assert.True(t, ok, "byte %d never appears", v)
	}
}

// With 12-bit values, every output byte is uniform, in each of the three
// positions a byte can have relative to the 12-bit boundaries.
func TestTwelveBitOutputBytesAreUniform(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{Bits: 12, BatchSize: 100_000})
	out := make([]byte, 3<<19) // 1.5 MiB: 512 Ki bytes per position
	_, err := src.Read(out)
	require.NoError(t, err)
	for phase := range 3 {
		var hist [256]float64
		count := 0
		for i := phase; i < len(out); i += 3 {
			hist[out[i]]++
			count++
		}
		exp := float64(count) / 256
		chi := 0.0
		for _, h := range hist {
			chi += (h - exp) * (h - exp) / exp
		}
		// 255 degrees of freedom: P[chi2 > 380] is below 1e-6.
		assert.Less(t, chi, 380.0, "position %d: chi-square %.1f", phase, chi)
	}
}
