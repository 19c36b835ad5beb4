package qrng

import (
	"context"
	"errors"

	"github.com/qrng-go/qrng/internal/health"
)

// Request sizing: a Source spends about what its callers take.
//
// The first request asks for what the first read needs, rounded up to the
// unit (the fewest whole values that fill whole 512-byte health windows:
// 512 bytes at 16 bits). Each request that succeeds doubles the next, up
// to the batch size, so a steady reader reaches full batches within a few
// requests while a program that draws one value and exits spends one
// unit. A caller that waits for more than the next request would bring
// raises it to what that caller needs.
//
// A request that times out, or whose answer is cut short, halves the next
// one (down to one unit) and is sent again at once: a slow service gets
// requests it can answer within the attempt timeout. The size that failed
// becomes a ceiling: successes double the size again but stay below it
// until probation requests in a row have succeeded. A request of one unit
// that is too slow is an ordinary failure (pause, fallback policy).

// probation is how many successful requests in a row lift the ceiling a
// too-slow request set.
const probation = 8

// sizing holds the request-size state. The Source's mutex guards it.
type sizing struct {
	base  int // whole values in whole health windows: every unit is a multiple of it
	unit  int // smallest request in bytes: base, or a multiple of the upstream's unit
	batch int // largest request in bytes (Config.BatchSize values), a multiple of unit
	next  int // size of the next request; 0 until the first demand
	ceil  int // a request of this size was too slow: stay below it (0: no ceiling)
	ok    int // requests that succeeded since ceil was set
}

// unitBytes is the smallest request of values of the given width that
// packs into whole health windows: 4096/gcd(bits, 4096) values.
func unitBytes(bits int) int {
	values := health.Window * 8 / (bits & -bits) // bits & -bits: its largest power-of-two factor
	return values * bits / 8
}

// fit makes every request a whole number of u bytes too, as well as of
// base: for an upstream that serves in units (a pool's chunks, see
// Upstream), so that no request ends inside a unit the upstream would
// then erase unserved. u <= 0 (not known yet) changes nothing.
func (z *sizing) fit(u int) {
	if u <= 0 {
		return
	}
	unit := z.base / gcd(z.base, u) * u
	if unit == z.unit || unit > z.batch {
		return // a batch smaller than a unit: the Config's choice (see Upstream)
	}
	z.unit = unit
	z.batch = z.batch / unit * unit
	if z.ceil > 0 {
		z.ceil = max(unit, z.ceil/unit*unit)
	}
	if z.next > 0 {
		z.next = z.roundUp(z.next)
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// limit is the largest size the next request may have.
func (z *sizing) limit() int {
	if z.ceil > 0 {
		return max(z.unit, (z.ceil/2)/z.unit*z.unit)
	}
	return z.batch
}

// roundUp returns need rounded up to whole units, within unit..limit.
func (z *sizing) roundUp(need int) int {
	r := (max(need, 1) + z.unit - 1) / z.unit * z.unit
	return max(z.unit, min(r, z.limit()))
}

// demand records that a caller waits for need bytes: the next request
// brings at least that much (within the limit). It reports whether this
// was the first demand.
func (z *sizing) demand(need int) (first bool) {
	r := z.roundUp(need)
	first = z.next == 0
	z.next = max(z.next, r)
	return first
}

// take returns the size of the request to send now.
func (z *sizing) take() int {
	if z.next == 0 {
		z.next = z.unit
	}
	return min(z.next, z.limit())
}

// succeeded records a request of size bytes that brought a batch.
func (z *sizing) succeeded(size int) {
	if z.ceil > 0 {
		if z.ok++; z.ok >= probation {
			z.ceil, z.ok = 0, 0
		}
	}
	z.next = min(max(z.next, 2*size), z.limit())
}

// tooSlow records a request of size bytes that timed out or was cut
// short. It reports whether a smaller request is possible (the failure is
// then one of size, not an outage).
func (z *sizing) tooSlow(size int) (shrunk bool) {
	if size <= z.unit {
		z.next = z.unit
		return false
	}
	z.ceil, z.ok = size, 0
	z.next = min(z.next, max(z.unit, (size/2)/z.unit*z.unit))
	return true
}

// tooSlowError marks a request the service did not answer in time, or
// whose answer was cut short: the Source halves its next request.
type tooSlowError struct{ err error }

func (e *tooSlowError) Error() string { return e.err.Error() }
func (e *tooSlowError) Unwrap() error { return e.err }

// isTooSlow reports whether err says a request was too slow for its size:
// the default upstream's tooSlowError, or, from any Upstream, an error
// that matches context.DeadlineExceeded or has a Timeout method that
// reports true. The Source's own end (ctx done) is not one.
func isTooSlow(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ts *tooSlowError
	if errors.As(err, &ts) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
