package qrng

import (
	"context"
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
// 0 < n <= len(p), or returns an error. Fetch must not keep p, nor return
// the same bytes twice, to this or any other caller. A Source calls Fetch
// from several goroutines at once (Config.Workers), so Fetch must be safe
// for concurrent use. It must return promptly once ctx is done.
//
// An error that matches ErrQuotaExceeded (errors.Is) means no bytes can be
// had until the quota renews: the Source applies its quota fallback rule.
// Any other error is a failure: the Source retries after a pause and
// applies its error fallback rule. An error with a method
// RetryAfter() time.Duration asks the Source to wait at least that long
// before calling Fetch again.
type Upstream interface {
	Fetch(ctx context.Context, p []byte) (n int, err error)
}

// service is the default Upstream: the uQRNG API through a Client, with
// the local monthly quota meter. It is safe for concurrent use.
type service struct {
	client    *Client
	clientErr error // why there is no client (a bad $QCI_API_URL), reported by each Fetch
	bits      int
	batchN    int
	syncUsage bool
	log       *slog.Logger
	now       func() time.Time

	mu     sync.Mutex // guards meter and synced
	meter  quotaMeter
	synced bool
}

func newService(cfg Config, bits, batchN int, log *slog.Logger) *service {
	u := &service{bits: bits, batchN: batchN, syncUsage: cfg.SyncUsage, log: log, now: time.Now,
		meter: quotaMeter{limit: cmp(cfg.QuotaBits, DefaultQuotaBits)}}
	u.client, u.clientErr = NewClient(ClientConfig{Token: cfg.Token, BaseURL: cfg.BaseURL,
		HTTPClient: cfg.HTTPClient, MaxRetries: cfg.MaxRetries, Logger: cfg.Logger})
	return u
}

// Fetch fetches one batch of batchN values and packs them into p, which
// must hold batchN*bits/8 bytes. Each attempt reserves its bits on the
// meter first; an attempt the service did not answer with 200 is refunded.
func (u *service) Fetch(ctx context.Context, p []byte) (int, error) {
	if u.clientErr != nil {
		return 0, u.clientErr
	}
	u.sync(ctx)
	size := u.batchN * u.bits / 8
	if len(p) < size {
		return 0, fmt.Errorf("qrng: internal error: a %d-byte slice for a %d-byte batch", len(p), size)
	}
	pk := bitpack.New(u.bits, p[:0])
	cost := int64(u.batchN) * int64(u.bits)
	var month string
	hooks := attemptHooks{
		before: func() error {
			pk.Reset(p[:0])
			u.mu.Lock()
			defer u.mu.Unlock()
			var err error
			month, err = u.meter.reserve(u.now(), cost)
			return err
		},
		after: func(err error, answered bool) {
			if err != nil && !answered {
				u.mu.Lock()
				u.meter.refund(month, cost) // not answered with 200: the service cannot have counted it
				u.mu.Unlock()
			}
		},
	}
	if err := u.client.fetch(ctx, u.batchN, u.bits, hooks, addAll(pk)); err != nil {
		return 0, err
	}
	out := pk.Bytes()
	if len(out) != size || &out[0] != &p[0] {
		clear(out)
		return 0, fmt.Errorf("qrng: internal error: packed %d bytes for a %d-byte batch", len(out), size)
	}
	return size, nil
}

// sync starts the meter at the service's count for this month, once,
// when Config.SyncUsage asks for it.
func (u *service) sync(ctx context.Context) {
	u.mu.Lock()
	now := !u.synced && u.syncUsage
	u.synced = true
	u.mu.Unlock()
	if !now {
		return
	}
	t := u.now().UTC()
	first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	used, err := u.client.Usage(ctx, first, t)
	if err != nil {
		u.log.Warn("qrng: could not read usage; the quota meter starts at zero", "error", err.Error())
		return
	}
	u.mu.Lock()
	u.meter.observe(t, used)
	u.mu.Unlock()
}

// quotaUsed is the meter's count for the current month.
func (u *service) quotaUsed() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.meter.roll(u.now())
	return u.meter.used
}
