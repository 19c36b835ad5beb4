package qrng

import (
	"crypto/rand"
	"fmt"
	"time"
)

// FallbackPolicy says when a Source may serve bytes from crypto/rand
// instead of quantum bytes. Every fallback byte is counted in
// Stats.FallbackBytes, and each switch is logged and reported to
// Config.OnFallback: fallback is never silent.
type FallbackPolicy int

const (
	// FallbackOnError, the default, falls back when the monthly quota is
	// spent or when no quantum data arrives within Config.WaitTimeout (the
	// service is down or keeps failing). Uint64 panics under it only after
	// Close.
	FallbackOnError FallbackPolicy = iota
	// FallbackOnQuota falls back only when the monthly quota is spent.
	// Other failures are returned by Read; Uint64 panics with them.
	FallbackOnQuota
	// FallbackNever serves quantum bytes or nothing: Read returns the
	// error and Uint64 panics with it.
	FallbackNever
)

func (p FallbackPolicy) String() string {
	switch p {
	case FallbackOnError:
		return "on-error"
	case FallbackOnQuota:
		return "on-quota"
	case FallbackNever:
		return "never"
	}
	return fmt.Sprintf("FallbackPolicy(%d)", int(p))
}

// allows reports whether the policy permits fallback for this cause.
func (p FallbackPolicy) allows(quota bool) bool {
	return p == FallbackOnError || (p == FallbackOnQuota && quota)
}

// FallbackEvent reports a switch between quantum and crypto/rand bytes.
type FallbackEvent struct {
	Active bool      // true: now serving crypto/rand; false: quantum again
	Reason error     // why fallback started (nil when it ends)
	Time   time.Time // when the switch happened
}

// fillFallback fills p from crypto/rand, which never fails (Go 1.24+) and
// does not let p escape.
func fillFallback(p []byte) {
	rand.Read(p)
}
