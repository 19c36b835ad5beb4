package redispool

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reserve script under 50 concurrent callers, each on its own
// connection, grants exactly up to the cap and no further.
func TestReserveStopsExactlyAtTheCap(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	now := time.Now()
	ctx := context.Background()

	t.Run("unit reservations", func(t *testing.T) {
		m := &meter{rdb: rdb, keys: newKeys("cap1"), limit: 5000}
		var mu sync.Mutex
		granted := 0
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				mine := 0
				for mine <= 5000 { // bounded, should the cap fail
					_, status, _, err := m.reserve(ctx, now, 1, false)
					if err != nil || status != 1 {
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
		m := &meter{rdb: rdb, keys: newKeys("cap2"), limit: limit}
		var mu sync.Mutex
		var sum int64
		var wg sync.WaitGroup
		for i := range 50 {
			size := int64(3 + 2*(i%3)) // 3, 5 or 7 bits
			wg.Go(func() {
				var mine int64
				for mine <= limit { // bounded, should the cap fail
					_, status, _, err := m.reserve(ctx, now, size, false)
					if err != nil || status != 1 {
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
		m := &meter{rdb: rdb, keys: newKeys("cap3"), limit: 1000}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 20 {
					r, status, used, err := m.reserve(ctx, now, 10, false)
					if !assert.NoError(t, err) || !assert.Equal(t, 1, status) {
						return
					}
					assert.LessOrEqual(t, used, int64(1000))
					assert.NoError(t, m.refund(ctx, r))
				}
			})
		}
		wg.Wait()
		assert.Zero(t, quotaUsed(t, rdb, "cap3"), "every reservation was given back")
	})
}

func TestMeterCounterExpiresAfterItsMonth(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	m := &meter{rdb: rdb, keys: newKeys("exp"), limit: -1}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	_, status, _, err := m.reserve(ctx, now, 100, false)
	require.NoError(t, err)
	require.Equal(t, 1, status)
	at, err := rdb.ExpireTime(ctx, "exp:quota:2026-11").Result()
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC).Unix(), int64(at/time.Second),
		"a week after the month ends")

	// A negative limit counts without refusing.
	_, status, used, err := m.reserve(ctx, now, 1<<40, false)
	require.NoError(t, err)
	assert.Equal(t, 1, status)
	assert.Equal(t, int64(100+1<<40), used)

	// needExisting leaves a missing counter alone.
	_, status, _, err = m.reserve(ctx, now.AddDate(0, 1, 0), 100, true)
	require.NoError(t, err)
	assert.Equal(t, -1, status)
	n, err := rdb.Exists(ctx, "exp:quota:2026-12").Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	// raise lifts, never lowers; refund never goes below zero.
	got, err := m.raise(ctx, now, 5)
	require.NoError(t, err)
	assert.Equal(t, int64(100+1<<40), got)
	require.NoError(t, m.refund(ctx, reservation{key: "exp:quota:2026-11", bits: 1 << 50}))
	assert.Equal(t, "0", rdb.Get(ctx, "exp:quota:2026-11").Val())
}
