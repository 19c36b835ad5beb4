package qrng

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// newTestSource returns a Source for srv whose retries and cooldowns are
// short, closed when the test ends.
func newTestSource(t *testing.T, srv *qrngtest.Server, cfg Config) *Source {
	t.Helper()
	cfg.BaseURL, cfg.Token = srv.URL, cmp(cfg.Token, srv.Token)
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	s := NewSource(cfg)
	s.cooldown = 20 * time.Millisecond
	s.client.sleep = func(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, d/100) }
	t.Cleanup(func() { s.Close() })
	return s
}

// concat joins the server's recorded batches.
func concat(batches [][]uint64) []uint64 {
	var out []uint64
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

func TestDropInRandNew(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 1, Record: true})
	src := newTestSource(t, srv, Config{BatchSize: 4096, Workers: 1})
	r := rand.New(src)

	// Every rand.Rand method works and stays in range.
	assert.Less(t, r.IntN(10), 10)
	assert.Less(t, r.Int64N(1000), int64(1000))
	assert.Less(t, r.Int32N(7), int32(7))
	assert.Less(t, r.UintN(3), uint(3))
	assert.Less(t, r.Uint64N(5), uint64(5))
	assert.Less(t, r.Uint32N(5), uint32(5))
	assert.GreaterOrEqual(t, r.Int(), 0)
	assert.GreaterOrEqual(t, r.Int32(), int32(0))
	assert.GreaterOrEqual(t, r.Int64(), int64(0))
	_ = r.Uint32()
	_ = r.Uint64()
	_ = r.Uint()
	f := r.Float64()
	assert.True(t, f >= 0 && f < 1)
	f32 := r.Float32()
	assert.True(t, f32 >= 0 && f32 < 1)
	_ = r.NormFloat64()
	assert.GreaterOrEqual(t, r.ExpFloat64(), 0.0)
	perm := r.Perm(20)
	assert.ElementsMatch(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, perm)
	deck := []int{1, 2, 3, 4, 5}
	r.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
	assert.ElementsMatch(t, []int{1, 2, 3, 4, 5}, deck)

	// The values came from the server: a replay of its stream through a
	// plain byte source gives the same results for the same calls. (Read
	// on, so that the server has sent enough of its stream for the replay.)
	_, err := io.ReadFull(src, make([]byte, 4096))
	require.NoError(t, err)
	st := src.Stats()
	assert.Positive(t, st.QuantumBytes)
	assert.Zero(t, st.FallbackBytes)
	stream := bitpack.New(16, nil)
	for _, v := range concat(srv.Batches()) {
		stream.Add(v)
	}
	ref := rand.New(&byteSource{b: stream.Bytes()})
	src2 := newTestSource(t, newServer(t, qrngtest.Options{Seed: 1}), Config{BatchSize: 4096, Workers: 1})
	r2 := rand.New(src2)
	for range 100 {
		require.Equal(t, ref.IntN(1000), r2.IntN(1000))
		require.Equal(t, ref.Float64(), r2.Float64())
	}
}

// byteSource serves a fixed stream, 8 bytes big-endian per Uint64.
type byteSource struct{ b []byte }

func (s *byteSource) Uint64() uint64 {
	var v uint64
	for _, c := range s.b[:8] {
		v = v<<8 | uint64(c)
	}
	s.b = s.b[8:]
	return v
}

func TestWidthsReproduceServerValues(t *testing.T) {
	for _, bits := range []int{1, 7, 8, 12, 16, 31, 32, 63, 64} {
		srv := newServer(t, qrngtest.Options{Seed: uint64(bits), Record: true})
		src := newTestSource(t, srv, Config{Bits: bits, BatchSize: 1000, Workers: 1})
		const n = 2504 // values: more than two batches, a whole number of bytes
		out := make([]byte, n*bits/8)
		_, err := src.Read(out)
		require.NoError(t, err, "bits %d", bits)
		want := concat(srv.Batches())
		require.GreaterOrEqual(t, len(want), n)
		assert.Equal(t, want[:n], bitpack.Unpack(out, bits, n), "bits %d", bits)
	}
	// Uint64 on 64-bit values returns exactly the server's values.
	srv := newServer(t, qrngtest.Options{Seed: 9, Record: true})
	src := newTestSource(t, srv, Config{Bits: 64, BatchSize: 64, Workers: 1})
	var got []uint64
	for range 200 {
		got = append(got, src.Uint64())
	}
	assert.Equal(t, concat(srv.Batches())[:200], got)
}

func TestConcurrentReadsServeEachByteOnce(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Record: true})
	src := newTestSource(t, srv, Config{Bits: 64, BatchSize: 8192, Workers: 2})
	type served struct {
		off int64
		p   []byte
	}
	var mu sync.Mutex
	var ranges []served
	var pushed []byte
	var starts []int // where each pushed batch starts in pushed (batches grow: slow start)
	src.tap = func(off int64, p []byte) { ranges = append(ranges, served{off, append([]byte(nil), p...)}) }
	src.onPush = func(p []byte) { starts = append(starts, len(pushed)); pushed = append(pushed, p...) }

	goroutines, reads := 100, 1000
	if testing.Short() {
		reads = 100
	}
	results := make([][][]byte, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 0))
			for i := range reads {
				if i%5 == 0 {
					v := src.Uint64()
					mu.Lock()
					results[g] = append(results[g], []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
					mu.Unlock()
					continue
				}
				p := make([]byte, r.IntN(100))
				n, err := src.Read(p)
				if err != nil || n != len(p) {
					t.Errorf("Read: %d, %v", n, err)
					return
				}
				results[g] = append(results[g], p)
			}
		})
	}
	wg.Wait()
	src.mu.Lock()
	defer src.mu.Unlock()

	// The served ranges tile the pushed stream from 0 with no overlap...
	var total int64
	for _, r := range ranges {
		require.Equal(t, total, r.off, "ranges are contiguous and disjoint")
		require.Equal(t, pushed[r.off:r.off+int64(len(r.p))], r.p, "served bytes are the pushed bytes at that offset")
		total += int64(len(r.p))
	}
	var callers int64
	for _, g := range results {
		for _, p := range g {
			callers += int64(len(p))
		}
	}
	assert.Equal(t, total, callers, "every byte callers got was served once")
	assert.Equal(t, total, src.stats.QuantumBytes)
	// ...and the pushed stream is made of the server's batches.
	var fromServer []byte
	batches := srv.Batches()
	byFirst := map[uint64][]uint64{}
	for _, b := range batches {
		byFirst[b[0]] = b
	}
	for _, off := range starts {
		first := bitpack.Unpack(pushed[off:off+8], 64, 1)[0]
		b, ok := byFirst[first]
		require.True(t, ok, "pushed batch at %d comes from the server", off)
		p := bitpack.New(64, nil)
		for _, v := range b {
			p.Add(v)
		}
		fromServer = append(fromServer, p.Bytes()...)
	}
	assert.True(t, bytes.Equal(pushed, fromServer))
}

func TestQuotaRunsOutMidStream(t *testing.T) {
	// The local meter allows 3 batches of 1024 16-bit values (2048 bytes each).
	srv := newServer(t, qrngtest.Options{})
	var events []FallbackEvent
	var mu sync.Mutex
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, QuotaBits: 3 * 16384, Fallback: FallbackOnQuota,
		OnFallback: func(e FallbackEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	out := make([]byte, 10000) // more than 3 batches (6144 bytes)
	n, err := src.Read(out)
	require.NoError(t, err)
	assert.Equal(t, len(out), n)
	st := src.Stats()
	assert.EqualValues(t, 6144, st.QuantumBytes)
	assert.EqualValues(t, 10000-6144, st.FallbackBytes)
	assert.EqualValues(t, 3*16384, st.QuotaBitsUsed)
	assert.True(t, st.FallbackActive)
	assert.ErrorIs(t, st.LastError, ErrQuotaExceeded)
	assert.Equal(t, 3, srv.Counters().RandomRequests, "no request past the quota")
	mu.Lock()
	require.Len(t, events, 1)
	assert.True(t, events[0].Active)
	assert.ErrorIs(t, events[0].Reason, ErrQuotaExceeded)
	mu.Unlock()

	// Under FallbackNever the same situation is an error.
	srv2 := newServer(t, qrngtest.Options{})
	never := newTestSource(t, srv2, Config{BatchSize: 1024, Workers: 1, QuotaBits: 16384, Fallback: FallbackNever})
	n, err = never.Read(make([]byte, 3000))
	assert.Equal(t, 2048, n)
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.PanicsWithError(t, err.Error(), func() { never.Uint64() })
}

func TestServerQuotaAnswerFallsBack(t *testing.T) {
	srv := newServer(t, qrngtest.Options{QuotaBits: 2 * 16384})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1})
	_, err := src.Read(make([]byte, 5000))
	require.NoError(t, err)
	st := src.Stats()
	assert.EqualValues(t, 4096, st.QuantumBytes)
	assert.EqualValues(t, 5000-4096, st.FallbackBytes)
	assert.ErrorIs(t, st.LastError, ErrQuotaExceeded)
	assert.Equal(t, 3, srv.Counters().RandomRequests, "the quota answer is not retried")
	_, err = src.Read(make([]byte, 100))
	require.NoError(t, err)
	assert.Equal(t, 3, srv.Counters().RandomRequests, "nothing more is asked this month")
}

func TestMonthTurnResumesQuantum(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, QuotaBits: 16384})
	src.now = clk.Now
	_, err := src.Read(make([]byte, 3000))
	require.NoError(t, err)
	require.True(t, src.Stats().FallbackActive)
	clk.Advance(5 * 24 * time.Hour) // 2026-12-02
	require.Eventually(t, func() bool {
		src.Read(make([]byte, 10))
		return !src.Stats().FallbackActive
	}, 5*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 16384, src.Stats().QuotaBitsUsed, "the meter restarted with the month")
}

func TestServiceDownAndBack(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	var events []FallbackEvent
	var mu sync.Mutex
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, WaitTimeout: 200 * time.Millisecond, MaxRetries: 1,
		OnFallback: func(e FallbackEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	srv.Inject(qrngtest.Fault{Status: 503, Times: -1})
	_, err := src.Read(make([]byte, 100))
	require.NoError(t, err)
	st := src.Stats()
	assert.EqualValues(t, 100, st.FallbackBytes)
	assert.True(t, st.FallbackActive)
	assert.ErrorIs(t, st.LastError, ErrServer)

	srv.ClearFaults()
	require.Eventually(t, func() bool {
		_, err := src.Read(make([]byte, 10))
		return err == nil && !src.Stats().FallbackActive
	}, 10*time.Second, 10*time.Millisecond)
	st = src.Stats()
	assert.Positive(t, st.QuantumBytes)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(events), 2)
	assert.True(t, events[0].Active)
	assert.False(t, events[len(events)-1].Active)
}

func TestFallbackNeverReturnsErrors(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, Fallback: FallbackNever, MaxRetries: -1, WaitTimeout: 5 * time.Second})
	srv.Inject(qrngtest.Fault{Status: 500, Times: -1})
	n, err := src.Read(make([]byte, 10))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, ErrServer)
	assert.Panics(t, func() { src.Uint64() })
	assert.Zero(t, src.Stats().FallbackBytes)

	// FallbackOnQuota behaves the same for an outage.
	onQuota := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, Fallback: FallbackOnQuota, MaxRetries: -1})
	_, err = onQuota.Read(make([]byte, 10))
	assert.ErrorIs(t, err, ErrServer)
}

func TestNoTokenFallsBackLoudly(t *testing.T) {
	t.Setenv("QCI_TOKEN", "")
	srv := newServer(t, qrngtest.Options{})
	src := NewSource(Config{BaseURL: srv.URL, Logger: discardLogger()})
	defer src.Close()
	p := make([]byte, 32)
	n, err := src.Read(p)
	require.NoError(t, err)
	assert.Equal(t, 32, n)
	st := src.Stats()
	assert.EqualValues(t, 32, st.FallbackBytes)
	assert.ErrorIs(t, st.LastError, ErrNoToken)
	assert.Zero(t, srv.Counters())
}

func TestCloseDuringSlowRequests(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	srv.Inject(qrngtest.Fault{Latency: time.Minute, Times: -1})
	src := NewSource(Config{BaseURL: srv.URL, Token: srv.Token, BatchSize: 1000, Logger: discardLogger()})
	errc := make(chan error, 1)
	go func() {
		_, err := src.Read(make([]byte, 10))
		errc <- err
	}()
	require.Eventually(t, func() bool { return srv.Counters().RandomRequests > 0 }, 5*time.Second, time.Millisecond)
	done := make(chan struct{})
	go func() { src.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // the request would take a minute
		t.Fatal("Close did not return while a request was in flight")
	}
	assert.ErrorIs(t, <-errc, ErrClosed)
	_, err := src.Read(make([]byte, 1))
	assert.ErrorIs(t, err, ErrClosed)
	assert.PanicsWithError(t, ErrClosed.Error(), func() { src.Uint64() })
	assert.NoError(t, src.Close(), "Close is idempotent")
	src.mu.Lock()
	assert.Zero(t, src.buf.len())
	src.mu.Unlock()
}

func TestCloseErasesBuffer(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 8192, Workers: 1})
	var mu sync.Mutex
	var chunks [][]byte // the batches' own memory, not copies
	src.onPush = func(p []byte) { mu.Lock(); chunks = append(chunks, p); mu.Unlock() }
	src.Uint64() // cuts a window from the first batch
	_, err := src.Read(make([]byte, 100))
	require.NoError(t, err)
	require.NoError(t, src.Close())
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, chunks)
	for _, c := range chunks {
		assert.Equal(t, make([]byte, len(c)), c, "erased: served bytes, the window's unclaimed bytes and the rest")
	}
}

func TestServedBytesAreErased(t *testing.T) {
	var b buffer
	c1 := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	c2 := []byte{11, 12, 13, 14, 15, 16}
	b.push(c1)
	b.push(c2)
	p := make([]byte, 3)
	assert.Equal(t, 3, b.take(p))
	assert.Equal(t, []byte{1, 2, 3}, p)
	assert.Equal(t, []byte{0, 0, 0, 4, 5, 6, 7, 8, 9, 10}, c1, "served bytes erased, the rest kept")
	p = make([]byte, 8)
	assert.Equal(t, 8, b.take(p)) // spans both chunks
	assert.Equal(t, []byte{4, 5, 6, 7, 8, 9, 10, 11}, p)
	assert.Equal(t, make([]byte, 10), c1)
	assert.Equal(t, []byte{0, 12, 13, 14, 15, 16}, c2)
	assert.Equal(t, 5, b.len())
	w := b.carve(2) // handed over, not erased: the window's claimers erase
	assert.Equal(t, []byte{12, 13}, w)
	assert.Equal(t, 3, b.len())
	b.erase()
	assert.Equal(t, []byte{0, 12, 13, 0, 0, 0}, c2)
	assert.Zero(t, b.len())
}

// Latency is hidden once requests are full batches. During the slow
// start a request is small, so a reader may wait for each of the first
// few (one wait per request at most); after that, never.
func TestSteadyReaderWaitsOnlyForFirstFill(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Record: true})
	srv.Inject(qrngtest.Fault{Latency: 20 * time.Millisecond, Times: -1})
	// A full batch is 16,384 bytes and takes 20 ms; the reader takes 200
	// bytes every 10 ms (20 kB/s), far below the fetch rate of full
	// batches (~800 kB/s). Once the target is BufferSize (two batches), a
	// refill starts with at least a quarter of it, 8 KiB, still ready:
	// 400 ms of reading for a 20 ms request.
	src := newTestSource(t, srv, Config{BatchSize: 8192, Workers: 1, BufferSize: 32768})
	p := make([]byte, 200)
	read := func() {
		_, err := src.Read(p)
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
	}
	full := func() int {
		n := 0
		for _, b := range srv.Batches() {
			if len(b) == 8192 {
				n++
			}
		}
		return n
	}
	for i := 0; full() < 2; i++ {
		require.Less(t, i, 2000, "requests never reached the batch size")
		read()
	}
	ramp := srv.Counters().RandomRequests // 512 B, 1 KiB, ... 16 KiB, and one more full batch
	waits := src.Stats().Waits
	assert.LessOrEqual(t, waits, int64(ramp), "at most one wait per request of the slow start")
	for range 200 { // 40,000 bytes: refills of full batches
		read()
	}
	st := src.Stats()
	assert.Equal(t, waits, st.Waits, "no wait once requests are full batches")
	assert.Zero(t, st.FallbackBytes)
	assert.GreaterOrEqual(t, srv.Counters().RandomRequests, ramp+2)
}

func TestConfigPanicsNameTheField(t *testing.T) {
	for msg, cfg := range map[string]Config{
		"qrng: Config.Bits 65 outside 1..64":                                              {Bits: 65},
		"qrng: Config.Bits -1 outside 1..64":                                              {Bits: -1},
		"qrng: Config.BatchSize 1000001 outside 1..1000000":                               {BatchSize: 1_000_001},
		"qrng: Config.Workers -2 is negative":                                             {Workers: -2},
		"qrng: Config.BufferSize -1 is negative":                                          {BufferSize: -1},
		"qrng: Config.WaitTimeout -1s is negative":                                        {WaitTimeout: -time.Second},
		"qrng: Config.Fallback 7 is not a FallbackPolicy":                                 {Fallback: 7},
		`qrng: Config.BaseURL: plain http to non-loopback host "example.com" (use https)`: {BaseURL: "http://example.com"},
	} {
		assert.PanicsWithValue(t, msg, func() { NewSource(cfg) })
	}
	// Runtime trouble does not fail construction.
	assert.NotPanics(t, func() { NewSource(Config{Token: "", BaseURL: "https://unreachable.invalid"}).Close() })
}

func TestReadSizes(t *testing.T) {
	big := 16 << 20
	if testing.Short() || raceEnabled {
		big = 4 << 20
	}
	srv := newServer(t, qrngtest.Options{QuotaBits: -1})
	// FallbackNever and a long WaitTimeout: a slow machine waits longer, it
	// does not fall back (which would make the count below wrong).
	src := newTestSource(t, srv, Config{Bits: 64, BatchSize: 1 << 17, Workers: 2,
		Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
	total := 0
	for _, size := range []int{0, 1, 7, big} {
		p := make([]byte, size)
		n, err := src.Read(p)
		require.NoError(t, err)
		assert.Equal(t, size, n)
		total += size
	}
	st := src.Stats()
	assert.Zero(t, st.FallbackBytes)
	assert.EqualValues(t, total, st.QuantumBytes)
}

// The first request is what the first read needs (rounded up to whole
// health windows), not a batch; refills then ramp the prefetch up, to
// BufferSize, and never past BufferSize plus one batch.
func TestFirstFillIsWhatTheFirstReadNeeds(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 2})
	assert.Never(t, func() bool { return srv.Counters() != qrngtest.Counters{} }, 100*time.Millisecond, 10*time.Millisecond,
		"nothing is fetched before the first read")
	_, err := src.Read(make([]byte, 32))
	require.NoError(t, err)
	assert.Never(t, func() bool { return srv.Counters().RandomRequests > 1 }, 200*time.Millisecond, 10*time.Millisecond,
		"a short read costs one request")
	assert.EqualValues(t, 256*16, srv.Counters().BitsServed, "one window: 256 values of 16 bits")
	assert.Equal(t, 512-32, src.Stats().Buffered)

	// Draining below half the target ramps the prefetch up, to BufferSize.
	for range 20 {
		_, err = src.Read(make([]byte, 1500))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return src.Stats().Buffered >= 2*2048 }, 5*time.Second, 5*time.Millisecond)
	assert.Never(t, func() bool { return src.Stats().Buffered > 4*2048+2048 }, 200*time.Millisecond, 5*time.Millisecond,
		"bounded by BufferSize plus a batch")
}

func TestOnDemandFetchesOnlyWhenEmpty(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1024, OnDemand: true})
	_, err := src.Read(make([]byte, 2048)) // exactly one batch
	require.NoError(t, err)
	assert.Never(t, func() bool { return srv.Counters().RandomRequests > 1 }, 200*time.Millisecond, 10*time.Millisecond)
	_, err = src.Read(make([]byte, 10))
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Counters().RandomRequests)
	assert.EqualValues(t, 2, src.Stats().Waits)
}

func TestSyncUsageStartsTheMeterAtTheServersCount(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	// Another process already used 3 batches' worth this month.
	c, _ := newTestClient(t, srv, ClientConfig{})
	_, err := c.RandomNumbers(context.Background(), 3*1024, 16)
	require.NoError(t, err)

	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, QuotaBits: 4 * 16384, SyncUsage: true, Fallback: FallbackNever})
	_, err = src.Read(make([]byte, 2048)) // the one batch left
	require.NoError(t, err)
	_, err = src.Read(make([]byte, 1))
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.EqualValues(t, 4*16384, src.Stats().QuotaBitsUsed)
	assert.Equal(t, 1, srv.Counters().UsageRequests)
	assert.Equal(t, 2, srv.Counters().RandomRequests, "the other process's request and one batch")
}

func TestServerQuotaRetryAfterHonoured(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 24 * time.Hour})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1})
	src.now = clk.Now
	srv.Inject(qrngtest.Fault{Status: 429, Body: `{"detail":"monthly quota exceeded"}`, RetryAfter: "600"})
	_, err := src.Read(make([]byte, 100))
	require.NoError(t, err)
	require.True(t, src.Stats().FallbackActive)
	clk.Advance(5 * time.Minute)
	src.Read(make([]byte, 10))
	assert.Equal(t, 1, srv.Counters().RandomRequests, "nothing is asked before Retry-After")
	clk.Advance(6 * time.Minute)
	require.Eventually(t, func() bool {
		src.Read(make([]byte, 10))
		return !src.Stats().FallbackActive
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2, srv.Counters().RandomRequests)
}

func TestReadContextStopsWaiting(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	srv.Inject(qrngtest.Fault{Latency: time.Minute})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1, WaitTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	n, err := src.ReadContext(ctx, make([]byte, 10))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, src.Stats().FallbackBytes, "a cancelled wait is not a fallback")

	_, err = src.ReadContext(ctx, make([]byte, 10))
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a done context returns at once")
	srv.ClearFaults()
	srv.Shutdown() // end the pending latency
}

func TestBatchSizeRoundedToWholeWindows(t *testing.T) {
	for _, c := range []struct{ bits, asked, values int }{
		{12, 1001, 1024},         // 1024 × 12 bits = 1536 bytes: three windows
		{16, 1, 256},             // 512 bytes, the smallest batch
		{1, 8, 4096},             // 512 bytes of 1-bit values
		{2, 16, 2048},            // the configuration that once served an all-zero answer
		{63, 1, 4096},            // odd widths need 4096 values
		{64, 100, 128},           // 1024 bytes
		{63, MaxSamples, 999424}, // rounded down where up would pass MaxSamples
	} {
		srv := newServer(t, qrngtest.Options{QuotaBits: -1})
		// FallbackNever and a long WaitTimeout: a slow machine waits for
		// the 7.9 MB batch rather than fall back.
		src := newTestSource(t, srv, Config{Bits: c.bits, BatchSize: c.asked, Workers: 1, OnDemand: true,
			Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
		// A read of one byte short of a batch: one request, of the whole
		// batch (requests are rounded up to whole windows, within it).
		_, err := src.Read(make([]byte, c.values*c.bits/8-1))
		require.NoError(t, err)
		assert.Equal(t, 1, srv.Counters().RandomRequests)
		assert.EqualValues(t, c.values, srv.Counters().ValuesServed, "bits %d, BatchSize %d", c.bits, c.asked)
		assert.Zero(t, c.values*c.bits%(8*512), "whole windows")
		assert.Equal(t, 1, src.Stats().Buffered, "no bit held back")
	}
}

// Small batches once slipped past the health tests: with Bits 2 and
// BatchSize 16 an all-zero answer was 4 bytes, too short for either test.
func TestTinyBatchConfigurationsStillHealthTested(t *testing.T) {
	for _, bits := range []int{1, 2, 8, 16} {
		srv := newServer(t, qrngtest.Options{})
		src := newTestSource(t, srv, Config{Bits: bits, BatchSize: 8, Workers: 1, OnDemand: true,
			Fallback: FallbackNever, MaxRetries: -1})
		srv.Inject(qrngtest.Fault{ZeroValues: true, Times: 3})
		n, err := src.Read(make([]byte, 4))
		assert.Zero(t, n, "bits %d: nothing of an all-zero answer is served", bits)
		assert.ErrorIs(t, err, ErrRejectedBatch, "bits %d", bits)
		assert.EqualValues(t, 3, src.Stats().RejectedBatches, "bits %d", bits)
	}
}

// Genuine 1-bit batches are not rejected as replays: the first release
// rejected about 6% of 8-value batches, a bias of the check itself.
func TestTinyBatchesAreNotFalseReplays(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{Bits: 1, BatchSize: 8, Workers: 1, OnDemand: true, Fallback: FallbackNever})
	_, err := src.Read(make([]byte, 40*512)) // 40 batches
	require.NoError(t, err)
	assert.Zero(t, src.Stats().RejectedBatches)
}

func TestTinyBatchesStillRefill(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 3, Record: true})
	src := newTestSource(t, srv, Config{Bits: 1, BatchSize: 8, Workers: 1, Fallback: FallbackNever, WaitTimeout: 2 * time.Second})
	out := make([]byte, 5)
	n, err := src.Read(out)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Equal(t, concat(srv.Batches())[:40], bitpack.Unpack(out, 1, 40))
}

// Issue 11.4: a reader faster than one fetch at a time is demand enough
// for every worker. The first release doubled the depth only when a refill
// completed, which such a reader never lets happen: at most two requests
// were ever in flight, whatever Workers and BufferSize said.
func TestDepthFollowsDemand(t *testing.T) {
	srv := newServer(t, qrngtest.Options{QuotaBits: -1})
	srv.Inject(qrngtest.Fault{Latency: 30 * time.Millisecond, Times: -1})
	var inFlight, most atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == qrngtest.PathRandomNumbers {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
		}
		srv.Emulator.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	src := NewSource(Config{Token: srv.Token, BaseURL: front.URL, BatchSize: 4096, Workers: 4,
		BufferSize: 64 * 8192, Fallback: FallbackNever, WaitTimeout: time.Minute, Logger: discardLogger()})
	t.Cleanup(func() { src.Close() })
	p := make([]byte, 64<<10) // a reader always waiting for more than a batch
	for range 8 {             // 512 KiB: 64 batches
		_, err := src.Read(p)
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, most.Load(), int64(4), "every worker fetched at once")
}

// Once the depth has grown, bursts larger than a batch with pauses between
// them never wait.
func TestBurstyReaderStopsWaitingOnceDeep(t *testing.T) {
	srv := newServer(t, qrngtest.Options{QuotaBits: -1})
	srv.Inject(qrngtest.Fault{Latency: 10 * time.Millisecond, Times: -1})
	src := newTestSource(t, srv, Config{BatchSize: 4096, Workers: 2, BufferSize: 16 * 8192,
		Fallback: FallbackNever, WaitTimeout: time.Minute})
	burst := make([]byte, 3*8192)
	var waitsAfter []int64
	for range 8 {
		_, err := src.Read(burst)
		require.NoError(t, err)
		waitsAfter = append(waitsAfter, src.Stats().Waits)
		// Idle until the refill is done (no wall-clock guess: ask the Source).
		require.Eventually(t, func() bool {
			src.mu.Lock()
			defer src.mu.Unlock()
			return !src.filling && src.inflight == 0
		}, time.Minute, time.Millisecond)
	}
	assert.Equal(t, waitsAfter[3], waitsAfter[len(waitsAfter)-1], "no waits once deep: %v", waitsAfter)
}

// The rule itself: a caller who finds the buffer empty while a refill is
// under way is demand too (the first release grew the depth only when a
// refill started, which a reader that always drains first never allows).
func TestEmptyBufferDuringRefillDeepens(t *testing.T) {
	src := NewSource(Config{Token: "t", BaseURL: "http://127.0.0.1:1", BatchSize: 256, BufferSize: 64 * 512,
		Logger: discardLogger()})
	t.Cleanup(func() { src.Close() })
	src.mu.Lock()
	defer src.mu.Unlock()
	src.stats.QuantumBytes = 512 // not the first fill
	src.filling, src.inflight = true, 512
	for want := 1024; want <= 64*512; want *= 2 {
		src.kickLocked(true)
		assert.Equal(t, want, src.target)
		assert.Equal(t, want/2, src.low)
	}
	src.kickLocked(true)
	assert.Equal(t, 64*512, src.target, "never past BufferSize")
}
