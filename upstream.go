package qrng

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
)

// An Upstream is where a Source's random bytes come from, one batch at a
// time. The uQRNG service (through a Client) is the default Upstream; a
// shared pool (package redispool) is another; a program or a test may
// supply its own with Config.Upstream.
//
// Whatever the Upstream, what makes bytes trustworthy stays the Source's:
// every batch passes the health tests and the replay check before any of
// it is served, and mixing, erasure, fallback and Stats work as they do
// for the service.
//
// Fetch fills p[:n] with fresh random bytes and returns n, with
// 0 < n <= len(p), or returns an error. len(p) is any whole number of
// 512-byte windows up to the batch size (Config.BatchSize values of
// Config.Bits bits): a Source's first requests are small and grow (see
// Config.BatchSize). Fetch must not keep p, nor return the same bytes
// twice, to this or any other caller. A Source calls Fetch from several
// goroutines at once (Config.Workers), so Fetch must be safe for
// concurrent use. It must return promptly once ctx is done: Source.Close
// waits at most 5 s for it. A panic in Fetch is a failed batch.
//
// An Upstream that hands out bytes in fixed units (a pool's chunks) may
// say so with a method FetchUnit() int, the unit in bytes (0 while it is
// not known). The Source then makes every request a whole number of
// units, as long as a batch holds one, so that no unit is cut and its
// rest erased unserved. The Source calls it before each request, with
// its lock held: it must not block.
//
// An error that matches ErrQuotaExceeded (errors.Is) means no bytes can be
// had until the quota renews: the Source applies its quota fallback rule.
// Any other error is a failure: the Source retries after a pause and
// applies its error fallback rule. An error with a method
// RetryAfter() time.Duration asks the Source to wait at least that long
// before calling Fetch again. An error that matches
// context.DeadlineExceeded, or has a method Timeout() bool that reports
// true, says the request was too slow for its size: the Source halves its
// next request (down to 512 bytes) and asks again at once.
type Upstream interface {
	Fetch(ctx context.Context, p []byte) (n int, err error)
}

// service is the default Upstream: the uQRNG API through a Client, with
// the local monthly quota meter. It is safe for concurrent use.
type service struct {
	client    *Client
	clientErr error // why there is no client (a bad $QCI_API_URL), reported by each Fetch
	bits      int
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex // guards all below
	meter   quotaMeter
	synced  bool          // the meter has the service's count (or SyncUsage gave up, or is off)
	syncing chan struct{} // closed when the read of the usage under way ends; nil if none
	syncErr error         // the outcome of the last read of the usage
}

// syncTries is how many reads of the usage SyncUsage makes (each with the
// Client's own retries, and the Client's backoff between them) before it
// gives up and the meter starts at zero.
const syncTries = 3

// distrustPause is how long a usage answer that cannot be true holds the
// quota as spent before the usage is read again.
const distrustPause = time.Minute

func newService(cfg Config, bits int, log *slog.Logger) *service {
	u := &service{bits: bits, log: log, now: time.Now,
		meter: quotaMeter{limit: cmp(cfg.QuotaBits, DefaultQuotaBits)}}
	u.synced = !cfg.SyncUsage
	u.client, u.clientErr = NewClient(ClientConfig{Token: cfg.Token, BaseURL: cfg.BaseURL,
		HTTPClient: cfg.HTTPClient, MaxRetries: cfg.MaxRetries, AttemptTimeout: cfg.AttemptTimeout,
		MaxBackoff: cfg.MaxBackoff, Logger: cfg.Logger})
	return u
}

// Fetch fetches len(p)*8/bits values and packs them into p, which must
// hold a whole number of values. Each attempt reserves its bits on the
// meter first; an attempt that was never sent whole, or that the service
// answered with an error status, is refunded. One sent whole with no
// answer (timed out, cancelled by Close, connection broken) stays
// counted: the service may have served it. An attempt that timed out, or whose answer was cut short, is
// not retried at this size: Fetch returns a tooSlowError and the Source
// halves its next request.
func (u *service) Fetch(ctx context.Context, p []byte) (int, error) {
	if u.clientErr != nil {
		return 0, u.clientErr
	}
	n := len(p) * 8 / u.bits
	if n < 1 || n > MaxSamples || n*u.bits != len(p)*8 {
		return 0, fmt.Errorf("qrng: internal error: a %d-byte slice is not a request of whole %d-bit values", len(p), u.bits)
	}
	if err := u.sync(ctx); err != nil {
		return 0, err
	}
	pk := bitpack.New(u.bits, p[:0])
	cost := int64(n) * int64(u.bits)
	var (
		month string
		start time.Time
		slow  error // the attempt that was too slow for this size
	)
	hooks := attemptHooks{
		before: func() error {
			if slow != nil {
				return slow // do not send the same size again: the Source halves it
			}
			pk.Reset(p[:0])
			u.mu.Lock()
			defer u.mu.Unlock()
			var err error
			month, err = u.meter.reserve(u.now(), cost)
			start = time.Now()
			return err
		},
		after: func(err error, answered, inDoubt bool) {
			if err != nil && !answered && !inDoubt {
				u.mu.Lock()
				u.meter.refund(month, cost) // never sent, or an error status: the service cannot have counted it
				u.mu.Unlock()
			}
			if err != nil && ctx.Err() == nil &&
				(answered && retryable(err) || time.Since(start) >= u.client.attemptTTL) {
				slow = &tooSlowError{err: err} // cut short after a 200, or timed out
			}
		},
	}
	if err := u.client.fetch(ctx, n, u.bits, hooks, addAll(pk)); err != nil {
		if slow != nil {
			return 0, slow
		}
		return 0, err
	}
	out := pk.Bytes()
	if len(out) != len(p) || &out[0] != &p[0] {
		clear(out)
		return 0, fmt.Errorf("qrng: internal error: packed %d bytes for a %d-byte batch", len(out), len(p))
	}
	return len(p), nil
}

// sync starts the meter at the service's count for this month, when
// Config.SyncUsage asks for it, before the first request is sent. One
// read of the usage runs at a time; callers that find one under way wait
// for it and share its outcome. A failed read is tried again, after the
// Client's backoff, until syncTries have failed: then a warning says the
// meter starts at zero. A usage answer that cannot be true fails closed
// (see usageDistrusted), and is read again on a later Fetch.
func (u *service) sync(ctx context.Context) error {
	u.mu.Lock()
	if u.synced {
		u.mu.Unlock()
		return nil
	}
	if w := u.syncing; w != nil {
		u.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.syncErr
	}
	w := make(chan struct{})
	u.syncing = w
	u.mu.Unlock()

	err := u.readUsage(ctx)
	u.mu.Lock()
	u.syncErr, u.syncing = err, nil
	close(w)
	u.mu.Unlock()
	return err
}

// readUsage reads this month's usage into the meter, trying up to
// syncTries times, with the Client's backoff between tries.
func (u *service) readUsage(ctx context.Context) error {
	for try := 1; ; try++ {
		t := u.now().UTC()
		first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		used, err := u.client.Usage(ctx, first, t)
		if err == nil {
			u.mu.Lock()
			err = u.meter.observe(t, used)
			u.synced = err == nil
			u.mu.Unlock()
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrInvalidResponse):
			return &usageDistrusted{err: err}
		case try >= syncTries:
			u.log.Warn("qrng: SyncUsage gave up reading this month's usage; the quota meter starts at zero",
				slog.Int("tries", try), slog.String("error", err.Error()))
			u.mu.Lock()
			u.synced = true
			u.mu.Unlock()
			return nil
		}
		if serr := u.client.sleep(ctx, u.client.backoff(try-1, err)); serr != nil {
			return serr
		}
	}
}

// usageDistrusted: the service's usage answer cannot be true. The meter
// fails closed: it matches ErrQuotaExceeded, so the Source treats the
// quota as spent, and asks the Source to try again after distrustPause,
// when the usage is read again.
type usageDistrusted struct{ err error }

func (e *usageDistrusted) Error() string {
	return "qrng: SyncUsage: the service's usage answer cannot be true; the quota counts as spent until a sane answer: " + e.err.Error()
}
func (e *usageDistrusted) Is(target error) bool      { return target == ErrQuotaExceeded }
func (e *usageDistrusted) Unwrap() error             { return e.err }
func (e *usageDistrusted) RetryAfter() time.Duration { return distrustPause }

// quotaUsed is the meter's count for the current month.
func (u *service) quotaUsed() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.meter.roll(u.now())
	return u.meter.used
}
