package qrng

import "context"

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
