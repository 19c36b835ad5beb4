package qrng

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 19, item 1: what a Source spends, measured by the emulator. Every
// Source here has the default sizes (BatchSize 100,000 values of 16 bits,
// two workers, BufferSize four batches).

// newDefaultSource is a Source for srv with every size at its default.
func newDefaultSource(t *testing.T, srv *qrngtest.Server, cfg Config) *Source {
	t.Helper()
	cfg.Token, cfg.BaseURL = srv.Token, srv.URL
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	src := NewSource(cfg)
	t.Cleanup(func() { src.Close() })
	return src
}

// A one-shot program: one IntN(100), then Close. The first request asks
// for what the read needs, one 512-byte window (256 values of 16 bits,
// 4,096 bits); the 504 bytes left are above the refill mark, so nothing
// more is asked. (The first release fetched a whole batch: 1,601,536 bits.)
func TestOneValueSpendsOneWindow(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newDefaultSource(t, srv, Config{})
	v := rand.New(src).IntN(100)
	assert.Less(t, v, 100)
	st := src.Stats()
	require.NoError(t, src.Close())
	c := srv.Counters()
	assert.LessOrEqual(t, c.BitsServed, int64(8192), "issue 19: at most 8,192 bits")
	assert.EqualValues(t, 4096, c.BitsServed, "README: one window, 4,096 bits")
	assert.Equal(t, 1, c.RandomRequests)
	assert.EqualValues(t, 512, st.FetchedBytes, "fetched: one window")
	assert.EqualValues(t, 8, st.QuantumBytes, "served: one value")
	assert.Equal(t, 504, st.Buffered, "the rest, erased by Close")
}

// A 1,000-byte read, then Close: 1,024 bytes first (8,192 bits); the 24
// left are below the refill mark, so one prefetch of twice that may go
// out before Close: at most 24,576 bits in all.
func TestThousandByteReadSpendsLittle(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newDefaultSource(t, srv, Config{})
	n, err := src.Read(make([]byte, 1000))
	require.NoError(t, err)
	require.Equal(t, 1000, n)
	require.NoError(t, src.Close())
	c := srv.Counters()
	assert.LessOrEqual(t, c.BitsServed, int64(32768), "issue 19: at most 32,768 bits")
	assert.LessOrEqual(t, c.BitsServed, int64(24576), "README: 1,024 bytes and at most one prefetch of 2,048")
	assert.LessOrEqual(t, c.RandomRequests, 2)
}

// OnDemand fetches nothing ahead: each request is sent only when what was
// fetched is used up, and is what the waiting read needs, in whole
// windows (no doubling past it).
func TestOnDemandFetchesNothingAhead(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Record: true})
	src := newDefaultSource(t, srv, Config{OnDemand: true})
	rand.New(src).IntN(100)
	assert.EqualValues(t, 4096, srv.Counters().BitsServed, "one window for one value")
	_, err := io.ReadFull(src, make([]byte, 504)) // the rest of that window
	require.NoError(t, err)
	assert.Never(t, func() bool { return srv.Counters().RandomRequests > 1 }, 100*time.Millisecond, 5*time.Millisecond,
		"nothing is fetched ahead")
	_, err = src.Read(make([]byte, 1))
	require.NoError(t, err)
	c := srv.Counters()
	assert.Equal(t, 2, c.RandomRequests)
	assert.EqualValues(t, 4096+4096, c.BitsServed, "the second request is the one window the read needs")
	assert.EqualValues(t, 2, src.Stats().Waits)

	// A read a little past a full batch: one full request, then one unit
	// for the rest, not a second full batch.
	_, err = io.ReadFull(src, make([]byte, 511)) // the rest of the second window
	require.NoError(t, err)
	_, err = io.ReadFull(src, make([]byte, src.batchBytes+100))
	require.NoError(t, err)
	c = srv.Counters()
	assert.Equal(t, 4, c.RandomRequests)
	assert.EqualValues(t, 8192+8*(src.batchBytes+512), c.BitsServed, "a batch, then one window for the 100 bytes past it")
}

// A steady reader: 64 MiB in 4 KiB reads. The first request is what the
// first read needs; the sizes double to full batches within a few
// requests, so the whole run takes at most twice the requests that full
// batches alone would (and, in fact, a handful more).
func TestSteadyReaderReachesFullBatches(t *testing.T) {
	total := 64 << 20
	if raceEnabled {
		total = 8 << 20 // the race detector slows the decoder tenfold (still 42 full batches)
	}
	srv := newServer(t, qrngtest.Options{Record: true, QuotaBits: -1})
	src := newDefaultSource(t, srv, Config{Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
	p := make([]byte, 4096)
	for read := 0; read < total; read += len(p) {
		_, err := io.ReadFull(src, p)
		require.NoError(t, err)
	}
	st := src.Stats()
	require.NoError(t, src.Close())
	const batchBytes = 100_096 * 2 // the default batch: 100,000 rounded up to whole windows
	full := (total + batchBytes - 1) / batchBytes
	batches := srv.Batches()
	require.NotEmpty(t, batches)
	assert.Equal(t, 2048, len(batches[0]), "the first request: one 4 KiB read")
	ramp := 0 // requests smaller than a batch
	for _, b := range batches {
		if len(b) < 100_096 {
			ramp++
		}
	}
	// 4 KiB doubles to a full batch in six steps (4, 8, ... 128 KiB, then
	// 195.5 KiB), each step at most one request per worker.
	assert.LessOrEqual(t, ramp, 2*6, "the slow start takes a few requests")
	assert.LessOrEqual(t, len(batches), 2*full, "at most twice the requests of full batches")
	assert.LessOrEqual(t, len(batches), full+ramp+4, "full batches, the ramp, and the prefetch at most")
	assert.EqualValues(t, total, st.QuantumBytes)
	assert.Zero(t, st.FallbackBytes)
	assert.EqualValues(t, int64(total)+int64(st.Buffered), st.FetchedBytes, "fetched = served + ready")
	assert.LessOrEqual(t, st.FetchedBytes-int64(total), int64(4*batchBytes+batchBytes),
		"the prefetch left at Close: at most BufferSize plus one batch")
	t.Logf("%d bytes served; %d requests (full batches alone: %d; ramp %d); %d bytes fetched, %d left at Close",
		total, len(batches), full, ramp, st.FetchedBytes, st.FetchedBytes-int64(total))
}

// A slow service: at 200,000 bits a second a full default batch
// (1,601,536 bits) takes 8 s, far past the 200 ms attempt timeout, and so
// does the first request, 64 KiB (2.6 s, thirteen times the timeout). The
// Source halves its requests until they are answered in time (4 KiB takes
// 164 ms, one window 20 ms), and delivers.
func TestSlowServiceGetsSmallerRequests(t *testing.T) {
	const rate = 200_000
	const timeout = 200 * time.Millisecond
	srv := newServer(t, qrngtest.Options{Rate: rate})
	src := newDefaultSource(t, srv, Config{AttemptTimeout: timeout, MaxBackoff: time.Millisecond,
		RetryPause: time.Millisecond, Fallback: FallbackNever, WaitTimeout: 5 * time.Minute})
	var mu sync.Mutex
	var received []int // sizes of the batches the Source got, in bytes
	src.onPush = func(p []byte) { mu.Lock(); received = append(received, len(p)); mu.Unlock() }
	p := make([]byte, 64<<10)
	_, err := io.ReadFull(src, p)
	require.NoError(t, err)
	st := src.Stats()
	assert.EqualValues(t, len(p), st.QuantumBytes)
	assert.Zero(t, st.FallbackBytes)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, received)
	most := 0
	for _, n := range received {
		most = max(most, n)
		assert.Less(t, n, len(p), "every batch received is smaller than the first request, which cannot be answered in time")
	}
	c := srv.Counters()
	assert.Greater(t, c.RandomRequests, len(received), "the requests too big for the timeout got no answer")
	t.Logf("%d requests, %d received; the largest received was %d bytes (%s at %d bits/s)", c.RandomRequests, len(received),
		most, time.Duration(float64(8*most)/rate*float64(time.Second)), rate)
}

// OnDemand under a storm: 32 callers (Uint64 and Reads of up to 3,000
// bytes) on 4 workers, the Source closed while they read. No value is
// served twice, every caller returns, and what was fetched beyond what
// was served is bounded by the waiting callers' needs: each request is
// one caller's need in whole windows, so at most one request per caller
// (3,072 bytes) can be left over at Close, plus what Uint64's windows
// hold unclaimed.
func TestOnDemandStormWithClose(t *testing.T) {
	srv := newServer(t, qrngtest.Options{QuotaBits: -1})
	src := newTestSource(t, srv, Config{Bits: 64, Workers: 4, OnDemand: true, QuotaBits: -1, Fallback: FallbackNever})
	const callers = 32
	var mu sync.Mutex
	seen := map[uint64]bool{}
	dup := 0
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for range 400 {
				if i%2 == 0 {
					v, err := func() (v uint64, err error) {
						defer func() {
							if p := recover(); p != nil {
								var ok bool
								if err, ok = p.(error); !ok {
									err = fmt.Errorf("a panic that is no error: %v", p)
								}
							}
						}()
						return src.Uint64(), nil
					}()
					if err != nil {
						assert.ErrorIs(t, err, ErrClosed)
						return
					}
					mu.Lock()
					if seen[v] {
						dup++
					}
					seen[v] = true
					mu.Unlock()
					continue
				}
				if _, err := src.Read(make([]byte, 1+r.IntN(3000))); err != nil {
					assert.ErrorIs(t, err, ErrClosed)
					return
				}
			}
		})
	}
	// Close once the storm is under way (or over: every caller done).
	require.Eventually(t, func() bool { return src.Stats().QuantumBytes >= 256<<10 }, time.Minute, time.Millisecond)
	require.NoError(t, src.Close())
	wg.Wait()
	assert.Zero(t, dup, "a value served twice")
	st := src.Stats()
	t.Logf("served %d bytes, %d values checked, fetched %d bytes in %d requests", st.QuantumBytes, len(seen), st.FetchedBytes, st.Requests)
	left := st.FetchedBytes - st.QuantumBytes
	assert.GreaterOrEqual(t, left, int64(0))
	assert.LessOrEqual(t, left, int64(callers*3072+64<<10), "fetched beyond served: at most a request per caller and the windows")
}
