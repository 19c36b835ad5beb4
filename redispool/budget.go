package redispool

import (
	"context"
	"fmt"
	"time"
)

// Budget is what a pool may spend now: its month's and its day's counts,
// by the Redis server's clock, and today's share.
type Budget struct {
	Month      string // the current UTC month, "2026-11"
	Day        string // the current UTC day, "2026-11-27"
	QuotaUsed  int64  // bits reserved this month by all fillers together
	QuotaLimit int64  // the monthly quota the fillers enforce; 0 if none recorded, negative: no limit
	DayUsed    int64  // bits reserved today by all fillers together
	// DailyShare is what the fillers may reserve today, in bits (today's
	// use included); negative: no daily limit. With the even share it is
	// the quota left at the start of the day divided by DaysLeft.
	DailyShare  int64
	DaysLeft    int       // UTC days left in the month, today included
	DayRenews   time.Time // when the day's share renews: the next UTC midnight
	MonthRenews time.Time // when the monthly quota renews: the next month's first midnight
}

// shareOf is today's share of a month's limit (the reserve script's rule):
// daily positive is that many bits, negative none, zero the even share of
// what was left at the start of the day, which with no limit is none.
func shareOf(limit, used, dayUsed, daily int64, daysLeft int) int64 {
	switch {
	case daily > 0:
		return daily
	case daily < 0 || limit < 0 || daysLeft < 1:
		return -1
	}
	return max(0, limit-(used-dayUsed)) / int64(daysLeft)
}

func budgetOf(c calendar, used, dayUsed, limit, daily int64) Budget {
	b := Budget{Month: c.month, Day: c.day, QuotaUsed: used, QuotaLimit: limit, DayUsed: dayUsed,
		DaysLeft: c.daysLeft, DayRenews: c.dayEnd, MonthRenews: c.monthEnd, DailyShare: -1}
	if limit != 0 {
		b.DailyShare = shareOf(limit, used, dayUsed, daily, c.daysLeft)
	}
	return b
}

// Budget returns the pool's budget, by the Redis server's clock, as this
// filler counts it (its quota and daily rule). Unless SkipUsageSync, it
// first takes the month's count from the service's usage if the filler
// has not yet done so, and fails if that usage cannot be read. It spends
// nothing.
func (f *Filler) Budget(ctx context.Context) (Budget, error) {
	if err := f.ready(ctx); err != nil {
		return Budget{}, err
	}
	for range staleTries {
		c := f.calendarNow()
		if fl := f.floorsFor(c); !fl.synced {
			if err := f.sync(ctx, c); err != nil {
				return Budget{}, err
			}
			continue
		}
		sent := f.now()
		a, err := f.meter.read(ctx, c)
		if err != nil {
			return Budget{}, err
		}
		f.mu.Lock()
		f.clock.offset = a.server.Sub(sent.Add(f.now().Sub(sent) / 2))
		f.mu.Unlock()
		f.sawRunID(a.runID)
		if a.status == meterOK {
			return budgetOf(c, a.used, a.dayUsed, f.meter.limit, f.meter.daily), nil
		}
	}
	return Budget{}, fmt.Errorf("redispool: read the budget of %s: the server's clock keeps leaving the day asked for", f.keys.pool)
}
