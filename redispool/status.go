package redispool

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Status is a snapshot of a pool, as ReadStatus finds it.
type Status struct {
	Prefix       string // the pool's prefix (OldDefaultPrefix when an old pool was found; see ReadStatus)
	RedisVersion string // the server's version, as HELLO says it
	Chunks       int64  // chunks in the pool
	ChunkSize    int    // bytes per chunk, as the fillers record it; 0 if none has run
	Bytes        int64  // Chunks * ChunkSize

	// Budget is this month's and today's spending, by the Redis server's
	// clock (by the status reader's own where TIME is refused), and
	// today's share, under the quota and daily rule the pool's first
	// filler recorded (QuotaLimit 0 and DailyShare -1 if none has run).
	Budget
	Daily string // the daily rule: "even", "off", or bits a day; "" if none recorded
	// QuotaSpentUntil, when not zero, is when the quota (or, with
	// DailySpent, today's share) renews: some filler is stopped by it.
	QuotaSpentUntil time.Time
	DailySpent      bool

	// Auth is how the pool's chunks are sealed, as its first filler
	// recorded it: "none" (unauthenticated: no pool key), "hmac-sha256
	// <key id>" (each chunk carries a MAC under the pool key), or "" if no
	// filler has run.
	Auth string

	Filling bool           // some filler is filling or able to (the liveness key is set)
	Fillers []FillerStatus // fillers with a live heartbeat, by id
}

// FillerStatus describes one live filler.
type FillerStatus struct {
	ID   string        // the filler's id
	Info string        // host, pid, start time, bits, chunk size, batch size
	TTL  time.Duration // time left on its heartbeat
}

// ReadStatus reads the state of the pool with the given prefix ("" means
// DefaultPrefix, or OldDefaultPrefix where Redis holds a pool under it and
// none under DefaultPrefix: Status.Prefix says which). It reads no random
// bytes: only the server's version and clock, the pool's length, the
// month's and the day's counters, the settings and the heartbeats. It
// fails for a server older than MinRedisVersion (ErrRedisTooOld).
func ReadStatus(ctx context.Context, rdb Redis, prefix string) (Status, error) {
	var st Status
	srv, err := hello(ctx, rdb)
	if err == nil {
		err = srv.check()
	}
	if err != nil {
		return st, err
	}
	st.RedisVersion = srv.version
	if prefix == "" {
		if prefix, _, err = choosePrefix(ctx, rdb, srv, probeByExists); err != nil {
			return st, fmt.Errorf("redispool: status of %s: %w", newKeys(DefaultPrefix).meta, err)
		}
	}
	k := newKeys(prefix)
	st.Prefix = k.prefix
	wrap := func(key string, err error) error { return fmt.Errorf("redispool: status of %s: %w", key, err) }

	n, err := rdb.LLen(ctx, k.pool).Result()
	if err != nil {
		return st, wrap(k.pool, err)
	}
	st.Chunks = n
	meta, err := rdb.HGetAll(ctx, k.meta).Result()
	if err != nil {
		return st, wrap(k.meta, err)
	}
	st.ChunkSize, _ = strconv.Atoi(meta["chunk_size"])
	st.Bytes = st.Chunks * int64(st.ChunkSize)
	limit, _ := strconv.ParseInt(meta["quota_bits"], 10, 64)
	st.Daily = meta["daily"]
	st.Auth = meta["auth"]
	daily := int64(0)
	switch st.Daily {
	case "off":
		daily = -1
	case "even", "":
	default:
		daily, _ = strconv.ParseInt(st.Daily, 10, 64)
	}

	now := time.Now()
	if t, err := rdb.Time(ctx).Result(); err == nil {
		now = t
	}
	cal := calendarAt(now)
	var used [2]int64
	for i, key := range []string{k.quota(cal.month), k.day(cal.day)} {
		n, err := rdb.Get(ctx, key).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return st, wrap(key, err)
		}
		used[i] = n
	}
	st.Budget = budgetOf(cal, used[0], used[1], limit, daily)
	alive, err := rdb.Exists(ctx, k.alive).Result()
	if err != nil {
		return st, wrap(k.alive, err)
	}
	st.Filling = alive == 1
	spent, err := rdb.Get(ctx, k.spent).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return st, wrap(k.spent, err)
	}
	if e, ok := parseSpent(spent); ok && err == nil {
		st.QuotaSpentUntil, st.DailySpent = e.until.UTC(), e.daily
	}

	ids, err := rdb.SMembers(ctx, k.fillers).Result()
	if err != nil {
		return st, wrap(k.fillers, err)
	}
	sort.Strings(ids)
	for _, id := range ids {
		info, err := rdb.Get(ctx, k.filler(id)).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired: a filler that was killed
		}
		if err != nil {
			return st, wrap(k.filler(id), err)
		}
		ttl, err := rdb.PTTL(ctx, k.filler(id)).Result()
		if err != nil {
			return st, wrap(k.filler(id), err)
		}
		if ttl < 0 {
			continue // expired between the two calls
		}
		st.Fillers = append(st.Fillers, FillerStatus{ID: id, Info: info, TTL: ttl})
	}
	return st, nil
}
