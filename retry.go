package qrng

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// baseBackoff is the first backoff pause before jitter.
const baseBackoff = 200 * time.Millisecond

// attemptHooks run around each attempt of a call. before runs ahead of
// each attempt (to reserve quota and reset the consumer of the answer) and
// may stop the call with its error; after runs when the attempt is over,
// with its error, whether the server answered it with 200, and whether
// the request was sent whole with no status line back (in doubt: it may
// have been served). A request that is neither was not served: it never
// left, or the server answered it with an error status. Either hook may
// be nil.
type attemptHooks struct {
	before func() error
	after  func(err error, answered, inDoubt bool)
}

// call runs attempts until one succeeds, a failure is not worth retrying,
// or the retries are spent. A 401 on an authenticated call refreshes the
// access token and tries once more without counting as a retry. Every
// error it returns has passed through the Client's redaction.
func (c *Client) call(ctx context.Context, path string, body []byte, auth bool, handle func(*http.Response) error, hooks attemptHooks) error {
	refreshed := false
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var access string
		if auth {
			var err error
			if access, err = c.accessToken(ctx); err != nil {
				return err
			}
		}
		if hooks.before != nil {
			if err := hooks.before(); err != nil {
				return err
			}
		}
		answered, inDoubt, err := c.attempt(ctx, path, body, access, handle)
		err = c.sec.scrub(err)
		if hooks.after != nil {
			hooks.after(err, answered, inDoubt)
		}
		if err == nil {
			return nil
		}
		if auth && !refreshed && errors.Is(err, ErrUnauthorized) {
			refreshed = true
			c.tok.invalidate(access)
			attempt--
			continue
		}
		if !retryable(err) || attempt >= c.maxRetries || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		delay := c.backoff(attempt, err)
		if dl, ok := ctx.Deadline(); ok && c.now().Add(delay).After(dl) {
			return err // the pause would outlast the caller's deadline
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "qrng: retrying", slog.String("endpoint", path),
			slog.Int("attempt", attempt+1), slog.Duration("delay", delay), slog.String("error", err.Error()))
		if serr := c.sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%w (while waiting to retry after: %v)", serr, err)
		}
		c.retried.Add(1)
	}
}

// backoff returns the pause before retry number attempt+1: full jitter over
// an exponentially growing window capped at MaxBackoff, but never less
// than the server's Retry-After (itself capped at MaxRetryAfter).
func (c *Client) backoff(attempt int, err error) time.Duration {
	window := c.maxBackoff
	if attempt < 30 && baseBackoff<<attempt < window {
		window = baseBackoff << attempt
	}
	d := time.Duration(c.jitter(int64(window) + 1))
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		d = max(d, min(ae.RetryAfter, c.maxRetryAf))
	}
	return d
}

// retryable reports whether another attempt might succeed.
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return errors.Is(ae, ErrRateLimited) || errors.Is(ae, ErrServer)
	}
	var ir *invalidResponse
	if errors.As(err, &ir) {
		return ir.err.Truncated // a body cut short is a transport fault
	}
	var te *transportError
	if errors.As(err, &te) {
		return !te.permanent
	}
	return false
}

// isPermanentTransport spots failures that retrying cannot mend: TLS
// certificate verification and refused redirects.
func isPermanentTransport(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &record):
		return true
	}
	return errors.Is(err, errRedirect)
}

func randInt63n(n int64) int64 { return rand.Int64N(n) }
