package qrng

import (
	"fmt"
	"time"
)

// quotaMeter counts the bits this Source requested in the current UTC
// month. Bits are reserved before a request is sent. They are given back
// when the service did not answer the request with 200 (a transport
// error before the answer, a 4xx, a 5xx): it cannot have served, so
// cannot have counted, them. They stay counted after a 200 answer that
// was then cut short, malformed or rejected, since the service probably
// counted those. Not safe for concurrent use; its owner guards it.
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

// reserve counts bits against the month's limit, or refuses. It returns
// the month the bits were counted in, for refund.
func (m *quotaMeter) reserve(now time.Time, bits int64) (string, error) {
	m.roll(now)
	if m.limit >= 0 && m.used+bits > m.limit {
		return "", fmt.Errorf("%w: %d of %d bits used this month, a batch needs %d (local meter)",
			ErrQuotaExceeded, m.used, m.limit, bits)
	}
	m.used += bits
	return m.month, nil
}

// refund gives back bits reserved in month, if that month is still
// being counted.
func (m *quotaMeter) refund(month string, bits int64) {
	if month == m.month {
		m.used = max(0, m.used-bits)
	}
}

// maxUsage is the largest usage a server may report: far above any
// quota, and far enough below 2^63 that adding a request's bits cannot
// overflow.
const maxUsage = 1 << 62

// observe raises the count to what the server reports as used. A count
// outside 0..maxUsage cannot be true: it is refused (an error matching
// ErrInvalidResponse), the meter unchanged, so that the caller fails
// closed rather than wrap the meter negative.
func (m *quotaMeter) observe(now time.Time, used int64) error {
	if used < 0 || used > maxUsage {
		return fmt.Errorf("%w: a usage of %d bits is outside 0..2^62", ErrInvalidResponse, used)
	}
	m.roll(now)
	m.used = max(m.used, used)
	return nil
}
