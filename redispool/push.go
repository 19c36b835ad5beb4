package redispool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	pushMarkerTTL = 5 * time.Minute  // how long a batch's push marker lives
	pushTimeout   = 30 * time.Second // one push attempt
	// oomTries is how many pushes of one batch Redis may refuse for want of
	// memory before the filler stops: more would fetch batches Redis
	// cannot hold.
	oomTries = 5
)

// push appends b's chunks to the pool in one script, which Redis runs
// whole or not at all, under a marker of its own: a push whose answer is
// lost, or that Redis refused (out of memory), is sent again with the same
// marker, so the batch, paid for, enters the pool once. It retries for at
// most half the marker's lifetime (and leaveTimeout after a stop); a
// batch that never got in is dropped (PushErrors). Redis out of memory on
// oomTries pushes in a row, or settings that can evict the pool, stop the
// filler (a stopError).
func (f *Filler) push(ctx context.Context, b []byte) error {
	args := make([]any, 1, 1+len(b)/f.chunk)
	args[0] = pushMarkerTTL.Milliseconds()
	for off := 0; off+f.chunk <= len(b); off += f.chunk {
		args = append(args, b[off:off+f.chunk])
	}
	defer clear(args)
	marker := f.keys.pushed(randomHex(16))
	deadline := f.now().Add(pushMarkerTTL / 2)
	stopped := false
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
		err := pushScript.Run(pctx, f.rdb, []string{f.keys.pool, marker}, args...).Err()
		cancel()
		if err == nil {
			f.mu.Lock()
			f.stats.Batches++
			f.stats.Chunks += int64(len(args) - 1)
			f.top.batches++
			f.top.bytes += int64(len(b))
			f.mu.Unlock()
			return nil
		}
		if f.pushFailed != nil {
			f.pushFailed(attempt, err)
		}
		if ctx.Err() != nil && !stopped {
			stopped = true
			if soon := f.now().Add(leaveTimeout); soon.Before(deadline) {
				deadline = soon
			}
		}
		var stop error
		if cerr := f.checkRedis(context.WithoutCancel(ctx), false); errors.As(cerr, new(stopError)) {
			stop = cerr
		} else if redis.IsOOMError(err) && attempt >= oomTries {
			stop = stopError{fmt.Errorf("redispool: Redis refused %d pushes of a batch for want of memory (%v); filling stops and the batch, paid for, is lost: "+
				"raise Redis's maxmemory or lower FillerConfig.Target", attempt, err)}
		}
		if stop != nil || !f.now().Before(deadline) {
			f.mu.Lock()
			f.stats.PushErrors++
			f.mu.Unlock()
			if stop != nil {
				return stop
			}
			return fmt.Errorf("redispool: push to %s failed %d times, batch dropped: %w", f.keys.pool, attempt, err)
		}
		f.mu.Lock()
		f.stats.PushRetries++
		f.mu.Unlock()
		f.log.Warn("redispool: push failed; sending it again with the same marker", "filler", f.id, "attempt", attempt, "error", err.Error())
		t := time.NewTimer(min(f.backoff(attempt, nil), time.Until(deadline)))
		<-t.C
	}
}
