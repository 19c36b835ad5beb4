package qrng

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"go.uber.org/goleak"
)

// Issue 15: callbacks and upstreams cannot break the Source, and it stays
// live in fallback.

// noPanic runs f and reports a panic as a test failure.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", what, r)
		}
	}()
	f()
}

// Item 5: an OnFallback that panics, then one that calls runtime.Goexit,
// neither reaches the caller of Read nor silences later switches: they are
// still delivered, in order, and the failure is logged once.
func TestFailingOnFallbackIsRecovered(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		if call%2 == 1 {
			return 0, fmt.Errorf("%w: scripted flap", ErrServer)
		}
		return fresh(p)
	}}
	var calls atomic.Int64
	var mu sync.Mutex
	var delivered []bool
	logs := &syncBuf{}
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 1, OnDemand: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		OnFallback: func(e FallbackEvent) {
			switch calls.Add(1) {
			case 1:
				panic("the callback's own bug")
			case 2:
				runtime.Goexit()
			}
			mu.Lock()
			delivered = append(delivered, e.Active)
			mu.Unlock()
		}})
	src.cooldown = time.Millisecond
	for i := 0; calls.Load() < 8; i++ {
		require.Less(t, i, 100000, "the Source stopped switching")
		noPanic(t, "Read", func() {
			_, err := src.Read(make([]byte, 512))
			require.NoError(t, err)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(delivered), 6, "events after the failures still arrive")
	// Events 1 (to fallback) and 2 (back) went to the failing callbacks;
	// from the third on they alternate, starting with a switch to fallback.
	for i, active := range delivered {
		assert.Equal(t, i%2 == 0, active, "event %d in order", i+3)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "a fallback report failed"), "the failure is logged once: %s", logs.String())
	assert.Contains(t, logs.String(), "the callback's own bug")
}

// Sizing: a Read of nothing starts nothing and spends nothing.
func TestZeroLengthReadStartsNothing(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := newDefaultSource(t, srv, Config{})
	for range 3 {
		n, err := src.Read(nil)
		assert.Zero(t, n)
		assert.NoError(t, err)
		n, err = src.ReadContext(context.Background(), []byte{})
		assert.Zero(t, n)
		assert.NoError(t, err)
	}
	assert.Never(t, func() bool { return srv.Counters() != qrngtest.Counters{} }, 100*time.Millisecond, 10*time.Millisecond,
		"nothing asked of the service")
	assert.Equal(t, Stats{}, src.Stats())
	require.NoError(t, src.Close())
}

// Item 10: SyncUsage reads the usage again, after a backoff pause,
// before any random numbers are requested: the service's count is not
// ignored because the usage endpoint failed at start.
func TestSyncUsageRetriesBeforeTheFirstRequest(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{})
	_, err := c.RandomNumbers(context.Background(), 3*1024, 16) // another process used 3 batches' worth
	require.NoError(t, err)
	// Five failed answers: two reads of two attempts each fail, the third
	// read's second attempt succeeds.
	srv.Inject(qrngtest.Fault{Path: qrngtest.PathUsage, Status: 503, Times: 5})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, MaxRetries: 1, QuotaBits: 4 * 16384,
		SyncUsage: true, Fallback: FallbackNever, WaitTimeout: time.Minute})
	_, err = io.ReadFull(src, make([]byte, 2048)) // the one batch's worth left
	require.NoError(t, err)
	_, err = src.Read(make([]byte, 1))
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.Equal(t, 6, srv.Counters().UsageRequests, "three reads: 2 + 2 + 2 attempts")
	assert.EqualValues(t, 4*16384, src.Stats().QuotaBitsUsed)
	assert.LessOrEqual(t, srv.Counters().BitsServed, int64(4*16384), "nothing past the month's quota")
}

// Item 10: when the usage cannot be read at all, SyncUsage gives up after
// three reads and says so; the Source then fetches.
func TestSyncUsageSaysWhenItGivesUp(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	srv.Inject(qrngtest.Fault{Path: qrngtest.PathUsage, Status: 503, Times: -1})
	logs := &syncBuf{}
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, MaxRetries: -1, SyncUsage: true,
		Fallback: FallbackNever, WaitTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	_, err := src.Read(make([]byte, 8))
	require.NoError(t, err)
	assert.Equal(t, 3, srv.Counters().UsageRequests)
	assert.Equal(t, 1, strings.Count(logs.String(), "SyncUsage gave up"), logs.String())
	assert.Contains(t, logs.String(), "level=WARN")
}

// Item 9, the meter's side: a usage answer that cannot be true (2^63-1,
// which wrapped the first release's meter negative and disabled it; or a
// negative count) fails closed: the quota counts as spent, nothing is
// requested, and a sane answer later lifts it.
func TestMeterFailsClosedOnAnImpossibleUsage(t *testing.T) {
	for _, bad := range []string{"9223372036854775807", "4611686018427387905", "-5"} {
		t.Run(bad, func(t *testing.T) {
			clk := newFakeClock()
			srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 24 * time.Hour})
			var sane atomic.Bool
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == qrngtest.PathUsage && !sane.Load() {
					fmt.Fprintf(w, `{"n_bits": %s}`, bad)
					return
				}
				srv.Emulator.ServeHTTP(w, r)
			}))
			t.Cleanup(front.Close)
			src := NewSource(Config{Token: srv.Token, BaseURL: front.URL, BatchSize: 1024, Workers: 1, SyncUsage: true,
				Fallback: FallbackNever, Logger: discardLogger()})
			src.now = clk.Now
			t.Cleanup(func() { src.Close() })
			_, err := src.Read(make([]byte, 8))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrQuotaExceeded, "fails closed")
			assert.ErrorContains(t, err, "cannot be true")
			assert.Zero(t, srv.Counters().RandomRequests, "nothing requested on a meter that cannot be trusted")

			sane.Store(true)
			clk.Advance(2 * time.Minute) // past the minute the distrust holds
			require.Eventually(t, func() bool {
				_, err := src.Read(make([]byte, 8))
				return err == nil
			}, 10*time.Second, 5*time.Millisecond, "a sane answer lifts it")
			assert.Positive(t, srv.Counters().RandomRequests)
		})
	}
}

// Item 9: the meter's own range check holds whatever the client lets
// through.
func TestMeterRefusesUsageOutsideRange(t *testing.T) {
	m := quotaMeter{limit: DefaultQuotaBits}
	now := time.Now()
	require.NoError(t, m.observe(now, 1000))
	for _, used := range []int64{-1, 1<<62 + 1, 1<<63 - 1} {
		err := m.observe(now, used)
		assert.ErrorIs(t, err, ErrInvalidResponse, "usage %d", used)
		assert.EqualValues(t, 1000, m.used, "the meter is unchanged")
	}
	require.NoError(t, m.observe(now, 1<<62))
	_, err := m.reserve(now, 1)
	assert.ErrorIs(t, err, ErrQuotaExceeded, "no overflow past the largest usage")
}

// Item 11: a panic in Upstream.Fetch is a failed batch under the error
// policy, never a dead process.
func TestPanickingFetchIsAFailedBatch(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		if call <= 3 {
			var m map[string]int
			m["the upstream's own bug"]++ // a nil map: a runtime panic
		}
		return fresh(p)
	}}
	never := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 1, Fallback: FallbackNever})
	var err error
	noPanic(t, "Read", func() { _, err = never.Read(make([]byte, 8)) })
	require.Error(t, err)
	assert.ErrorContains(t, err, "qrng: the upstream's Fetch panicked: assignment to entry in nil map")
	require.Eventually(t, func() bool { // after the pause, a good batch
		_, err := never.Read(make([]byte, 8))
		return err == nil
	}, 10*time.Second, time.Millisecond)

	up2 := &scriptUpstream{script: up.script}
	fb := newScriptSource(t, up2, Config{Bits: 16, BatchSize: 256, Workers: 1})
	var n int
	noPanic(t, "Read", func() { n, err = fb.Read(make([]byte, 8)) })
	require.NoError(t, err, "FallbackOnError serves crypto/rand")
	assert.Equal(t, 8, n)
	assert.EqualValues(t, 8, fb.Stats().FallbackBytes)
	assert.ErrorContains(t, fb.Stats().LastError, "panicked")
}

// Item 11: Close returns within its bound even when Fetch ignores its
// context, and says so; the stuck Fetch's bytes are erased, not served,
// when it returns, and then no goroutine is left.
func TestCloseIsBoundedWhenFetchIgnoresContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	var got []byte
	var mu sync.Mutex
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		if call == 1 {
			return fresh(p)
		}
		<-release // ignores ctx
		mu.Lock()
		got = p
		mu.Unlock()
		return fresh(p)
	}}
	src := NewSource(Config{Upstream: up, Bits: 16, BatchSize: 256, Workers: 1, Logger: discardLogger()})
	assert.Equal(t, 5*time.Second, src.closeWait, "the documented bound")
	src.closeWait = 100 * time.Millisecond
	var pushes atomic.Int64
	src.onPush = func([]byte) { pushes.Add(1) }
	_, err := src.Read(make([]byte, 400)) // below half the target: the refill hangs in Fetch
	require.NoError(t, err)
	require.Eventually(t, func() bool { return up.calls.Load() == 2 }, 10*time.Second, time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- src.Close() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return while Fetch ignored its context")
	}
	require.Error(t, err)
	assert.ErrorContains(t, err, "qrng: Close gave up after 100ms: 1 Upstream Fetch call(s) ignore the cancelled context")
	assert.Equal(t, err, src.Close(), "every Close says the same")
	_, rerr := src.Read(make([]byte, 1))
	assert.ErrorIs(t, rerr, ErrClosed)

	close(release)
	require.Eventually(t, func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.running == 0
	}, 10*time.Second, time.Millisecond, "the stuck worker stops once its Fetch returns")
	mu.Lock()
	assert.Equal(t, make([]byte, len(got)), got, "what the stuck Fetch returned was erased")
	mu.Unlock()
	assert.EqualValues(t, 1, pushes.Load(), "and never pushed")
}

// Item 12: once serving fallback under FallbackOnError while the upstream
// hangs, callers no longer wait WaitTimeout each: the first call waited,
// the next ones get crypto/rand bytes at once. Quantum bytes come back
// as soon as a batch arrives.
func TestNoRepeatedWaitOnceInFallback(t *testing.T) {
	release := make(chan struct{})
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return fresh(p)
	}}
	src := newScriptSource(t, up, Config{Bits: 16, BatchSize: 256, Workers: 1, WaitTimeout: 50 * time.Millisecond})
	for range 10 {
		noPanic(t, "Uint64", func() { src.Uint64() })
	}
	st := src.Stats()
	assert.EqualValues(t, 1, st.Waits, "only the first call waited")
	assert.EqualValues(t, 80, st.FallbackBytes)
	assert.True(t, st.FallbackActive)
	assert.True(t, errors.Is(st.LastError, context.DeadlineExceeded) || st.LastError == nil, "%v", st.LastError)

	close(release)
	require.Eventually(t, func() bool {
		src.Uint64()
		return !src.Stats().FallbackActive
	}, 10*time.Second, time.Millisecond, "quantum bytes once a batch arrives")
	assert.Positive(t, src.Stats().QuantumBytes)
}
