package redispool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The filler's side of the shared meter: every request reserves its bits
// first, under a token of its own, and ends settled (answered: it stays
// counted) or refunded (no answer: given back), each applied once however
// often it reaches Redis. The filler follows the server's clock, keeps
// floors under the month's count, and takes the count from the service's
// usage when it starts and whenever Redis may have lost data.

var (
	// errQuotaSpent: the shared meter refused a reservation (the month).
	errQuotaSpent = errors.New("redispool: monthly quota spent")
	// errDailySpent: the shared meter refused a reservation (the day).
	errDailySpent = errors.New("redispool: daily share spent")
	// errNoUsage: the month's count is not known, since the service's
	// usage could not be read: nothing is reserved until it is.
	errNoUsage = errors.New("redispool: the service's usage is unknown")
)

// staleTries bounds the retries of one call whose calendar the server's
// clock contradicts (the filler's guess of it was off).
const staleTries = 5

// serverClock is the Redis server's clock and identity as last seen.
type serverClock struct {
	offset time.Duration // server time minus the filler's
	runID  string        // "" until seen
}

// monthFloors are what the filler knows the meter must at least hold.
type monthFloors struct {
	month, day string
	synced     bool  // the month's count was taken from the service (or SkipUsageSync)
	usage      int64 // the service's usage this month, when last read: the counter is never below
	reserved   int64 // the highest ledger "reserved" seen: it never goes down
	highest    int64 // the highest counter seen
	dayUsage   int64 // the service's usage today, when last read
	dayHighest int64 // the highest day counter seen
}

// calendarNow is the server's current UTC day as the filler believes it.
func (f *Filler) calendarNow() calendar {
	f.mu.Lock()
	defer f.mu.Unlock()
	return calendarAt(f.now().Add(f.clock.offset))
}

// floorsFor returns the floors for c, starting afresh in a new month or day.
func (f *Filler) floorsFor(c calendar) monthFloors {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fl.month != c.month {
		f.fl = monthFloors{month: c.month, day: c.day, synced: f.noSync}
	}
	if f.fl.day != c.day {
		f.fl.day, f.fl.dayUsage, f.fl.dayHighest = c.day, 0, 0
	}
	return f.fl
}

// saw records what a meter script said of the server: its clock (from the
// middle of the round trip) and its run_id, and raises the floors.
func (f *Filler) saw(c calendar, a answer, sent, got time.Time) {
	mid := sent.Add(got.Sub(sent) / 2)
	f.sawRunID(a.runID)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock.offset = a.server.Sub(mid)
	if a.status == meterOK && f.fl.month == c.month {
		f.fl.reserved = max(f.fl.reserved, a.reserved)
		f.fl.highest = max(f.fl.highest, a.used)
		if f.fl.day == c.day {
			f.fl.dayHighest = max(f.fl.dayHighest, a.dayUsed)
		}
	}
}

// sawRunID notes the server's run_id: a new one means Redis restarted,
// and the count is taken from the service again before the next
// reservation.
func (f *Filler) sawRunID(id string) {
	if id == "" {
		return
	}
	f.mu.Lock()
	restarted := f.clock.runID != "" && f.clock.runID != id
	f.clock.runID = id
	if restarted {
		f.fl.synced = false
	}
	f.mu.Unlock()
	if restarted {
		f.log.Warn("redispool: Redis restarted (its run_id changed): the month's count is checked against the service's usage",
			"filler", f.id)
	}
}

// reserve reserves one batch on the shared meter. A reservation whose
// answer is lost is asked for again under the same token, so it is
// applied once; one the meter refuses pauses filling until the month or
// the day renews (errQuotaSpent, errDailySpent).
func (f *Filler) reserve(ctx context.Context) (reservation, error) {
	r := reservation{token: randomHex(16), bits: f.batchBits}
	placed := false // a request for r went out without an answer: its calendar is fixed
	failures, stale := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			if placed {
				f.withdraw(ctx, r)
			}
			return r, err
		}
		if !placed {
			r.cal = f.calendarNow()
			r.monthKey, r.dayKey, r.ledgerKey = f.meter.keysFor(r.cal)
		}
		fl := f.floorsFor(r.cal)
		if !fl.synced && !placed {
			if err := f.sync(ctx, r.cal); err != nil {
				return r, err
			}
			continue
		}
		f.mu.Lock()
		runID := f.clock.runID
		f.mu.Unlock()
		if f.beforeReserve != nil {
			f.beforeReserve(r.token)
		}
		sent := f.now()
		a, err := f.meter.reserve(ctx, r, floors{reserved: fl.reserved, used: fl.usage}, runID, !f.noSync, f.id)
		if err != nil {
			placed = true
			if ctx.Err() == nil {
				f.redisResult(ctx, err)
				failures++
				sleepCtx(ctx, f.backoff(failures, nil))
			}
			continue
		}
		f.redisResult(ctx, nil)
		f.saw(r.cal, a, sent, f.now())
		placed = false
		switch a.status {
		case meterOK:
			f.mu.Lock()
			f.own[r.token] = r
			f.stats.ReservedBits += r.bits
			f.lastUsed = a.used
			f.block = block{}
			f.mu.Unlock()
			return r, nil
		case meterRefused:
			return r, f.pause(blockQuota, r.cal.monthEnd, a.used)
		case meterDaily:
			return r, f.pause(blockDaily, r.cal.dayEnd, a.dayUsed)
		case meterSync:
			f.mu.Lock()
			f.fl.synced = false
			f.mu.Unlock()
		case meterVoid:
			r.token = randomHex(16)
		case meterStale:
			if stale++; stale >= staleTries {
				return r, fmt.Errorf("redispool: reserve quota on %s: the server's clock keeps leaving the day asked for", r.monthKey)
			}
		default:
			return r, fmt.Errorf("redispool: reserve quota on %s: unexpected status %d", r.monthKey, a.status)
		}
	}
}

// withdraw refunds a reservation whose answer never came, as the filler
// stops: if it was applied it is given back, and if it arrives later it is
// not applied. If Redis cannot be reached meanwhile, the reservation may
// stay counted.
func (f *Filler) withdraw(ctx context.Context, r reservation) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	f.meter.refund(dctx, r)
}

// pause stops filling until the month (or the day) renews at end, by the
// server's clock. The worker then announces it (once no batch is in
// flight). A refund of this filler's own lifts it at once.
func (f *Filler) pause(kind blockKind, end time.Time, used int64) error {
	f.mu.Lock()
	now := f.now()
	until := end.Add(-f.clock.offset)
	first := f.block.kind != kind
	f.block = block{kind: kind, until: until, server: end, retry: now.Add(min(until.Sub(now), f.recheck))}
	f.mu.Unlock()
	if kind == blockDaily {
		if first {
			f.log.Warn("redispool: today's share of the quota is spent; filling paused until the day renews", "filler", f.id,
				"day_used_bits", used, "until", end.UTC().Format(time.RFC3339))
		}
		return errDailySpent
	}
	if first {
		f.log.Warn("redispool: monthly quota spent; filling paused", "filler", f.id,
			"used_bits", used, "quota_bits", f.meter.limit, "until", end.UTC().Format(time.RFC3339))
	}
	return errQuotaSpent
}

// pauseLeft is how long to wait before trying to reserve again.
func (f *Filler) pauseLeft() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block.kind == blockNone {
		return 0
	}
	now := f.now()
	if !now.Before(f.block.until) {
		f.block = block{} // the month or the day turned; the next beat says so
		return 0
	}
	return f.block.retry.Sub(now)
}

// settle records that r's request got an answer, so it stays counted.
// Asked again under the same token until Redis answers (or ctx ends and
// a last try fails): an unsettled reservation stays counted anyway.
func (f *Filler) settle(ctx context.Context, r reservation) {
	f.finish(ctx, r, func(ctx context.Context) error { return f.meter.settle(ctx, r) })
}

// refund gives r back: its request got no 200 answer. Applied once however
// often it is sent; a refund makes room, so it lifts this filler's pause.
func (f *Filler) refund(ctx context.Context, r reservation) {
	var n int64
	ok := f.finish(ctx, r, func(ctx context.Context) error {
		if f.beforeRefund != nil {
			f.beforeRefund(r.token)
		}
		var err error
		n, err = f.meter.refund(ctx, r)
		return err
	})
	if !ok {
		f.log.Warn("redispool: refund failed; the bits stay counted", "filler", f.id, "bits", r.bits)
		return
	}
	f.mu.Lock()
	f.stats.RefundedBits += n
	f.block = block{}
	f.mu.Unlock()
}

// finish runs a settle or refund of r until Redis answers, within the
// marker's lifetime, and forgets r. It reports whether Redis answered.
func (f *Filler) finish(ctx context.Context, r reservation, call func(context.Context) error) bool {
	defer func() {
		f.mu.Lock()
		delete(f.own, r.token)
		f.mu.Unlock()
	}()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushMarkerTTL/2)
	defer cancel()
	for failures := 1; ; failures++ {
		err := call(dctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil || dctx.Err() != nil {
			if ctx.Err() != nil && failures == 1 {
				continue // one more try at a stop
			}
			return false
		}
		sleepCtx(dctx, f.backoff(failures, nil))
	}
}

// sync takes the month's count (and the day's) from the service's usage,
// raising the shared counters to it plus the reservations in flight;
// with SkipUsageSync, to the floors the filler keeps. Only one sync runs
// at a time; callers at the same time share its result. A failure to read
// the usage is errNoUsage: nothing is reserved until it is known.
func (f *Filler) sync(ctx context.Context, c calendar) error {
	_, err, _ := f.syncs.Do("sync", func() (any, error) { return nil, f.syncOnce(ctx, c) })
	return err
}

func (f *Filler) syncOnce(ctx context.Context, c calendar) error {
	fl := f.floorsFor(c)
	if fl.synced {
		return nil
	}
	var used, dayUsed int64
	if !f.noSync {
		first := time.Date(c.dayStart.Year(), c.dayStart.Month(), 1, 0, 0, 0, 0, time.UTC)
		month, err := f.client.Usage(ctx, first, c.dayStart)
		var day int64
		if err == nil {
			day, err = f.client.Usage(ctx, c.dayStart, c.dayStart)
		}
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn("redispool: could not read the service's usage; reserving nothing until it is known (pooled chunks are still served)",
					"filler", f.id, "error", err.Error())
			}
			return fmt.Errorf("%w: %w", errNoUsage, err)
		}
		used, dayUsed = month, day
		fl.usage, fl.dayUsage = month, day
	}
	f.mu.Lock()
	own := make([]reservation, 0, len(f.own))
	for _, r := range f.own {
		own = append(own, r)
	}
	f.mu.Unlock()
	sent := f.now()
	a, err := f.meter.raise(ctx, c, used, dayUsed, fl, own, f.id)
	if err != nil {
		return err
	}
	f.sawRunID(a.runID)
	f.mu.Lock()
	f.clock.offset = a.server.Sub(sent.Add(f.now().Sub(sent) / 2))
	level := slog.LevelInfo // a sync after a sign of data loss is news
	if f.stats.Syncs == 0 {
		level = slog.LevelDebug // the one at start is routine
	}
	if a.status == meterOK && f.fl.month == c.month {
		f.fl.synced = true
		f.fl.usage, f.fl.dayUsage = fl.usage, fl.dayUsage
		f.fl.reserved = max(f.fl.reserved, a.reserved)
		f.fl.highest = max(f.fl.highest, a.used)
		f.fl.dayHighest = max(f.fl.dayHighest, a.dayUsed)
		f.stats.Syncs++
	}
	f.mu.Unlock()
	if a.status == meterOK && !f.noSync {
		f.log.Log(ctx, level, "redispool: month's count taken from the service's usage", "filler", f.id,
			"month", c.month, "used_bits", a.used, "service_bits", fl.usage)
	}
	return nil // a stale calendar: the caller asks again
}

// raiseToLimit records that the service declared the quota spent: the
// month's counter goes to the limit, so that every filler stops.
func (f *Filler) raiseToLimit(ctx context.Context, c calendar) int64 {
	a, err := f.meter.raise(ctx, c, f.meter.limit, 0, monthFloors{}, nil, f.id)
	if err != nil {
		return f.meter.limit
	}
	return a.used
}
