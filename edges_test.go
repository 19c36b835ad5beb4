package qrng

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptUpstream answers each Fetch as its script says, by call number
// (from 1). Tests use it to order events that a real server cannot.
type scriptUpstream struct {
	calls  atomic.Int64
	script func(ctx context.Context, call int, p []byte) (int, error)
}

func (u *scriptUpstream) Fetch(ctx context.Context, p []byte) (int, error) {
	return u.script(ctx, int(u.calls.Add(1)), p)
}

// fresh fills p with crypto/rand bytes, as a healthy upstream would.
func fresh(p []byte) (int, error) { crand.Read(p); return len(p), nil }

func newScriptSource(t *testing.T, up Upstream, cfg Config) *Source {
	t.Helper()
	cfg.Upstream = up
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	s := NewSource(cfg)
	s.cooldown = 20 * time.Millisecond
	t.Cleanup(func() { s.Close() })
	return s
}

// Issue 9.5: bytes Uint64 took for a value that ends in a panic are not
// counted as served.
func TestUint64PanicDoesNotCountUnservedBytes(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		if call == 1 {
			return fresh(p)
		}
		return 0, fmt.Errorf("%w: scripted outage", ErrServer)
	}}
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 1, OnDemand: true, Fallback: FallbackNever})
	_, err := src.Read(make([]byte, 509)) // 3 of the batch's 512 bytes left
	require.NoError(t, err)
	assert.PanicsWithError(t, "qrng: server error: scripted outage", func() { src.Uint64() })
	assert.EqualValues(t, 509, src.Stats().QuantumBytes, "the 3 bytes taken for the failed value were not served")
	assert.Zero(t, src.Stats().Buffered)
}

// Issue 9.7: an outage does not spend the quota; a 200 answer that is then
// cut stays counted.
func TestOutageDoesNotSpendQuota(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	const batchBits = 1024 * 16
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 2, QuotaBits: 5 * batchBits,
		WaitTimeout: 50 * time.Millisecond, MaxRetries: 1})
	srv.Inject(qrngtest.Fault{Status: 503, Times: -1})
	require.Eventually(t, func() bool {
		_, err := src.Read(make([]byte, 64))
		require.NoError(t, err)
		return srv.Counters().RandomRequests >= 12 // far more than the quota's 5 batches
	}, 30*time.Second, time.Millisecond)
	// With no request in flight (a reservation is counted until its
	// request ends), nothing is counted: no request was answered with 200.
	var used int64
	require.Eventually(t, func() bool {
		src.mu.Lock() // workers change inflight under it, before reserving and after refunding
		defer src.mu.Unlock()
		used = src.svc.quotaUsed()
		return src.inflight == 0
	}, 30*time.Second, time.Millisecond)
	assert.Zero(t, used, "no request was answered with 200")
	st := src.Stats()
	assert.Zero(t, st.QuantumBytes)
	assert.NotErrorIs(t, st.LastError, ErrQuotaExceeded)

	srv.ClearFaults()
	require.Eventually(t, func() bool {
		_, err := src.Read(make([]byte, 64))
		require.NoError(t, err)
		return !src.Stats().FallbackActive
	}, 30*time.Second, 5*time.Millisecond, "quantum bytes again once the service is back")
	assert.EqualValues(t, srv.Counters().BitsServed, src.Stats().QuotaBitsUsed, "exactly what was served counts")

	// A 200 answer cut short: the service probably counted it. So it did
	// a request cut before its status line left the emulator's buffer
	// (the halved second request here): sent whole and unanswered, it is
	// in doubt, and stays counted too.
	srv2 := newServer(t, qrngtest.Options{})
	cut := newTestSource(t, srv2, Config{BatchSize: 1024, Workers: 1, OnDemand: true, MaxRetries: -1, Fallback: FallbackNever})
	srv2.Inject(qrngtest.Fault{Truncate: true, Times: -1})
	_, err := cut.Read(make([]byte, 2048))
	require.Error(t, err)
	assert.GreaterOrEqual(t, cut.Stats().QuotaBitsUsed, int64(batchBits))
	assert.EqualValues(t, srv2.Counters().BitsServed, cut.Stats().QuotaBitsUsed, "what the emulator counted, no less")
}

// Issue 9.8: once the quota is spent, a later failure of another kind
// does not hide it.
func TestQuotaErrorWinsOverLaterFailures(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) { return fresh(p) }}
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 2, OnDemand: true, Fallback: FallbackNever})
	_, err := src.Read(make([]byte, 512))
	require.NoError(t, err)
	src.mu.Lock() // two workers' results, in this order
	src.failedLocked(fmt.Errorf("%w: scripted", ErrQuotaExceeded), 512)
	src.failedLocked(&APIError{Endpoint: pathRandomNumbers, StatusCode: 503, kind: ErrServer}, 512)
	src.mu.Unlock()
	_, err = src.Read(make([]byte, 8))
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.ErrorIs(t, src.Stats().LastError, ErrQuotaExceeded)
}

// Issue 9.9: a batch in flight is served before the quota is declared
// spent.
func TestBatchInFlightServedBeforeQuota(t *testing.T) {
	release := make(chan struct{})
	quotaHit := make(chan struct{})
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		switch call {
		case 1:
			return fresh(p)
		case 2: // in flight while the other worker hits the quota
			select {
			case <-release:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			return fresh(p)
		default:
			if call == 3 {
				close(quotaHit)
			}
			return 0, fmt.Errorf("%w: scripted", ErrQuotaExceeded)
		}
	}}
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 3, BufferSize: 8 * 512,
		Fallback: FallbackOnQuota, WaitTimeout: time.Minute})
	_, err := src.Read(make([]byte, 512)) // the first batch; the drain asks for two more
	require.NoError(t, err)
	<-quotaHit
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(release)
	}()
	n, err := src.Read(make([]byte, 512))
	require.NoError(t, err)
	assert.Equal(t, 512, n)
	st := src.Stats()
	assert.Zero(t, st.FallbackBytes, "the batch in flight was quantum and was served")
	assert.Zero(t, st.FallbackSwitches)
}

// Issue 9.10: after a 503 with Retry-After, the Source's next request
// waits at least that long.
func TestSourceHonoursRetryAfter(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 24 * time.Hour})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, MaxRetries: -1, WaitTimeout: time.Minute})
	src.now = clk.Now
	srv.Inject(qrngtest.Fault{Status: 503, RetryAfter: "3"})
	_, err := src.Read(make([]byte, 10)) // falls back: the outage is declared at once
	require.NoError(t, err)
	require.Equal(t, 1, srv.Counters().RandomRequests)
	clk.Advance(2 * time.Second) // past the Source's own 1 s cooldown, short of Retry-After
	src.Read(make([]byte, 10))
	assert.Never(t, func() bool { return srv.Counters().RandomRequests > 1 }, 100*time.Millisecond, 5*time.Millisecond,
		"nothing is asked before Retry-After")
	clk.Advance(2 * time.Second)
	require.Eventually(t, func() bool {
		src.Read(make([]byte, 10))
		return srv.Counters().RandomRequests == 2
	}, 10*time.Second, 5*time.Millisecond)
}

// Issue 9.12: every Close, concurrent ones too, returns only once the
// workers have stopped and the buffer is erased.
func TestConcurrentCloseWaitsForWorkers(t *testing.T) {
	var fetching atomic.Bool
	started := make(chan struct{}, 1)
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		if call == 1 {
			return fresh(p)
		}
		fetching.Store(true)
		started <- struct{}{}
		time.Sleep(200 * time.Millisecond) // a slow upstream that notices ctx late
		fetching.Store(false)
		return 0, ctx.Err()
	}}
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 1})
	_, err := src.Read(make([]byte, 400)) // leaves 112 bytes, below half: a refill starts
	require.NoError(t, err)
	<-started
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			require.NoError(t, src.Close())
			assert.False(t, fetching.Load(), "Close returned while a worker was still fetching")
			src.mu.Lock()
			assert.Zero(t, src.buf.n, "Close returned before the buffer was erased")
			src.mu.Unlock()
		})
	}
	wg.Wait()
}

// Issue 9.13: fallback switches reach OnFallback and the log in the order
// they happened, even with many readers and a flapping upstream.
func TestFallbackEventsInOrder(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		if call%2 == 0 {
			return 0, fmt.Errorf("%w: scripted flap", ErrServer)
		}
		return fresh(p)
	}}
	var mu sync.Mutex
	var events []bool
	var logs bytes.Buffer
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 2, OnDemand: true,
		WaitTimeout: 10 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &mu}, nil)),
		OnFallback: func(e FallbackEvent) {
			runtime.Gosched() // widen the window in which two deliveries could cross
			mu.Lock()
			events = append(events, e.Active)
			mu.Unlock()
		}})
	src.cooldown = 200 * time.Microsecond // many switches: an outage ends almost at once
	// Readers in fallback do not wait for the batch in flight, so a fixed
	// number of reads may end before the upstream has flapped often: read
	// until the Source has switched often enough (or far too long).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := 0; i < 2000 || src.Stats().FallbackSwitches < 60 && i < 2_000_000; i++ {
				if _, err := src.Read(make([]byte, 100)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Greater(t, len(events), 50, "the storm switched often enough to test the order")
	require.NotEmpty(t, events)
	assert.True(t, events[0], "the first switch is to fallback")
	for i := 1; i < len(events); i++ {
		if events[i] == events[i-1] {
			t.Fatalf("events %d and %d are both Active=%v: out of order", i-1, i, events[i])
		}
	}
	assert.Equal(t, src.Stats().FallbackActive, events[len(events)-1], "the last event tells the state")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, len(events), "one log line per event")
	for i, l := range lines {
		assert.Equal(t, events[i], strings.Contains(l, "level=WARN"), "log line %d matches event %d", i, i)
	}
	assert.EqualValues(t, (len(events)+1)/2, src.Stats().FallbackSwitches)
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Issue 9.14: the wait timeout matches context.DeadlineExceeded.
func TestWaitTimeoutMatchesDeadlineExceeded(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	srv.Inject(qrngtest.Fault{Latency: time.Minute})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, Fallback: FallbackNever, WaitTimeout: 50 * time.Millisecond})
	_, err := src.Read(make([]byte, 8))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "qrng: no random data within 50ms")
	var te interface{ Timeout() bool }
	assert.True(t, errors.As(err, &te) && te.Timeout())
	srv.ClearFaults()
	srv.Shutdown()
}

// Issue 9.15: Read of nothing still reports a closed Source.
func TestEmptyReadAfterClose(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1024})
	n, err := src.Read(nil)
	assert.Zero(t, n)
	assert.NoError(t, err)
	require.NoError(t, src.Close())
	n, err = src.Read(nil)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = src.Read([]byte{})
	assert.ErrorIs(t, err, ErrClosed)
}

// Issue 9.16: a bad $QCI_API_URL never panics: it is reported when bytes
// are read, naming the variable.
func TestBadEnvURLIsAnErrorNotAPanic(t *testing.T) {
	t.Setenv("QCI_API_URL", "http://example.com")
	t.Setenv("QCI_TOKEN", "some-token-value")
	var src *Source
	require.NotPanics(t, func() { src = NewSource(Config{Fallback: FallbackNever, Logger: discardLogger()}) })
	defer src.Close()
	_, err := src.Read(make([]byte, 8))
	require.Error(t, err)
	assert.Equal(t, `qrng: $QCI_API_URL: plain http to non-loopback host "example.com" (use https)`, err.Error())

	var reason error
	fb := NewSource(Config{Logger: discardLogger(), OnFallback: func(e FallbackEvent) {
		if e.Active {
			reason = e.Reason
		}
	}})
	defer fb.Close()
	_, err = fb.Read(make([]byte, 8))
	require.NoError(t, err, "FallbackOnError serves crypto/rand, loudly")
	assert.ErrorContains(t, reason, "$QCI_API_URL")
	assert.EqualValues(t, 8, fb.Stats().FallbackBytes)

	_, err = NewClient(ClientConfig{})
	assert.EqualError(t, err, `qrng: $QCI_API_URL: plain http to non-loopback host "example.com" (use https)`)
	assert.PanicsWithValue(t, `qrng: Config.BaseURL: plain http to non-loopback host "example.org" (use https)`,
		func() { NewSource(Config{BaseURL: "http://example.org"}) }, "a bad Config field still panics")
}

var _ = http.StatusOK

// stallBeforeStatus holds every answer of the random-numbers endpoint
// after the emulator counted it and before its status line, until the
// client gives up: a request the service served whose answer never came.
type stallBeforeStatus struct {
	http.ResponseWriter
	ctx context.Context
}

func (w stallBeforeStatus) WriteHeader(code int) {
	<-w.ctx.Done()
	w.ResponseWriter.WriteHeader(code)
}

// A request sent whole whose answer never comes (Close cancels it) stays
// counted on the local meter: the service may have served it, and here
// it did. Refunding it would let the meter fall below the service's
// count (the hostile review's 64 goroutines: 4,096 bits counted of
// 12,288 served).
func TestUnansweredRequestStaysCounted(t *testing.T) {
	emu := qrngtest.New(qrngtest.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, qrngtest.PathRandomNumbers) {
			w = stallBeforeStatus{w, r.Context()}
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	src := NewSource(Config{Token: emu.Token(), BaseURL: hs.URL, OnDemand: true, Workers: 1, MaxRetries: -1})
	done := make(chan error, 1)
	go func() {
		_, err := src.Read(make([]byte, 8))
		done <- err
	}()
	require.Eventually(t, func() bool { return emu.Counters().BitsServed > 0 }, time.Minute, time.Millisecond,
		"the emulator counts the request, then stalls")
	require.NoError(t, src.Close())
	assert.ErrorIs(t, <-done, ErrClosed)
	served := emu.Counters().BitsServed
	assert.EqualValues(t, 4096, served, "one window")
	assert.Equal(t, served, src.Stats().QuotaBitsUsed, "counted, not refunded")
}
