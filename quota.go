package qrng

import (
	"fmt"
	"time"
)

// quotaMeter counts the bits this Source requested in the current UTC
// month. Bits are reserved before a request is sent and stay counted even
// if the request fails: the server's accounting is unknown, so the meter
// errs on the side of asking for less. Not safe for concurrent use; Source
// guards it with its mutex.
type quotaMeter struct {
	limit int64  // bits per month; negative: no local limit
	month string // "2026-11": the month used counts
	used  int64  // bits reserved this month
}

func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// nextMonth is the start of the UTC month after t.
func nextMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

func (m *quotaMeter) roll(now time.Time) {
	if mo := monthOf(now); mo != m.month {
		m.month, m.used = mo, 0
	}
}

// reserve counts bits against the month's limit, or refuses.
func (m *quotaMeter) reserve(now time.Time, bits int64) error {
	m.roll(now)
	if m.limit >= 0 && m.used+bits > m.limit {
		return fmt.Errorf("%w: %d of %d bits used this month, a batch needs %d (local meter)",
			ErrQuotaExceeded, m.used, m.limit, bits)
	}
	m.used += bits
	return nil
}

// observe raises the count to what the server reports as used.
func (m *quotaMeter) observe(now time.Time, used int64) {
	m.roll(now)
	m.used = max(m.used, used)
}
