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
	Chunks    int64 // chunks in the pool
	ChunkSize int   // bytes per chunk, as the fillers record it; 0 if none has run
	Bytes     int64 // Chunks * ChunkSize

	Month      string // the current UTC month, "2026-11"
	QuotaUsed  int64  // bits reserved this month by all fillers together
	QuotaLimit int64  // the monthly quota the fillers enforce; 0 if none recorded, negative: no limit
	// QuotaSpentUntil, when not zero, is when the quota renews: some
	// filler is stopped by it.
	QuotaSpentUntil time.Time

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
// DefaultPrefix). It reads no random bytes: only the pool's length, the
// month's counter, the metadata and the heartbeats.
func ReadStatus(ctx context.Context, rdb Redis, prefix string) (Status, error) {
	k := newKeys(prefix)
	var st Status
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
	st.QuotaLimit, _ = strconv.ParseInt(meta["quota_bits"], 10, 64)

	st.Month = monthOf(time.Now())
	used, err := rdb.Get(ctx, k.quota(st.Month)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return st, wrap(k.quota(st.Month), err)
	}
	st.QuotaUsed = used
	alive, err := rdb.Exists(ctx, k.alive).Result()
	if err != nil {
		return st, wrap(k.alive, err)
	}
	st.Filling = alive == 1
	spent, err := rdb.Get(ctx, k.spent).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return st, wrap(k.spent, err)
	}
	if spent > time.Now().Unix() {
		st.QuotaSpentUntil = time.Unix(spent, 0).UTC()
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
