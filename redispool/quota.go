package redispool

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// quotaGrace is how long a month's counter and ledger outlive the month,
// so that status can still show them for a while; a day's counter outlives
// its day by dayGrace.
const (
	quotaGrace = 7 * 24 * time.Hour
	dayGrace   = 2 * 24 * time.Hour
)

// meter is the shared quota meter: one counter per UTC month and one per
// UTC day (of the Redis server's clock), and a ledger of the month's
// reservations, on which every filler of a pool reserves the bits of a
// request before sending it. Atomicity lives in the scripts; a meter holds
// no state of its own and is safe for concurrent use.
type meter struct {
	rdb   Redis
	keys  keys
	limit int64 // bits per month; negative: count without a limit
	daily int64 // the daily rule: 0 the even share, negative none, positive bits a day
	shift int64 // test seam: milliseconds added to the server's clock
}

// calendar is the UTC day a meter call is for, by the server's clock as
// the caller believes it to be; the scripts check it.
type calendar struct {
	month, day         string    // "2026-11", "2026-11-27"
	dayStart, dayEnd   time.Time // [dayStart, dayEnd)
	monthEnd           time.Time // start of the next month
	daysLeft           int       // days left in the month, today included
	monthExpire, dayEx string    // Unix seconds at which the keys expire
}

func calendarAt(now time.Time) calendar {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 1)
	monthEnd := nextMonth(now)
	return calendar{
		month: now.Format("2006-01"), day: now.Format(time.DateOnly),
		dayStart: start, dayEnd: end, monthEnd: monthEnd,
		daysLeft:    int(monthEnd.Sub(start) / (24 * time.Hour)),
		monthExpire: unix(monthEnd.Add(quotaGrace)), dayEx: unix(end.Add(dayGrace)),
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// nextMonth is the start of the UTC month after t.
func nextMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// reservation is one request's bits on the meter, named by its token so
// that a request that reaches Redis twice is applied once.
type reservation struct {
	token     string
	bits      int64
	cal       calendar
	monthKey  string
	dayKey    string
	ledgerKey string
}

// Statuses of the meter's scripts.
const (
	meterRefused = 0 // the monthly limit
	meterOK      = 1
	meterDaily   = 2 // the daily share
	meterStale   = 3 // the server's clock is outside the day asked for
	meterSync    = 4 // Redis may have lost data: sync first
	meterVoid    = 6 // the token was refunded already
)

// answer is what a meter script returns.
type answer struct {
	status        int
	used, dayUsed int64     // the month's and the day's counters
	server        time.Time // the server's clock
	runID         string
	share         int64 // today's share in bits; negative: no daily limit
	reserved      int64 // the ledger's "reserved"
}

func parseAnswer(v any, what string) (answer, error) {
	vals, ok := v.([]any)
	if !ok || len(vals) < 5 {
		return answer{}, fmt.Errorf("redispool: %s: unexpected answer %v", what, v)
	}
	ints := make([]int64, len(vals))
	for i, x := range vals {
		if i == 4 {
			continue
		}
		n, ok := x.(int64)
		if !ok {
			return answer{}, fmt.Errorf("redispool: %s: unexpected answer %v", what, v)
		}
		ints[i] = n
	}
	a := answer{status: int(ints[0]), used: ints[1], dayUsed: ints[2], server: time.UnixMilli(ints[3]), share: -1}
	a.runID, _ = vals[4].(string)
	if len(vals) >= 7 {
		a.share, a.reserved = ints[5], ints[6]
	}
	return a, nil
}

func (m *meter) keysFor(c calendar) (month, day, ledger string) {
	return m.keys.quota(c.month), m.keys.day(c.day), m.keys.ledger(c.month)
}

// floors are what a filler knows the meter must at least hold this month.
type floors struct {
	reserved int64 // the highest ledger "reserved" seen
	used     int64 // the service's usage, and the highest counter seen
	dayUsed  int64 // the same for the day
}

// reserve asks for r.bits under r.token in r's calendar.
func (m *meter) reserve(ctx context.Context, r reservation, fl floors, runID string, needExisting bool, filler string) (answer, error) {
	need := "0"
	if needExisting {
		need = "1"
	}
	c := r.cal
	v, err := reserveScript.Run(ctx, m.rdb, []string{r.monthKey, r.dayKey, r.ledgerKey},
		r.token, r.bits, m.limit, m.daily, unix(c.dayStart), unix(c.dayEnd), c.daysLeft,
		c.monthExpire, c.dayEx, fl.reserved, fl.used, runID, need, c.day, filler, m.shift).Result()
	if err != nil {
		return answer{}, fmt.Errorf("redispool: reserve quota on %s: %w", r.monthKey, err)
	}
	return parseAnswer(v, "reserve quota on "+r.monthKey)
}

// settle records that r's request was answered: it stays counted.
func (m *meter) settle(ctx context.Context, r reservation) error {
	if err := settleScript.Run(ctx, m.rdb, []string{r.ledgerKey}, r.token).Err(); err != nil {
		return fmt.Errorf("redispool: settle reservation on %s: %w", r.ledgerKey, err)
	}
	return nil
}

// refund gives r back, once.
func (m *meter) refund(ctx context.Context, r reservation) (int64, error) {
	n, err := refundScript.Run(ctx, m.rdb, []string{r.monthKey, r.dayKey, r.ledgerKey}, r.token, r.cal.monthExpire).Int64()
	if err != nil {
		return 0, fmt.Errorf("redispool: refund quota on %s: %w", r.monthKey, err)
	}
	return n, nil
}

// raise lifts the counters of c to the service's usage (used, dayUsed)
// plus the reservations in flight where they are below it, and to the
// caller's floors fl, re-recording own (this filler's reservations in
// flight) where the ledger lost them.
func (m *meter) raise(ctx context.Context, c calendar, used, dayUsed int64, fl monthFloors, own []reservation, filler string) (answer, error) {
	month, day, ledger := m.keysFor(c)
	args := []any{used, dayUsed, fl.highest, fl.dayHighest, fl.reserved,
		unix(c.dayStart), unix(c.dayEnd), c.monthExpire, c.dayEx, c.day}
	for _, r := range own {
		if r.monthKey == month {
			args = append(args, r.token, r.bits)
		}
	}
	args = append(args, filler, m.shift)
	v, err := raiseScript.Run(ctx, m.rdb, []string{month, day, ledger}, args...).Result()
	if err != nil {
		return answer{}, fmt.Errorf("redispool: raise quota count on %s: %w", month, err)
	}
	return parseAnswer(v, "raise quota count on "+month)
}

// read reads c's counters, changing nothing.
func (m *meter) read(ctx context.Context, c calendar) (answer, error) {
	month, day, _ := m.keysFor(c)
	v, err := readMeterScript.Run(ctx, m.rdb, []string{month, day}, unix(c.dayStart), unix(c.dayEnd), m.shift).Result()
	if err != nil {
		return answer{}, fmt.Errorf("redispool: read quota count on %s: %w", month, err)
	}
	return parseAnswer(v, "read quota count on "+month)
}
