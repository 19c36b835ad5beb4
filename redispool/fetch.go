package redispool

import (
	"context"
	"errors"
	"fmt"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/internal/bitpack"
)

// One batch's journey: reserved on the meter, fetched from the service,
// settled or refunded, packed, checked, cut into chunks and pushed.

// fillOne reserves, fetches, checks, cuts and pushes one batch. buf holds
// the packed batch and is erased before fillOne returns.
func (f *Filler) fillOne(ctx context.Context, buf []byte) error {
	r, err := f.reserve(ctx)
	if err != nil {
		return err
	}
	actx, answer := withAnswerSeen(ctx)
	vals, err := f.client.RandomNumbers(actx, f.batchN, f.bits)
	if err != nil {
		return f.fetchFailed(ctx, r, answer.served(), err)
	}
	f.settle(ctx, r)
	p := bitpack.New(f.bits, buf[:0])
	for _, v := range vals {
		p.Add(v)
	}
	clear(vals)
	b := p.Bytes()
	defer func() {
		clear(b)
		if f.afterPush != nil {
			f.afterPush(b)
		}
	}()
	if err := f.check(b); err != nil {
		f.mu.Lock()
		f.stats.Failures++
		f.stats.Rejected++
		f.mu.Unlock()
		return err
	}
	if f.beforePush != nil {
		f.beforePush()
	}
	return f.push(ctx, b, fingerprints(b, f.chunk))
}

// fetchFailed applies the refund rule: a request that never left (a
// refused connection, a failed token exchange) or got an error status
// cannot have been served, so its bits go back; a 200 answer that was
// cut, malformed or is rejected stays counted, and so does a request sent
// whole that got no answer (timed out, cancelled by a stop: the service
// may have served it). answered says whether a 200 status arrived or the
// request is in doubt. When the service itself says the quota is
// spent, the shared counter is raised to the limit so that every filler
// stops.
func (f *Filler) fetchFailed(ctx context.Context, r reservation, answered bool, err error) error {
	f.mu.Lock()
	f.stats.Failures++
	f.mu.Unlock()
	if answered {
		f.settle(ctx, r)
		return err
	}
	f.refund(ctx, r)
	if errors.Is(err, qrng.ErrQuotaExceeded) {
		end := r.cal.monthEnd
		var ae *qrng.APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			f.mu.Lock()
			soon := f.now().Add(f.clock.offset).Add(ae.RetryAfter)
			f.mu.Unlock()
			if soon.Before(end) {
				end = soon
			}
		}
		used := f.meter.limit
		if used >= 0 {
			used = f.raiseToLimit(context.WithoutCancel(ctx), r.cal)
		}
		f.pause(blockQuota, end, used)
	}
	return err
}

// check runs the health tests and the replay check on a packed batch, and
// returns the batch's anchors for the pool's shared replay memory.
func (f *Filler) check(b []byte) error {
	if err := f.tester.Check(b); err != nil {
		return fmt.Errorf("%w: %v", qrng.ErrRejectedBatch, err)
	}
	anchors := f.replay.Anchors(b) // outside the lock: it reads the whole batch
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.replay.Remember(anchors); i >= 0 {
		return fmt.Errorf("%w: it repeats bytes of itself or of a recent batch (replay, anchor %d)", qrng.ErrRejectedBatch, i)
	}
	return nil
}
