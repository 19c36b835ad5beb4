package redispool

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// quotaGrace is how long a month's counter outlives the month, so that
// status can still show it for a while.
const quotaGrace = 7 * 24 * time.Hour

// meter is the shared monthly quota meter: one counter per UTC month, on
// which every filler of a pool reserves the bits of a request before
// sending it. Atomicity lives in the scripts; a meter holds no state of its
// own and is safe for concurrent use.
type meter struct {
	rdb   Redis
	keys  keys
	limit int64 // bits per month; negative: count without a limit
}

// reservation is what a request reserved, to be given back if the request
// got no answer.
type reservation struct {
	key  string
	bits int64
}

func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// nextMonth is the start of the UTC month after t.
func nextMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

func expireAt(now time.Time) string {
	return strconv.FormatInt(nextMonth(now).Add(quotaGrace).Unix(), 10)
}

// reserve counts bits in now's month if the month's total stays within the
// limit. needExisting leaves a missing counter missing (status -1), so the
// caller can first raise it to the service's count. status is 1 when
// reserved, 0 when refused; used is the count after (or that refused it).
func (m *meter) reserve(ctx context.Context, now time.Time, bits int64, needExisting bool) (r reservation, status int, used int64, err error) {
	key := m.keys.quota(monthOf(now))
	need := "0"
	if needExisting {
		need = "1"
	}
	vals, err := reserveScript.Run(ctx, m.rdb, []string{key}, bits, m.limit, expireAt(now), need).Int64Slice()
	if err != nil {
		return reservation{}, 0, 0, fmt.Errorf("redispool: reserve quota on %s: %w", key, err)
	}
	if len(vals) != 2 {
		return reservation{}, 0, 0, fmt.Errorf("redispool: reserve quota on %s: unexpected answer %v", key, vals)
	}
	if vals[0] == 1 {
		r = reservation{key: key, bits: bits}
	}
	return r, int(vals[0]), vals[1], nil
}

// refund gives a reservation back.
func (m *meter) refund(ctx context.Context, r reservation) error {
	if r.bits == 0 {
		return nil
	}
	if err := refundScript.Run(ctx, m.rdb, []string{r.key}, r.bits).Err(); err != nil {
		return fmt.Errorf("redispool: refund quota on %s: %w", r.key, err)
	}
	return nil
}

// raise lifts now's month's count to at least used.
func (m *meter) raise(ctx context.Context, now time.Time, used int64) (int64, error) {
	key := m.keys.quota(monthOf(now))
	n, err := raiseScript.Run(ctx, m.rdb, []string{key}, used, expireAt(now)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redispool: raise quota count on %s: %w", key, err)
	}
	return n, nil
}
