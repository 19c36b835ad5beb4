package redispool

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
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
				failures++
				sleepCtx(ctx, f.backoff(failures, err))
				continue
			}
		}
		fetch, err := f.plan(ctx)
		f.redisResult(ctx, err)
		if err != nil {
			failures++
			sleepCtx(ctx, f.backoff(failures, nil))
			continue
		}
		if !fetch {
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
		case ctx.Err() != nil:
			return nil
		case fatal(err):
			f.log.Error("redispool: filler stops", "filler", f.id, "error", err.Error())
			return err
		case errors.Is(err, errQuotaSpent), errors.Is(err, errDailySpent), errors.Is(err, qrng.ErrQuotaExceeded):
			// pause logged it; pauseLeft paces the next try
		case errors.Is(err, errNoUsage):
			failures++
			sleepCtx(ctx, f.backoff(failures, err))
		default:
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
