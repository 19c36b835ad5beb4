package redispool

import (
	"context"
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
	assert.Equal(t, Status{Budget: Budget{Month: cal.month, Day: cal.day, DaysLeft: cal.daysLeft, DailyShare: -1,
		DayRenews: cal.dayEnd, MonthRenews: cal.monthEnd}}, st, "an empty Redis")

	srv := newEmulator(t)
	cfg := testFillerConfig(srv, rdb, "")
	// Room for the worst case of the first top-ups: both fillers, with
	// two workers each, reserving a batch per worker before either has
	// pushed (4 batches); a quota that left less than a batch after them
	// stopped both, and the status read "not filling" (2 of 20 runs
	// under CPU load).
	cfg.QuotaBits, cfg.Target = 6*testBatchBits+1, 2*testBatchBytes
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
		return idle(fillers[0]) && idle(fillers[1]) && rdb.LLen(ctx, "qrng:pool").Val() >= 2*testBatchChunks
	}, patience, 5*time.Millisecond)

	st, err = ReadStatus(ctx, rdb, "qrng")
	require.NoError(t, err)
	assert.Equal(t, rdb.LLen(ctx, "qrng:pool").Val(), st.Chunks)
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
	c := newTestConsumer(t, rdb, "qrng")
	for {
		if _, err := c.Fetch(ctx, make([]byte, 8*testChunk)); err != nil {
			break
		}
	}
	st, err = ReadStatus(ctx, rdb, "qrng")
	require.NoError(t, err)
	assert.Equal(t, 6*testBatchBits, st.QuotaUsed)
	assert.Equal(t, nextMonth(time.Now()), st.QuotaSpentUntil)
	assert.False(t, st.DailySpent)
	assert.False(t, st.Filling)
	assert.Zero(t, st.Chunks)

	for _, stop := range stops {
		require.NoError(t, stop())
	}
	st, err = ReadStatus(ctx, rdb, "qrng")
	require.NoError(t, err)
	assert.Empty(t, st.Fillers)
	assert.False(t, st.Filling)
	assert.True(t, st.QuotaSpentUntil.IsZero(), "no filler left to be stopped by the quota")
	assert.Equal(t, 6*testBatchBits, st.QuotaUsed, "the month's count outlives the fillers")

	dead := rs.clientNoRetry(t)
	rs.stop()
	_, err = ReadStatus(ctx, dead, "qrng")
	assert.ErrorContains(t, err, "redispool: status of qrng:pool: ")
}
