package redispool

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Redis stalls (SIGSTOP) while a reservation and while a refund are on
// their way, longer than the client's read timeout: go-redis gives up on
// the reply and sends the script again, and once Redis runs again it
// executes every copy. Each carries the reservation's token, so each is
// applied once, and the shared counter ends equal to the bits the service
// served, exactly.
func TestMeterExactThroughStalls(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	const timeout = 200 * time.Millisecond
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: rs.sock, ReadTimeout: timeout, WriteTimeout: timeout,
		MaxRetries: 20, PoolSize: 16, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	proc := rs.cmd.Process
	t.Cleanup(func() { proc.Signal(syscall.SIGCONT) })
	// stall stops Redis for three read timeouts: every copy sent meanwhile
	// times out and is sent again, until one comes after the stall.
	stall := func() {
		require.NoError(t, proc.Signal(syscall.SIGSTOP))
		time.AfterFunc(3*timeout, func() { proc.Signal(syscall.SIGCONT) })
	}

	cfg := testFillerConfig(srv, rdb, "stall")
	cfg.QuotaBits, cfg.Target, cfg.Workers = 6*testBatchBits, 1<<30, 1
	cfg.HeartbeatTTL = time.Minute // longer than every stall together
	// Three good answers, then three 503s: the refunds come while the
	// counter holds more than the refunded reservation.
	srv.Inject(qrngtest.Fault{Latency: time.Nanosecond, Times: 3}, qrngtest.Fault{Status: 503, Times: 3})
	f := newTestFiller(t, cfg)
	// Stall the first attempt of three reservations and of three refunds.
	// The scripts are loaded first: a copy that reached a Redis without
	// them would fail (NOSCRIPT) rather than apply.
	check := rs.client(t, "", "")
	for _, s := range []*redis.Script{reserveScript, refundScript, settleScript, raiseScript} {
		require.NoError(t, s.Load(context.Background(), check).Err())
	}
	var reserves, refunds atomic.Int32
	stalled := map[string]bool{}
	f.beforeReserve = func(token string) {
		if !stalled[token] && reserves.Add(1) <= 3 {
			stalled[token] = true
			stall()
		}
	}
	f.beforeRefund = func(token string) {
		if !stalled["refund "+token] && refunds.Add(1) <= 3 {
			stalled["refund "+token] = true
			stall()
		}
	}
	runFiller(t, f)
	require.Eventually(t, func() bool { return f.Stats().QuotaBlocked && settled(f) }, patience, 10*time.Millisecond)
	assert.GreaterOrEqual(t, refunds.Load(), int32(3), "three refunds were stalled")
	served := srv.Counters().BitsServed
	assert.Equal(t, 6*testBatchBits, served)
	assert.Equal(t, served, quotaUsed(t, check, "stall"), "the counter is the bits served, exactly")
	assert.Equal(t, 3*testBatchBits, f.Stats().RefundedBits)
	assert.Equal(t, int64(6*testBatchChunks), check.LLen(context.Background(), "stall:pool").Val())
}

// A Redis restarted from a snapshot (a real SAVE, then SIGKILL and a
// restart on the same directory) has the month's counter of the snapshot,
// lower than what was reserved since. The filler notices (the run_id
// changed, the ledger's reservations are below its floor), takes the count
// from the service's usage, and the counter never rolls back: it ends
// equal to the bits served.
func TestRDBRestartDoesNotRollBack(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	cfg := testFillerConfig(srv, rdb, "rdb")
	cfg.Target, cfg.Workers = 2*testBatchBytes, 1
	cfg.HeartbeatTTL = 30 * time.Second // the restart, not the TTL, is what is tested
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	c := newTestConsumer(t, rs.client(t, "", ""), "rdb")
	topUp := func() {
		t.Helper()
		require.Eventually(t, func() bool {
			return idle(f) && rdb.LLen(ctx, "rdb:pool").Val() >= 2*testBatchChunks
		}, patience, 5*time.Millisecond)
	}
	drain := func() {
		t.Helper()
		for range 2 {
			_, err := c.Fetch(ctx, make([]byte, testBatchBytes))
			require.NoError(t, err)
		}
		topUp()
	}
	topUp()
	require.NoError(t, rdb.Save(ctx).Err())
	saved := quotaUsed(t, rdb, "rdb")
	drain()
	drain()
	served := srv.Counters().BitsServed
	require.Equal(t, served, quotaUsed(t, rdb, "rdb"))

	rs.stop()
	rs.start()
	require.Equal(t, saved, quotaUsed(t, rdb, "rdb"), "the snapshot's counter came back")
	require.Less(t, saved, served)

	drain()
	assert.Positive(t, f.Stats().Syncs)
	assert.Greater(t, srv.Counters().BitsServed, served, "filling went on")
	assert.Equal(t, srv.Counters().BitsServed, quotaUsed(t, rdb, "rdb"), "no rollback: the counter is the bits served")
}

// Redis restarted without persistence loses the month's counter; a filler
// that starts while the service's usage endpoint fails does not start the
// month at zero: it reserves nothing, asking again, and once the usage is
// known it raises the counter to it, so the quota holds across the loss.
func TestNoStartAtZeroWhileUsageIsDown(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	cfg := testFillerConfig(srv, rdb, "nousage")
	cfg.QuotaBits, cfg.Target = 6*testBatchBits, 1<<30
	a := newTestFiller(t, cfg)
	stop := runFiller(t, a)
	require.Eventually(t, func() bool { return a.Stats().QuotaBlocked && settled(a) }, patience, 5*time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, 6*testBatchBits, srv.Counters().BitsServed)

	rs.stop()
	rs.start()
	srv.Inject(qrngtest.Fault{Path: qrngtest.PathUsage, Status: 503, Times: -1})
	usage, random := srv.Counters().UsageRequests, srv.Counters().RandomRequests
	b := newTestFiller(t, cfg)
	runFiller(t, b)
	require.Eventually(t, func() bool { return srv.Counters().UsageRequests >= usage+5 }, patience, 5*time.Millisecond,
		"the filler keeps asking for the usage")
	assert.Equal(t, random, srv.Counters().RandomRequests, "nothing fetched while the month's count is unknown")
	assert.Zero(t, rdb.Exists(context.Background(), newKeys("nousage").quota(monthOf(time.Now()))).Val(), "no counter started at zero")

	srv.ClearFaults()
	require.Eventually(t, func() bool { return b.Stats().QuotaBlocked && settled(b) }, patience, 5*time.Millisecond)
	assert.Equal(t, 6*testBatchBits, srv.Counters().BitsServed, "the quota held across the loss")
	assert.Equal(t, 6*testBatchBits, quotaUsed(t, rdb, "nousage"))
}

// A filler whose clock is 5 minutes short of the month's end, while the
// Redis server's month has begun, reserves on the server's month: the two
// fillers of the pool share one month's counter and one quota.
func TestSkewedClockCountsOnTheServersMonth(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	cfg := testFillerConfig(srv, rdb, "skew")
	cfg.QuotaBits, cfg.Target, cfg.Workers = 4*testBatchBits, 1<<30, 1
	var fillers []*Filler
	for _, id := range []string{"right", "slow"} {
		c := cfg
		c.ID = id
		f := newTestFiller(t, c)
		fillers = append(fillers, f)
	}
	fillers[1].now = func() time.Time { // 23:55 on the last day of the month before the server's
		now := time.Now().UTC()
		first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return first.Add(-5 * time.Minute).Add(now.Sub(first) % time.Second)
	}
	for _, f := range fillers {
		runFiller(t, f)
	}
	require.Eventually(t, func() bool {
		return fillers[0].Stats().QuotaBlocked && fillers[1].Stats().QuotaBlocked && settled(fillers[0]) && settled(fillers[1])
	}, patience, 5*time.Millisecond)
	keys, err := rdb.Keys(context.Background(), "skew:quota:*").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"skew:quota:" + monthOf(time.Now())}, keys, "one month's counter: the server's")
	assert.Equal(t, 4*testBatchBits, srv.Counters().BitsServed)
	assert.Equal(t, 4*testBatchBits, quotaUsed(t, rdb, "skew"))
	assert.Positive(t, fillers[1].Stats().Batches, "the slow filler filled too")
}

// The pool's quota, chunk size, bit width and daily rule are recorded by
// its first filler; a filler started with another value refuses to run,
// naming both, and spends nothing.
func TestFillerWithOtherSettingsRefuses(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	cfg := testFillerConfig(srv, rdb, "settings")
	cfg.QuotaBits, cfg.Target = 4*testBatchBits, testBatchBytes
	first := newTestFiller(t, cfg)
	runFiller(t, first)
	require.Eventually(t, func() bool { return idle(first) && first.Stats().Batches == 1 }, patience, 5*time.Millisecond)
	random := srv.Counters().RandomRequests
	for _, tc := range []struct {
		change func(*FillerConfig)
		want   string
	}{
		{func(c *FillerConfig) { c.QuotaBits = 8 * testBatchBits }, "FillerConfig.QuotaBits 524288 differs from the pool's 262144 (quota_bits in settings:meta"},
		{func(c *FillerConfig) { c.ChunkSize = 512 }, "FillerConfig.ChunkSize 512 differs from the pool's 1024 (chunk_size in settings:meta"},
		{func(c *FillerConfig) { c.Bits = 8 }, "FillerConfig.Bits 8 differs from the pool's 16 (bits in settings:meta"},
		{func(c *FillerConfig) { c.DailyBits = 0 }, "FillerConfig.DailyBits even differs from the pool's off (daily in settings:meta"},
	} {
		c := cfg
		tc.change(&c)
		f := newTestFiller(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		err := f.Run(ctx)
		cancel()
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "redispool: "), err.Error())
		}
	}
	assert.Equal(t, random, srv.Counters().RandomRequests, "the refused fillers fetched nothing")
}

// A filler killed (SIGKILL) with requests in flight leaves their
// reservations counted: the service may have served them, so nothing
// reclaims them, and no later filler lowers the counter. They are at
// most one batch per worker of the killed filler, and the ledger shows
// them (state r, with the filler's id).
func TestKilledFillersReservationsStayCounted(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	srv.Inject(qrngtest.Fault{Latency: time.Minute, Times: 3}) // the child's three workers wait on their answers
	cmd := startChild(t, "filler", "REDISPOOL_SOCK="+rs.sock, "REDISPOOL_PREFIX=killed",
		"REDISPOOL_TOKEN="+srv.Token, "REDISPOOL_URL="+srv.URL,
		"REDISPOOL_CHUNK="+strconv.Itoa(testChunk), "REDISPOOL_BATCH="+strconv.Itoa(testBatch))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool {
		return quotaUsed(t, rdb, "killed") == 3*testBatchBits && srv.Counters().RandomRequests == 3
	}, patience, time.Millisecond, "filler child: %s", &stderr)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	ledger, err := rdb.HGetAll(ctx, newKeys("killed").ledger(monthOf(time.Now()))).Result()
	require.NoError(t, err)
	inFlight := 0
	for k, v := range ledger {
		if strings.HasPrefix(k, "t:") && strings.Fields(v)[2] == "r" {
			inFlight++
		}
	}
	assert.Equal(t, 3, inFlight, "the ledger shows the three reservations in flight")

	cfg := testFillerConfig(srv, rdb, "killed")
	cfg.QuotaBits, cfg.DailyBits = -1, 0 // as the child's
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	require.Eventually(t, func() bool { return idle(f) && f.Stats().Batches > 0 }, patience, 5*time.Millisecond)
	assert.Equal(t, srv.Counters().BitsServed+3*testBatchBits, quotaUsed(t, rdb, "killed"),
		"the killed filler's three reservations stay counted, on top of what was served")
}
