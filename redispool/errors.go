package redispool

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/qrng-go/qrng"
)

// Why an empty pool is empty, as a Consumer reports it.

// ErrPoolEmpty: the pool is empty and no filler is running (none has
// refreshed the pool's liveness key within its heartbeat TTL), so no bytes
// will come by waiting. It is not a quota error: a Source with
// FallbackNever returns it and one with FallbackOnError falls back. Its
// RetryAfter method asks for a pause of one second before the next try.
var ErrPoolEmpty error = poolEmptyError{}

type poolEmptyError struct{}

func (poolEmptyError) Error() string { return "redispool: pool empty and no filler running" }

// RetryAfter is the pause a Source takes before it tries the pool again.
func (poolEmptyError) RetryAfter() time.Duration { return time.Second }

// ErrDailyShareSpent: the pool is empty and its fillers have spent today's
// share of the quota (FillerConfig.DailyBits), so none will come before
// the next UTC day. The error a Consumer returns then matches both it and
// qrng.ErrQuotaExceeded, so a Source applies its quota fallback rule.
var ErrDailyShareSpent = errors.New("redispool: daily share spent")

// spentError: the pool is empty and its fillers are stopped by the
// monthly quota, or by today's share of it, until a time. It matches
// qrng.ErrQuotaExceeded (and ErrDailyShareSpent for the day's share).
type spentError struct {
	daily bool
	until time.Time
}

func (e *spentError) Error() string {
	at := e.until.UTC().Format(time.RFC3339)
	if e.daily {
		return "redispool: pool empty: daily share spent (the fillers spread the month's quota over its days), renews at " + at
	}
	return "redispool: pool empty and the monthly quota is spent until " + at
}

func (e *spentError) Is(target error) bool {
	return target == qrng.ErrQuotaExceeded || e.daily && target == ErrDailyShareSpent
}

// spentRecheck is how soon a Source over the pool looks again after a
// quota error: the block lifts as soon as a filler can fill again (a
// refund made room, an operator raised the quota), and a look is one pop.
const spentRecheck = time.Second

// RetryAfter is the time left until the quota or the day renews, but at
// most spentRecheck.
func (e *spentError) RetryAfter() time.Duration {
	return max(0, min(time.Until(e.until), spentRecheck))
}

// parseSpent reads the quota key's value: "quota <unix>" or "daily
// <unix>" (or a bare Unix time, as fillers before the daily share wrote
// it).
func parseSpent(v string) (*spentError, bool) {
	word, num, ok := strings.Cut(v, " ")
	if !ok {
		word, num = "quota", v
	}
	sec, err := strconv.ParseInt(num, 10, 64)
	if err != nil || word != "quota" && word != "daily" {
		return nil, false
	}
	return &spentError{daily: word == "daily", until: time.Unix(sec, 0)}, true
}

// ErrNotFilling: the pool is empty and its fillers run but have failed to
// fill for longer than their heartbeat TTL (the service or Redis failing,
// every batch rejected), with no batch pushed, so no bytes will come by
// waiting. The error a Consumer returns then matches it and says since
// when and the fillers' last error. It is not a quota error: a Source
// with FallbackNever returns it and one with FallbackOnError falls back,
// giving it as the reason. Its RetryAfter asks for a pause of one second.
var ErrNotFilling = errors.New("redispool: the pool's fillers are not filling")

// notFillingError is ErrNotFilling with what the failing key says.
type notFillingError struct {
	since time.Time
	last  string
}

func (e *notFillingError) Error() string {
	return "redispool: pool empty and its fillers are not filling (failing since " +
		e.since.UTC().Format(time.RFC3339) + "), last error: " + e.last
}

func (e *notFillingError) Is(target error) bool { return target == ErrNotFilling }

// RetryAfter is the pause a Source takes before it tries the pool again.
func (e *notFillingError) RetryAfter() time.Duration { return time.Second }

// parseFailing reads the failing key's value: "failing <unix> <last error>".
func parseFailing(v string) (*notFillingError, bool) {
	rest, ok := strings.CutPrefix(v, "failing ")
	if !ok {
		return nil, false
	}
	num, last, _ := strings.Cut(rest, " ")
	sec, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return nil, false
	}
	if last == "" {
		last = "unknown"
	}
	return &notFillingError{since: time.Unix(sec, 0), last: last}, true
}
