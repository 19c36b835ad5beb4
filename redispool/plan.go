package redispool

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/qrng-go/qrng"
)

// worker fetches batches while a top-up is wanted, until ctx ends or
// trouble that retrying cannot mend stops it.
func (f *Filler) worker(ctx context.Context) error {
	buf := make([]byte, 0, f.batchBytes)
	failures := 0
	for ctx.Err() == nil {
		if d := f.pauseLeft(); d > 0 {
			sleepCtx(ctx, min(d, f.poll)) // a refund may lift the pause sooner
			continue
		}
		if c := f.calendarNow(); !f.floorsFor(c).synced {
			// At start, or Redis restarted: take the count from the service
			// now, not at the next reservation, so the counter is back
			// while the pool is still full.
			if err := f.sync(ctx, c); err != nil {
				if fatal(err) {
					return err
				}
				f.failed(err)
				failures++
				sleepCtx(ctx, f.backoff(failures, err))
				continue
			}
		}
		fetch, err := f.plan(ctx)
		f.redisResult(ctx, err)
		if err != nil {
			f.failed(err)
			failures++
			sleepCtx(ctx, f.backoff(failures, nil))
			continue
		}
		if !fetch {
			if f.topUpIdle() {
				f.filled() // nothing wanted: nothing failing
			}
			sleepCtx(ctx, f.poll)
			continue
		}
		err = f.fillOne(ctx, buf)
		f.mu.Lock()
		f.inflight -= int64(f.batchChunks)
		f.mu.Unlock()
		if aerr := f.announce(ctx); aerr != nil {
			return aerr
		}
		switch {
		case err == nil:
			failures = 0
			f.filled()
		case ctx.Err() != nil:
			return nil
		case fatal(err):
			f.log.Error("redispool: filler stops", "filler", f.id, "error", err.Error())
			return err
		case errors.Is(err, errQuotaSpent), errors.Is(err, errDailySpent), errors.Is(err, qrng.ErrQuotaExceeded):
			// pause logged it; pauseLeft paces the next try
		case errors.Is(err, errNoUsage):
			f.failed(err)
			failures++
			sleepCtx(ctx, f.backoff(failures, err))
		default:
			f.failed(err)
			failures++
			if failures&(failures-1) == 0 { // 1, 2, 4, 8...: an outage does not flood the log
				f.log.Warn("redispool: batch failed", "filler", f.id, "failures_in_a_row", failures, "error", err.Error())
			}
			sleepCtx(ctx, f.backoff(failures, err))
		}
	}
	return nil
}

// plan reads the pool's length and decides whether this worker fetches a
// batch: a top-up starts below the low mark and goes on until the pool
// plus the batches in flight reach the high mark.
func (f *Filler) plan(ctx context.Context) (bool, error) {
	n, err := f.rdb.LLen(ctx, f.keys.pool).Result()
	if err != nil {
		return false, fmt.Errorf("redispool: length of %s: %w", f.keys.pool, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.filling {
		if n >= f.low {
			return false, nil
		}
		f.filling = true
		f.top = topUp{start: f.now()}
		f.log.Debug("redispool: top-up starts", "filler", f.id, "pooled_bytes", n*int64(f.chunk))
	}
	if n+f.inflight >= f.high {
		if f.inflight == 0 {
			f.filling = false
			f.log.Info("redispool: pool topped up", "filler", f.id,
				"pooled_bytes", n*int64(f.chunk), "added_bytes", f.top.bytes, "batches", f.top.batches,
				"took", f.now().Sub(f.top.start).Round(time.Millisecond), "quota_used_bits", f.lastUsed)
		}
		return false, nil
	}
	f.inflight += int64(f.batchChunks)
	return true, nil
}

// topUpIdle reports whether no top-up is under way (the pool is at its
// marks), so that no failure to fill can be under way either.
func (f *Filler) topUpIdle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.filling && f.inflight == 0
}

// backoff is the pause after the failures-th failure in a row: full
// jitter over a window doubling from 100 ms up to MaxBackoff, but no less
// than the service's Retry-After (capped at ten minutes).
func (f *Filler) backoff(failures int, err error) time.Duration {
	window := f.maxBack
	if s := min(failures-1, 30); f.baseBackoff<<s < window {
		window = f.baseBackoff << s
	}
	d := time.Duration(mrand.Int64N(int64(window) + 1))
	var ae *qrng.APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		d = max(d, min(ae.RetryAfter, maxRetryAfter))
	}
	return d
}

// sleepCtx pauses for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// failAfter is how long a filler fails to fill, with no batch pushed,
// before its heartbeat says "failing": three beats.
func (f *Filler) failAfter() time.Duration { return f.ttl }

// maxFailText bounds the last error's text in the failing state.
const maxFailText = 400

// failed records a failure to fill: the first of a run starts the clock
// of the failing state.
func (f *Filler) failed(err error) {
	if err == nil {
		return
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > maxFailText {
		msg = msg[:maxFailText] + "..."
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSince.IsZero() {
		f.failSince = f.now()
	}
	f.lastFail = msg
}

// filled ends a run of failures: a batch was pushed, or none is wanted.
func (f *Filler) filled() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failSince, f.lastFail = time.Time{}, ""
}
