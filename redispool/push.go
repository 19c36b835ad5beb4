package redispool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qrng-go/qrng"
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
// marker, so the batch, paid for, enters the pool once. The script also
// checks the batch's fingerprints fps against the pool's shared replay
// memory (see seen.go) and refuses a batch the service sent before, to
// any filler: an error matching qrng.ErrRejectedBatch (FillerStats
// Rejected and Replayed). It retries for at most half the marker's
// lifetime (and leaveTimeout after a stop); a batch that never got in is
// dropped (PushErrors). Redis out of memory on oomTries pushes in a row,
// or settings that can evict the pool, stop the filler (a stopError).
func (f *Filler) push(ctx context.Context, b []byte, fps []any) error {
	gen, err := f.generation(ctx)
	if err != nil {
		return err
	}
	var m *macer
	if f.key != nil {
		m = newMacer(f.keys.prefix, f.key)
	}
	n, el := len(b)/f.chunk, headerLen(m)+f.chunk
	sealed := make([]byte, n*el)
	defer clear(sealed)
	sealAll := func(g generation) {
		for i := range n {
			seal(sealed[i*el:(i+1)*el], g, b[i*f.chunk:(i+1)*f.chunk], m)
		}
	}
	sealAll(gen)
	args := make([]any, 0, 5+len(fps)+n)
	args = append(args, pushMarkerTTL.Milliseconds(), seenTTL.Milliseconds(), seenCap, gen.String(), len(fps))
	args = append(args, fps...)
	for i := range n {
		args = append(args, sealed[i*el:(i+1)*el])
	}
	defer clear(args)
	marker := f.keys.pushed(randomHex(16))
	deadline := f.now().Add(pushMarkerTTL / 2)
	stopped := false
	unknown := false // some attempt failed with no answer: it may have pushed
	regens := 0
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
		v, err := pushScript.Run(pctx, f.rdb, []string{f.keys.pool, marker, f.keys.seen}, args...).Slice()
		cancel()
		if err == nil && len(v) == 2 {
			switch code, _ := v[0].(int64); code {
			case 2: // the server's generation is another: Redis restarted or failed over
				s, _ := v[1].(string)
				g, ok := genFromHex(s)
				regens++
				if unknown || !ok || regens > 3 {
					// An earlier attempt may have pushed the batch into the
					// old generation, where its chunks may have been served:
					// pushed again, they could be served twice.
					f.mu.Lock()
					f.stats.PushErrors++
					f.stats.Dropped++
					f.mu.Unlock()
					return fmt.Errorf("redispool: Redis restarted or failed over (a new generation, %q) after a push to %s whose outcome is unknown: "+
						"the batch is dropped, never pushed twice", s, f.keys.pool)
				}
				f.sawGen(g)
				sealAll(g)
				args[3] = g.String()
				continue
			case 3:
				f.mu.Lock()
				f.stats.Failures++
				f.stats.Rejected++
				f.stats.Replayed++
				f.mu.Unlock()
				return fmt.Errorf("%w: the pool's replay memory (%s) holds its bytes: the service sent them before, to this filler or another",
					qrng.ErrRejectedBatch, f.keys.seen)
			}
			f.mu.Lock()
			f.stats.Batches++
			f.stats.Chunks += int64(n)
			f.top.batches++
			f.top.bytes += int64(len(b))
			f.mu.Unlock()
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected answer %v", v)
		}
		unknown = true
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

// generation is the server's generation as the last heartbeat saw it, or,
// before any, as the server says now.
func (f *Filler) generation(ctx context.Context) (generation, error) {
	f.mu.Lock()
	g, ok := f.gen, f.genKnown
	f.mu.Unlock()
	if ok {
		return g, nil
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout) // a stopping filler still pushes its batch
	defer cancel()
	s, err := genScript.Run(gctx, f.rdb, []string{f.keys.pool}).Text()
	if err != nil {
		return g, fmt.Errorf("redispool: read the generation of %s: %w", f.keys.pool, err)
	}
	if g, ok = genFromHex(s); !ok {
		return g, stopError{errors.New("redispool: Redis's INFO shows no run_id or master_replid: " +
			"the pool cannot tell a restarted or failed-over server's chunks from its own, so it refuses to fill it")}
	}
	f.sawGen(g)
	return g, nil
}
