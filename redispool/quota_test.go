package redispool

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// at returns a reservation of bits in now's calendar (the server's clock
// shifted to now by m.shift).
func at(m *meter, now time.Time, bits int64) reservation {
	c := calendarAt(now)
	r := reservation{token: randomHex(16), bits: bits, cal: c}
	r.monthKey, r.dayKey, r.ledgerKey = m.keysFor(c)
	return r
}

// shiftTo sets m's clock shift so that the server's clock reads about t.
func shiftTo(m *meter, t time.Time) { m.shift = time.Until(t).Milliseconds() }

func mustReserve(t *testing.T, m *meter, r reservation) answer {
	t.Helper()
	a, err := m.reserve(context.Background(), r, floors{}, "", false, "test")
	require.NoError(t, err)
	return a
}

// The reserve script under 50 concurrent callers, each on its own
// connection, grants exactly up to the cap and no further.
func TestReserveStopsExactlyAtTheCap(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	now := time.Now()
	ctx := context.Background()

	t.Run("unit reservations", func(t *testing.T) {
		m := &meter{rdb: rdb, keys: newKeys("cap1"), limit: 5000, daily: -1}
		var mu sync.Mutex
		granted := 0
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				mine := 0
				for mine <= 5000 { // bounded, should the cap fail
					a, err := m.reserve(ctx, at(m, now, 1), floors{}, "", false, "test")
					if err != nil || a.status != meterOK {
						assert.NoError(t, err)
						break
					}
					mine++
				}
				mu.Lock()
				granted += mine
				mu.Unlock()
			})
		}
		wg.Wait()
		assert.Equal(t, 5000, granted)
		assert.Equal(t, int64(5000), quotaUsed(t, rdb, "cap1"))
	})

	t.Run("mixed sizes", func(t *testing.T) {
		const limit = 10_000
		m := &meter{rdb: rdb, keys: newKeys("cap2"), limit: limit, daily: -1}
		var mu sync.Mutex
		var sum int64
		var wg sync.WaitGroup
		for i := range 50 {
			size := int64(3 + 2*(i%3)) // 3, 5 or 7 bits
			wg.Go(func() {
				var mine int64
				for mine <= limit { // bounded, should the cap fail
					a, err := m.reserve(ctx, at(m, now, size), floors{}, "", false, "test")
					if err != nil || a.status != meterOK {
						assert.NoError(t, err)
						break
					}
					mine += size
				}
				mu.Lock()
				sum += mine
				mu.Unlock()
			})
		}
		wg.Wait()
		used := quotaUsed(t, rdb, "cap2")
		assert.Equal(t, sum, used, "the counter is the sum of the grants")
		assert.LessOrEqual(t, used, int64(limit))
		assert.Less(t, limit-used, int64(3), "refused only when even the smallest reservation no longer fits")
	})

	t.Run("reserve and refund", func(t *testing.T) {
		m := &meter{rdb: rdb, keys: newKeys("cap3"), limit: 1000, daily: -1}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 20 {
					r := at(m, now, 10)
					a, err := m.reserve(ctx, r, floors{}, "", false, "test")
					if !assert.NoError(t, err) || !assert.Equal(t, meterOK, a.status) {
						return
					}
					assert.LessOrEqual(t, a.used, int64(1000))
					_, err = m.refund(ctx, r)
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		assert.Zero(t, quotaUsed(t, rdb, "cap3"), "every reservation was given back")
	})
}

// Each reservation, settlement and refund carries a token and is applied
// once however often it reaches Redis: a repeated reserve is answered as
// reserved without counting again, a repeated refund gives back nothing
// more, a settled reservation cannot be refunded, and a reservation that
// arrives after its own refund (a copy delayed in a stalled connection)
// is not applied.
func TestMeterTokensApplyOnce(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	m := &meter{rdb: rdb, keys: newKeys("tok"), limit: 1000, daily: -1}
	now := time.Now()

	r := at(m, now, 100)
	for range 3 {
		a := mustReserve(t, m, r)
		assert.Equal(t, meterOK, a.status)
		assert.Equal(t, int64(100), a.used)
	}
	for range 3 {
		_, err := m.refund(ctx, r)
		require.NoError(t, err)
		assert.Zero(t, quotaUsed(t, rdb, "tok"))
	}
	a := mustReserve(t, m, r)
	assert.Equal(t, meterVoid, a.status, "a late copy of a refunded reservation")
	assert.Zero(t, quotaUsed(t, rdb, "tok"))

	s := at(m, now, 200)
	mustReserve(t, m, s)
	require.NoError(t, m.settle(ctx, s))
	require.NoError(t, m.settle(ctx, s))
	n, err := m.refund(ctx, s)
	require.NoError(t, err)
	assert.Zero(t, n, "a settled reservation stays counted")
	assert.Equal(t, int64(200), quotaUsed(t, rdb, "tok"))

	// A refund that comes first (the reservation is still on its way)
	// keeps the reservation from being applied when it arrives.
	u := at(m, now, 300)
	n, err = m.refund(ctx, u)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, meterVoid, mustReserve(t, m, u).status)
	assert.Equal(t, int64(200), quotaUsed(t, rdb, "tok"))
}

// The day and month are the server's: a call for a day the server's
// clock is not in is refused as stale, with the server's time, and
// changes nothing.
func TestMeterUsesTheServersClock(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	m := &meter{rdb: rdb, keys: newKeys("clock"), limit: -1, daily: -1}
	a := mustReserve(t, m, at(m, time.Now().Add(-48*time.Hour), 10))
	assert.Equal(t, meterStale, a.status)
	assert.WithinDuration(t, time.Now(), a.server, 5*time.Second, "the answer carries the server's clock")
	n, err := rdb.Keys(context.Background(), "clock:*").Result()
	require.NoError(t, err)
	assert.Empty(t, n)
}

// The even share: the quota left at the start of the day over the days
// left, today included; the script and shareOf agree, and a reservation
// past the share is refused as the day's, not the month's.
func TestDailyShare(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	day := time.Date(2031, 3, 22, 12, 0, 0, 0, time.UTC) // 10 days left in March, today included
	m := &meter{rdb: rdb, keys: newKeys("share"), limit: 10_000, daily: 0}
	shiftTo(m, day)
	require.Equal(t, 10, calendarAt(day).daysLeft)
	// 2,000 bits reserved before today: (10,000 - 2,000) / 10 = 800 a day.
	_, err := m.raise(ctx, calendarAt(day), 2000, 0, monthFloors{}, nil, "test")
	require.NoError(t, err)
	var got int64
	for {
		a := mustReserve(t, m, at(m, day, 300))
		if a.status != meterOK {
			assert.Equal(t, meterDaily, a.status)
			assert.Equal(t, int64(800), a.share)
			assert.Equal(t, shareOf(m.limit, a.used, a.dayUsed, 0, 10), a.share)
			break
		}
		got += 300
	}
	assert.Equal(t, int64(600), got, "two of 300 fit in 800")

	m.daily = 1000 // a fixed rule
	assert.Equal(t, meterOK, mustReserve(t, m, at(m, day, 300)).status)
	assert.Equal(t, meterDaily, mustReserve(t, m, at(m, day, 300)).status)
	m.daily = -1 // none: only the month's limit
	for {
		a := mustReserve(t, m, at(m, day, 300))
		if a.status != meterOK {
			assert.Equal(t, meterRefused, a.status)
			break
		}
	}
	assert.Equal(t, int64(-1), shareOf(-1, 0, 0, 0, 10), "no limit: no share")
}

func TestMeterCounterExpiresAfterItsMonth(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	m := &meter{rdb: rdb, keys: newKeys("exp"), limit: -1, daily: -1}
	now := time.Date(2031, 11, 27, 12, 0, 0, 0, time.UTC)
	shiftTo(m, now)
	require.Equal(t, meterOK, mustReserve(t, m, at(m, now, 100)).status)
	for key, want := range map[string]time.Time{
		"exp:quota:2031-11":  time.Date(2031, 12, 8, 0, 0, 0, 0, time.UTC), // a week after the month ends
		"exp:ledger:2031-11": time.Date(2031, 12, 8, 0, 0, 0, 0, time.UTC),
		"exp:day:2031-11-27": time.Date(2031, 11, 30, 0, 0, 0, 0, time.UTC), // two days after the day
	} {
		exp, err := rdb.ExpireTime(ctx, key).Result()
		require.NoError(t, err)
		assert.Equal(t, want.Unix(), int64(exp/time.Second), key)
	}

	// A negative limit counts without refusing.
	a := mustReserve(t, m, at(m, now, 1<<40))
	assert.Equal(t, meterOK, a.status)
	assert.Equal(t, int64(100+1<<40), a.used)

	// needExisting leaves a missing counter alone: sync first.
	a, err := m.reserve(ctx, at(m, now, 100), floors{}, "", true, "test")
	require.NoError(t, err)
	assert.Equal(t, meterOK, a.status, "the counter exists")
	next := now.AddDate(0, 1, 0)
	shiftTo(m, next)
	a, err = m.reserve(ctx, at(m, next, 100), floors{}, "", true, "test")
	require.NoError(t, err)
	assert.Equal(t, meterSync, a.status)
	n, err := rdb.Exists(ctx, "exp:quota:2031-12").Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	// raise lifts, never lowers; below the usage, it adds the
	// reservations in flight (the service has not counted them).
	shiftTo(m, now)
	a, err = m.raise(ctx, calendarAt(now), 5, 0, monthFloors{}, nil, "test")
	require.NoError(t, err)
	assert.Equal(t, int64(200+1<<40), a.used)
	all, err := rdb.HKeys(ctx, "exp:ledger:2031-11").Result()
	require.NoError(t, err)
	for _, f := range all {
		if tok, ok := strings.CutPrefix(f, "t:"); ok && tok != all[len(all)-1][2:] {
			require.NoError(t, m.settle(ctx, reservation{token: tok, ledgerKey: "exp:ledger:2031-11"}))
		}
	}
	a, err = m.raise(ctx, calendarAt(now), 2<<40, 0, monthFloors{}, nil, "test")
	require.NoError(t, err)
	assert.Equal(t, int64(2<<40+100), a.used, "the usage, and the one reservation still in flight")
}
