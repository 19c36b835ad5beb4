package redispool

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testBatchBits   = int64(testBatch * testBits)
	testBatchBytes  = testBatch * testBits / 8
	testBatchChunks = testBatchBytes / testChunk
)

// Every batch is a whole number of chunks and a valid request, for every
// width and for chunk sizes that are and are not powers of two.
func TestBatchIsWholeChunks(t *testing.T) {
	rdb := fakeRedisForConfig{}
	for _, chunk := range []int{MinChunkSize, 1000, 4099, DefaultChunkSize, MaxChunkSize} {
		for bits := 1; bits <= 64; bits++ {
			for _, size := range []int{1, 100_000, qrng.MaxSamples} {
				f, err := NewFiller(FillerConfig{Redis: rdb, Bits: bits, ChunkSize: chunk, BatchSize: size, QuotaBits: -1, Token: "x"})
				require.NoError(t, err)
				assert.Zero(t, f.batchN*bits%(8*chunk), "bits %d chunk %d size %d", bits, chunk, size)
				assert.Equal(t, f.batchBytes, f.batchChunks*chunk)
				assert.GreaterOrEqual(t, f.batchChunks, 1)
				assert.LessOrEqual(t, f.batchN, qrng.MaxSamples)
				if size == 100_000 && f.batchN < qrng.MaxSamples/2 {
					assert.GreaterOrEqual(t, f.batchN, size, "rounded up")
				}
			}
		}
	}
}

// fakeRedisForConfig satisfies Redis for tests that never reach it.
type fakeRedisForConfig struct{ Redis }

func TestConfigErrorsNameTheField(t *testing.T) {
	rdb := fakeRedisForConfig{}
	for _, tc := range []struct {
		cfg  FillerConfig
		want string
	}{
		{FillerConfig{}, "Redis"},
		{FillerConfig{Redis: rdb, Bits: 65}, "Bits"},
		{FillerConfig{Redis: rdb, Bits: -1}, "Bits"},
		{FillerConfig{Redis: rdb, ChunkSize: 511}, "ChunkSize"},
		{FillerConfig{Redis: rdb, ChunkSize: MaxChunkSize + 1}, "ChunkSize"},
		{FillerConfig{Redis: rdb, BatchSize: -1}, "BatchSize"},
		{FillerConfig{Redis: rdb, Workers: -1}, "Workers"},
		{FillerConfig{Redis: rdb, Target: -1}, "Target"},
		{FillerConfig{Redis: rdb, Target: 1 << 20, LowMark: 2 << 20}, "LowMark"},
		{FillerConfig{Redis: rdb, QuotaBits: 1000}, "QuotaBits"},
		{FillerConfig{Redis: rdb, DailyBits: 1000}, "DailyBits"},
		{FillerConfig{Redis: rdb, HeartbeatTTL: time.Millisecond}, "HeartbeatTTL"},
		{FillerConfig{Redis: rdb, BaseURL: "http://example.com"}, "plain http"},
	} {
		_, err := NewFiller(tc.cfg)
		if assert.Error(t, err, "%+v", tc.cfg) {
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "redispool: ") || strings.HasPrefix(err.Error(), "qrng: "), err.Error())
		}
	}
	for _, tc := range []struct {
		cfg  ConsumerConfig
		want string
	}{
		{ConsumerConfig{}, "Redis"},
		{ConsumerConfig{Redis: rdb, ChunkSize: 100}, "ChunkSize"},
		{ConsumerConfig{Redis: rdb, PollInterval: -time.Second}, "PollInterval"},
	} {
		_, err := NewConsumer(tc.cfg)
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}

// The refund rule, one fault at a time: a request that got no answer is
// given back; an answer that was cut, malformed or rejected stays counted.
// Either way the shared counter ends equal to the bits the service served.
func TestQuotaCounterMatchesServedBits(t *testing.T) {
	rs := startRedis(t)
	for _, tc := range []struct {
		name     string
		fault    qrngtest.Fault
		refunded bool
		rejected bool
		inDoubt  bool // sent whole, no answer: counted, though this emulator did not count it
	}{
		{"503", qrngtest.Fault{Status: 503, Body: `{"detail":"busy"}`}, true, false, false},
		{"500", qrngtest.Fault{Status: 500}, true, false, false},
		{"429 rate limited", qrngtest.Fault{Status: 429, Body: `{"detail":"slow down"}`}, true, false, false},
		{"connection reset before the answer", qrngtest.Fault{Reset: true}, false, false, true},
		{"204, a 2xx that is not 200", qrngtest.Fault{Status: 204}, true, false, false},
		{"truncated 200", qrngtest.Fault{Truncate: true}, false, false, false},
		{"malformed 200", qrngtest.Fault{Malformed: true}, false, false, false},
		{"wrong count", qrngtest.Fault{WrongCount: 1}, false, false, false},
		{"out of range", qrngtest.Fault{OutOfRange: true}, false, false, false},
		{"all zeros (health test)", qrngtest.Fault{ZeroValues: true}, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEmulator(t)
			rdb := rs.client(t, "", "")
			prefix := "refund" + strings.ReplaceAll(tc.name, " ", "-")
			cfg := testFillerConfig(srv, rdb, prefix)
			cfg.Workers, cfg.Target = 1, testBatchBytes
			srv.Inject(tc.fault)
			f := newTestFiller(t, cfg)
			stop := runFiller(t, f)
			require.Eventually(t, func() bool { return f.Stats().Batches == 1 }, 10*time.Second, 5*time.Millisecond)
			require.NoError(t, stop())

			st := f.Stats()
			served := srv.Counters().BitsServed
			assert.Equal(t, int64(1), st.Failures)
			assert.Equal(t, 2*testBatchBits, st.ReservedBits, "two reservations, refunds not subtracted")
			assert.Equal(t, int64(testBatchChunks*testChunk), st.BytesPushed)
			if tc.inDoubt {
				// The service may have served it (this emulator resets
				// before counting; a real one may count and lose the
				// answer): the meter counts too much rather than too little.
				assert.Zero(t, st.RefundedBits)
				assert.Equal(t, testBatchBits, served)
				assert.Equal(t, served+testBatchBits, quotaUsed(t, rdb, prefix), "the request in doubt stays counted")
				assert.Equal(t, int64(testBatchChunks), rdb.LLen(context.Background(), prefix+":pool").Val())
				return
			}
			assert.Equal(t, served, quotaUsed(t, rdb, prefix), "the shared counter is what the service served")
			if tc.refunded {
				assert.Equal(t, testBatchBits, st.RefundedBits)
				assert.Equal(t, testBatchBits, served)
			} else {
				assert.Zero(t, st.RefundedBits)
				assert.Equal(t, 2*testBatchBits, served, "the bad answer stays counted")
			}
			assert.Equal(t, tc.rejected, st.Rejected == 1)
			assert.Equal(t, int64(testBatchChunks), rdb.LLen(context.Background(), prefix+":pool").Val(),
				"only the good batch reached the pool")
		})
	}

	t.Run("replayed batch", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "replay")
		cfg.Workers, cfg.Target = 1, testBatchBytes
		f := newTestFiller(t, cfg)
		runFiller(t, f)
		require.Eventually(t, func() bool { return f.Stats().Batches == 1 }, 10*time.Second, 5*time.Millisecond)
		srv.Inject(qrngtest.Fault{Replay: true})
		_, err := newTestConsumer(t, rdb, "replay").Fetch(context.Background(), make([]byte, testBatchBytes))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return f.Stats().Batches == 2 }, 10*time.Second, 5*time.Millisecond)
		assert.Equal(t, int64(1), f.Stats().Rejected, "the replay check refused the repeat")
		assert.Equal(t, srv.Counters().BitsServed, quotaUsed(t, rdb, "replay"))
		assert.Equal(t, 3*testBatchBits, srv.Counters().BitsServed)
	})

	t.Run("the service says the quota is spent", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "svcquota")
		cfg.QuotaBits = 100 * testBatchBits
		srv.Inject(qrngtest.Fault{Status: 429, Body: `{"detail":"monthly quota exceeded"}`, RetryAfter: "3600", Times: -1})
		f := newTestFiller(t, cfg)
		runFiller(t, f)
		// The counter is raised to the limit, so every filler stops; the
		// other worker's reservation, refused by the service too, may be
		// refunded after the raise: the counter settles at the limit.
		settled := func() bool { return f.Stats().QuotaBlocked && quotaUsed(t, rdb, "svcquota") == cfg.QuotaBits }
		if !assert.Eventually(t, settled, 10*time.Second, 5*time.Millisecond) {
			t.Logf("counter %d, limit %d, filler %+v", quotaUsed(t, rdb, "svcquota"), cfg.QuotaBits, f.Stats())
		}
		_, err := newTestConsumer(t, rdb, "svcquota").Fetch(context.Background(), make([]byte, testChunk))
		assert.ErrorIs(t, err, qrng.ErrQuotaExceeded)
	})
}

// Two fillers, each with several workers and its own connections, under
// faults, never make the service serve more than the one quota they share.
func TestFillersShareOneQuota(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	quota := 10*testBatchBits + testBatchBits/2
	srv.Inject(qrngtest.Fault{Status: 503, Times: 3}, qrngtest.Fault{Truncate: true, Times: 2}, qrngtest.Fault{Reset: true, Times: 2})
	var fillers []*Filler
	for range 2 {
		cfg := testFillerConfig(srv, rs.client(t, "", ""), "shared")
		cfg.QuotaBits, cfg.Target, cfg.Workers = quota, 1<<30, 3
		f := newTestFiller(t, cfg)
		f.recheck = 20 * time.Millisecond // look again soon after a refusal, as refunds free room
		fillers = append(fillers, f)
		runFiller(t, f)
	}
	rdb := rs.client(t, "", "")
	// Quiet: both fillers refused, the counter at ten batches (the half
	// batch left cannot be reserved), every reservation settled (served,
	// in doubt or given back) and every good batch pushed. The two resets
	// are in doubt: counted, though this emulator did not serve them.
	settled := func() bool {
		a, b := fillers[0].Stats(), fillers[1].Stats()
		used := quotaUsed(t, rdb, "shared")
		return a.QuotaBlocked && b.QuotaBlocked && used == 10*testBatchBits &&
			srv.Counters().BitsServed == used-2*testBatchBits && a.Batches+b.Batches == 6
	}
	if !assert.Eventually(t, settled, 15*time.Second, 5*time.Millisecond) {
		t.Logf("served %d, counter %d, fillers %+v %+v", srv.Counters().BitsServed, quotaUsed(t, rdb, "shared"),
			fillers[0].Stats(), fillers[1].Stats())
	}
	served := srv.Counters().BitsServed
	assert.LessOrEqual(t, served, quota, "the service never served more than the shared quota")
	a, b := fillers[0].Stats(), fillers[1].Stats()
	assert.Equal(t, 3*testBatchBits, a.RefundedBits+b.RefundedBits, "the 503s were given back, the resets not")
	assert.Equal(t, int64(6*testBatchChunks), rdb.LLen(context.Background(), "shared:pool").Val(),
		"ten batches counted: eight answers, two of them cut, and two resets")
}

// A filler keeps the pool between its marks: it tops up from below the low
// mark to the high mark, then fetches nothing while the pool stays above
// the low mark. Each top-up is logged at Info; the token never is.
func TestFillerKeepsPoolBetweenMarks(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	var logs syncBuffer
	cfg := testFillerConfig(srv, rdb, "marks")
	cfg.Target, cfg.LowMark = 6*testBatchBytes, 3*testBatchBytes // 48 and 24 chunks
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	ctx := context.Background()
	high, low := int64(6*testBatchChunks), int64(3*testBatchChunks)

	topUps := func() int { return strings.Count(logs.String(), "level=INFO msg=\"redispool: pool topped up\"") }
	require.Eventually(t, func() bool { return topUps() == 1 }, 10*time.Second, 5*time.Millisecond)
	n := rdb.LLen(ctx, "marks:pool").Val()
	assert.GreaterOrEqual(t, n, high)
	assert.LessOrEqual(t, n, high+int64(cfg.Workers*testBatchChunks), "overshoot at most a batch per worker")

	// Above the low mark nothing is fetched.
	c := newTestConsumer(t, rdb, "marks")
	requests := srv.Counters().RandomRequests
	p := make([]byte, (n-low)*testChunk)
	got, err := c.Fetch(ctx, p)
	require.NoError(t, err)
	require.Equal(t, len(p), got)
	time.Sleep(10 * cfg.PollInterval)
	assert.Equal(t, requests, srv.Counters().RandomRequests, "no request while the pool is at the low mark")

	// One more chunk taken: a top-up back to the high mark.
	_, err = c.Fetch(ctx, make([]byte, testChunk))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return topUps() == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.GreaterOrEqual(t, rdb.LLen(ctx, "marks:pool").Val(), high)

	out := logs.String()
	assert.Contains(t, out, "added_bytes=")
	assert.NotContains(t, out, srv.Token)
}

// A filler whose token is refused stops with ErrUnauthorized, and neither
// its error nor its logs carry the token.
func TestFillerStopsOnRefusedToken(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	var logs syncBuffer
	cfg := testFillerConfig(srv, rs.client(t, "", ""), "badtoken")
	cfg.Token = "secret-token-that-the-emulator-refuses"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newTestFiller(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := f.Run(ctx)
	require.ErrorIs(t, err, qrng.ErrUnauthorized)
	assert.NotContains(t, err.Error(), cfg.Token)
	assert.NotContains(t, logs.String(), cfg.Token)
	assert.Zero(t, quotaUsed(t, rs.client(t, "", ""), "badtoken"), "refused before any random-numbers request: refunded")
}

// At a stop, a batch already fetched is pushed whole, then the heartbeat
// and the liveness key are removed; a request in flight is abandoned at
// once, its bits kept counted (the service may have served it).
func TestFillerStop(t *testing.T) {
	rs := startRedis(t)
	ctx := context.Background()

	t.Run("a held batch is pushed", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "held")
		cfg.Workers, cfg.Target = 1, testBatchBytes
		f := newTestFiller(t, cfg)
		holding, release := make(chan struct{}), make(chan struct{})
		f.beforePush = func() { close(holding); <-release }
		var erased []byte
		f.afterPush = func(b []byte) { erased = append([]byte(nil), b...) }
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f.Run(rctx) }()
		<-holding
		cancel()
		close(release)
		require.NoError(t, <-done)

		assert.Equal(t, int64(testBatchChunks), rdb.LLen(ctx, "held:pool").Val(), "the batch held at the stop was pushed, whole")
		vals, err := rdb.LRange(ctx, "held:pool", 0, -1).Result()
		require.NoError(t, err)
		idx := chunkIndex(t, srv, testBits, testChunk)
		for i, v := range vals {
			assert.Equal(t, chunkPos{0, i}, idx[unseal(t, v)])
		}
		assert.Len(t, erased, testBatchBytes)
		assert.Equal(t, make([]byte, testBatchBytes), erased, "the batch buffer was erased after the push")
		assert.Zero(t, rdb.Exists(ctx, "held:filler:"+f.ID(), "held:alive").Val(), "heartbeat and liveness key removed")
		assert.Empty(t, rdb.SMembers(ctx, "held:fillers").Val())
	})

	t.Run("a request in flight is abandoned", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		srv.Inject(qrngtest.Fault{Latency: time.Minute})
		cfg := testFillerConfig(srv, rdb, "inflight")
		cfg.Workers = 1
		f := newTestFiller(t, cfg)
		stop := runFiller(t, f)
		require.Eventually(t, func() bool { return srv.Counters().RandomRequests == 1 }, 10*time.Second, 5*time.Millisecond)
		start := time.Now()
		require.NoError(t, stop())
		assert.Less(t, time.Since(start), 10*time.Second, "not the request's minute")
		assert.Zero(t, rdb.LLen(ctx, "inflight:pool").Val())
		assert.Equal(t, testBatchBits, quotaUsed(t, rdb, "inflight"), "sent whole, never answered: in doubt, it stays counted")
		assert.Zero(t, srv.Counters().BitsServed, "this emulator had not counted it yet")
		assert.Zero(t, rdb.Exists(ctx, "inflight:alive").Val())
	})

	t.Run("Run twice at once", func(t *testing.T) {
		srv := newEmulator(t)
		f := newTestFiller(t, testFillerConfig(srv, rs.client(t, "", ""), "twice"))
		runFiller(t, f)
		require.Eventually(t, func() bool { return f.running.Load() }, 10*time.Second, time.Millisecond)
		err := f.Run(ctx)
		assert.ErrorContains(t, err, "already running")
	})

	t.Run("Redis unreachable at start", func(t *testing.T) {
		srv := newEmulator(t)
		dead := startRedis(t)
		rdb := dead.clientNoRetry(t)
		dead.stop()
		f := newTestFiller(t, testFillerConfig(srv, rdb, "dead"))
		err := f.Run(ctx)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "redispool: filler "), err.Error())
		assert.Zero(t, srv.Counters().RandomRequests)
	})
}

// The push script adds a batch once, however often it reaches Redis (a
// client retrying after a lost reply sends it again with the same marker),
// and whole, in order, even past Lua's limit on unpacked arguments.
func TestPushIsWholeAndOnce(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	k := newKeys("push")
	gen := serverGen(t, rdb, k)
	args := []any{pushMarkerTTL.Milliseconds(), seenTTL.Milliseconds(), seenCap, gen.String(), 0}
	for i := range 2500 {
		args = append(args, fmt.Sprintf("chunk %04d", i))
	}
	keys := []string{k.pool, k.pushed("batch-1"), k.seen}
	v, err := pushScript.Run(ctx, rdb, keys, args...).Slice()
	require.NoError(t, err)
	assert.Equal(t, []any{int64(1), int64(2500)}, v)
	v, err = pushScript.Run(ctx, rdb, keys, args...).Slice()
	require.NoError(t, err)
	assert.Equal(t, []any{int64(0), int64(0)}, v, "the second push of the same batch is refused")
	vals, err := rdb.LRange(ctx, k.pool, 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, vals, 2500)
	for i, v := range vals {
		assert.Equal(t, fmt.Sprintf("chunk %04d", i), v)
	}
	ttl := rdb.PTTL(ctx, k.pushed("batch-1")).Val()
	assert.Positive(t, ttl)
	assert.LessOrEqual(t, ttl, pushMarkerTTL)
}

// With an HTTPClient of the caller's, the filler still tells a cut 200
// answer (kept) from an error status (given back).
func TestRefundRuleWithCallersHTTPClient(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	cfg := testFillerConfig(srv, rdb, "hc")
	cfg.Workers, cfg.Target = 1, testBatchBytes
	cfg.HTTPClient = &http.Client{Timeout: time.Minute}
	srv.Inject(qrngtest.Fault{Truncate: true}, qrngtest.Fault{Status: 503})
	f := newTestFiller(t, cfg)
	stop := runFiller(t, f)
	require.Eventually(t, func() bool { return f.Stats().Batches == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	assert.Equal(t, 2*testBatchBits, srv.Counters().BitsServed)
	assert.Equal(t, 2*testBatchBits, quotaUsed(t, rdb, "hc"))
	assert.Equal(t, testBatchBits, f.Stats().RefundedBits)
	assert.Nil(t, cfg.HTTPClient.Transport, "the caller's client is left as it was")
}
