package redispool

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ReadStatus reports the pool's length, the month's count and limit, the
// quota stop and the live fillers, and reads no random bytes.
func TestReadStatus(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()

	st, err := ReadStatus(ctx, rdb, "")
	require.NoError(t, err)
	cal := calendarAt(time.Now())
	assert.Equal(t, Status{Prefix: DefaultPrefix, RedisVersion: infoVersion(t, rdb), Budget: Budget{Month: cal.month, Day: cal.day, DaysLeft: cal.daysLeft, DailyShare: -1,
		DayRenews: cal.dayEnd, MonthRenews: cal.monthEnd}}, st, "an empty Redis")

	srv := newEmulator(t)
	cfg := testFillerConfig(srv, rdb, "")
	cfg.Target = 2 * testBatchBytes
	// A quota the two top-ups cannot reach: each filler plans with its own
	// batches in flight, not the other's, so one top-up from empty
	// reserves at most Target/batch + Workers batches (every worker may
	// pass the check at once). The drain below then spends the rest.
	spend := 2 * (cfg.Target/testBatchBytes + int64(cfg.Workers))
	cfg.QuotaBits = spend*testBatchBits + 1
	// Heartbeats that outlive any pause of a loaded machine: the test reads
	// them, it does not wait for them to expire (a 1 s TTL expired under
	// CPU load before a delayed beat).
	cfg.HeartbeatTTL = 30 * time.Second
	var fillers []*Filler
	var stops []func() error
	for _, id := range []string{"b", "a"} {
		c := cfg
		c.ID = id
		f := newTestFiller(t, c)
		fillers = append(fillers, f)
		stops = append(stops, runFiller(t, f))
	}
	require.Eventually(t, func() bool { // both top-ups done
		return idle(fillers[0]) && idle(fillers[1]) && rdb.LLen(ctx, "{qrng}:pool").Val() >= 2*testBatchChunks
	}, patience, 5*time.Millisecond)

	st, err = ReadStatus(ctx, rdb, "")
	require.NoError(t, err)
	assert.Equal(t, rdb.LLen(ctx, "{qrng}:pool").Val(), st.Chunks)
	assert.Equal(t, testChunk, st.ChunkSize)
	assert.Equal(t, st.Chunks*testChunk, st.Bytes)
	assert.Equal(t, srv.Counters().BitsServed, st.QuotaUsed)
	assert.Equal(t, srv.Counters().BitsServed, st.DayUsed, "all of it today")
	assert.Equal(t, cfg.QuotaBits, st.QuotaLimit)
	assert.Equal(t, "off", st.Daily)
	assert.Equal(t, int64(-1), st.DailyShare, "no daily limit")
	cal = calendarAt(time.Now())
	assert.Equal(t, cal.dayEnd, st.DayRenews)
	assert.Equal(t, cal.monthEnd, st.MonthRenews)
	assert.Equal(t, cal.daysLeft, st.DaysLeft)
	assert.True(t, st.Filling)
	assert.True(t, st.QuotaSpentUntil.IsZero())
	require.Len(t, st.Fillers, 2)
	assert.Equal(t, "a", st.Fillers[0].ID)
	assert.Equal(t, "b", st.Fillers[1].ID)
	for _, fs := range st.Fillers {
		assert.Contains(t, fs.Info, "pid=")
		assert.Contains(t, fs.Info, "chunk=1024")
		assert.Positive(t, fs.TTL)
		assert.LessOrEqual(t, fs.TTL, cfg.HeartbeatTTL)
	}

	// Drain: the fillers run into the quota.
	c := newTestConsumer(t, rdb, "")
	for {
		if _, err := c.Fetch(ctx, make([]byte, 8*testChunk)); err != nil {
			break
		}
	}
	st, err = ReadStatus(ctx, rdb, "")
	require.NoError(t, err)
	assert.Equal(t, spend*testBatchBits, st.QuotaUsed)
	assert.Equal(t, nextMonth(time.Now()), st.QuotaSpentUntil)
	assert.False(t, st.DailySpent)
	assert.False(t, st.Filling)
	assert.Zero(t, st.Chunks)

	for _, stop := range stops {
		require.NoError(t, stop())
	}
	st, err = ReadStatus(ctx, rdb, "")
	require.NoError(t, err)
	assert.Empty(t, st.Fillers)
	assert.False(t, st.Filling)
	assert.True(t, st.QuotaSpentUntil.IsZero(), "no filler left to be stopped by the quota")
	assert.Equal(t, spend*testBatchBits, st.QuotaUsed, "the month's count outlives the fillers")

	dead := rs.clientNoRetry(t)
	rs.stop()
	_, err = ReadStatus(ctx, dead, "")
	assert.ErrorContains(t, err, "redispool: ask Redis its version (HELLO): ")
}

// infoVersion is the server's version as INFO server says it (not HELLO,
// which ReadStatus asks).
func infoVersion(t *testing.T, rdb Redis) string {
	t.Helper()
	info, err := rdb.Info(context.Background(), "server").Result()
	require.NoError(t, err)
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			return v
		}
	}
	t.Fatal("no redis_version in INFO server")
	return ""
}
