package redispool

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paceDay is the server's day in the pacing tests: the first of a 31-day
// month, so the default even share is the quota over 31 days. The tests
// shift the server's clock there, so that the share does not depend on
// the day they run (on a month's last day the share is all that is left).
var paceDay = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

// defaultFiller is a Filler with every setting at its default but the
// ones that say where Redis and the service are, on the server day day.
func defaultFiller(t *testing.T, srv *qrngtest.Server, rdb Redis, prefix string, day time.Time) (*Filler, FillerConfig) {
	t.Helper()
	cfg := FillerConfig{Redis: rdb, Prefix: prefix, Token: srv.Token, BaseURL: srv.URL, Logger: slog.New(slog.DiscardHandler)}
	f := newTestFiller(t, cfg)
	shiftTo(&f.meter, day)
	return f, cfg
}

// With every setting at its default and no consumer, a filler spends no
// more than a day's even share: its default target (2 MiB) and one batch
// per worker fit in the share of a fresh month (10^9 bits / 31 days). The
// issue asks for 10 s; with no consumer the pool stays above its low mark
// once topped up, and nothing is fetched above the low mark
// (TestFillerKeepsPoolBetweenMarks), so the spend is final when the first
// top-up ends: the test stops there, plus ten poll intervals.
func TestDefaultFillSpendsAtMostTheDailyShare(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	var budget atomic.Pointer[Budget]
	f, cfg := defaultFiller(t, srv, rdb, "dflt", paceDay)
	f.onStart = func(b Budget) { budget.Store(&b) }
	runFiller(t, f)
	require.Eventually(t, func() bool { return f.Stats().Batches > 0 && idle(f) }, patience, 5*time.Millisecond)
	time.Sleep(10 * f.poll)

	share := int64(qrng.DefaultQuotaBits / 31)
	served := srv.Counters().BitsServed
	t.Logf("served %d bits (%d batches); share %d bits", served, f.Stats().Batches, share)
	assert.LessOrEqual(t, served, share, "no more than the day's even share")
	assert.GreaterOrEqual(t, served, int64(DefaultTarget*8), "the default target was filled")
	assert.Equal(t, served, quotaUsedIn(t, rdb, "dflt", "2031-03"), "the counter of the server's month: no refunds, so all served")
	b := budget.Load()
	require.NotNil(t, b, "OnStart was called")
	assert.Equal(t, Budget{Month: "2031-03", Day: "2031-03-01", QuotaLimit: qrng.DefaultQuotaBits, DailyShare: share,
		DaysLeft: 31, DayRenews: time.Date(2031, 3, 2, 0, 0, 0, 0, time.UTC), MonthRenews: time.Date(2031, 4, 1, 0, 0, 0, 0, time.UTC)}, *b)
	assert.Zero(t, cfg.DailyBits)
}

// quotaUsedIn reads the month's counter of a given month.
func quotaUsedIn(t *testing.T, rdb Redis, prefix, month string) int64 {
	t.Helper()
	n, _ := rdb.Get(context.Background(), newKeys(prefix).quota(month)).Int64()
	return n
}

// Consumers draining the pool as fast as they can, with every filler
// setting at its default, get no more than the day's even share plus one
// batch; then the pool is empty with a reason that says the daily share
// is spent and when it renews, which a Source treats as the quota: its
// quota fallback rule applies. The issue asks for 10 s of draining; the
// property does not depend on time: the consumers drain until they are
// told the share is spent (or, without a share, until the service has
// served two batches more than it), then ten poll intervals more: once
// the meter refuses the day, nothing is reserved until the server's day
// changes, so draining longer shows nothing more.
func TestDrainingConsumersSpendAtMostTheShare(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	f, _ := defaultFiller(t, srv, rdb, "drain", paceDay)
	runFiller(t, f)
	share := int64(qrng.DefaultQuotaBits / 31)

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var spentAt atomic.Pointer[time.Time]
	var mu sync.Mutex
	var reason error
	var wg sync.WaitGroup
	for range 4 {
		c := newTestConsumerChunk(t, rs.client(t, "", ""), "drain", 0)
		wg.Go(func() {
			p := make([]byte, 1<<20)
			for ctx.Err() == nil && srv.Counters().BitsServed <= share+2*f.batchBits {
				if at := spentAt.Load(); at != nil && time.Since(*at) > 10*f.poll {
					return
				}
				_, err := c.Fetch(ctx, p)
				if errors.Is(err, ErrDailyShareSpent) {
					now := time.Now()
					spentAt.CompareAndSwap(nil, &now)
					mu.Lock()
					reason = err
					mu.Unlock()
					time.Sleep(f.poll)
				}
			}
		})
	}
	wg.Wait()

	served := srv.Counters().BitsServed
	t.Logf("served %d bits; share %d bits, batch %d bits", served, share, f.batchBits)
	assert.LessOrEqual(t, served, share+f.batchBits, "no more than the share and one batch")
	assert.Greater(t, served, share-f.batchBits, "the share was spent")
	mu.Lock()
	require.Error(t, reason, "the consumers were told the daily share is spent")
	assert.ErrorIs(t, reason, qrng.ErrQuotaExceeded)
	assert.Contains(t, reason.Error(), "daily share spent")
	assert.Contains(t, reason.Error(), "renews at 2031-03-02T00:00:00Z")
	mu.Unlock()
	assert.True(t, f.Stats().DailyBlocked)

	// A Source over the drained pool applies its quota rule.
	var fellBack atomic.Pointer[error]
	src := qrng.NewSource(qrng.Config{Upstream: newTestConsumerChunk(t, rdb, "drain", 0), Bits: 64, BatchSize: DefaultChunkSize / 8,
		Fallback: qrng.FallbackOnQuota, Logger: slog.New(slog.DiscardHandler), OnFallback: func(e qrng.FallbackEvent) {
			if e.Active {
				fellBack.Store(&e.Reason)
			}
		}})
	defer src.Close()
	n, err := src.Read(make([]byte, 64))
	require.NoError(t, err)
	assert.Equal(t, 64, n)
	require.NotNil(t, fellBack.Load())
	assert.ErrorIs(t, *fellBack.Load(), ErrDailyShareSpent)
	st, err := ReadStatus(context.Background(), rdb, "drain")
	require.NoError(t, err)
	assert.True(t, st.DailySpent)
	assert.Equal(t, time.Date(2031, 3, 2, 0, 0, 0, 0, time.UTC), st.QuotaSpentUntil)
}

// DailyBits chooses the pace on purpose: a fixed number of bits a day, or
// none (the month's quota only).
func TestDailyBitsSpendFaster(t *testing.T) {
	rs := startRedis(t)
	for _, tc := range []struct {
		name  string
		daily int64
		want  int64 // batches before the pause
	}{
		{"fixed", 5 * testBatchBits, 5},
		{"off", -1, 8}, // then the month's quota (8 batches) stops it
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEmulator(t)
			rdb := rs.client(t, "", "")
			cfg := testFillerConfig(srv, rdb, "rate"+tc.name)
			cfg.QuotaBits, cfg.DailyBits, cfg.Target = 8*testBatchBits, tc.daily, 1<<30 // an even share would be 8/31 of a batch
			f := newTestFiller(t, cfg)
			shiftTo(&f.meter, paceDay)
			runFiller(t, f)
			require.Eventually(t, func() bool { st := f.Stats(); return (st.DailyBlocked || st.QuotaBlocked) && settled(f) },
				patience, 5*time.Millisecond)
			assert.Equal(t, tc.want*testBatchBits, srv.Counters().BitsServed)
			assert.Equal(t, tc.daily > 0, f.Stats().DailyBlocked)
		})
	}
}
