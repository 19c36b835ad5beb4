package redispool

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis settings a pool needs. A Redis that evicts keys when memory runs
// short would drop chunks that were paid for (and, under a volatile-*
// policy, the quota counters and heartbeats, which have TTLs); one whose
// maxmemory cannot hold the target refuses pushes of batches already
// fetched. The filler reads the settings from INFO memory, which needs no
// CONFIG permission (managed services often withhold CONFIG).

// headroom is the share added to the pool's bytes for Redis's own
// overhead per chunk (list nodes, allocator rounding).
const headroomNum, headroomDen = 5, 4

// memoryInfo is what INFO memory says of the limits.
type memoryInfo struct {
	maxmemory int64
	used      int64
	policy    string
}

func parseMemoryInfo(s string) memoryInfo {
	var m memoryInfo
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "maxmemory":
			m.maxmemory, _ = strconv.ParseInt(v, 10, 64)
		case "used_memory":
			m.used, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory_policy":
			m.policy = v
		}
	}
	return m
}

// need is the memory the pool may take: the target and a batch per
// worker, with headroom.
func (f *Filler) need() int64 {
	return (f.high*int64(f.chunk) + int64(f.workers*f.batchBytes)) * headroomNum / headroomDen
}

// checkRedis refuses Redis settings that would lose the pool: an eviction
// policy other than noeviction while maxmemory is set, or (with room, as
// Run starts) a maxmemory that leaves less room than need. Such settings,
// and an INFO the filler may not read, are a stopError; a Redis that
// cannot be reached is a plain error. Later checks (a push failed, keys
// were evicted) leave room out: memory others hold may be freed, and a
// push refused for want of it is retried (see push).
func (f *Filler) checkRedis(ctx context.Context, room bool) error {
	s, err := f.nodeOfPool(ctx).Info(ctx, "memory").Result()
	if err != nil {
		if strings.Contains(err.Error(), "NOPERM") {
			return stopError{fmt.Errorf("redispool: cannot read Redis's memory settings (INFO memory: %v): "+
				"the filler needs +info to check that Redis will not evict the pool (see the package documentation's ACL)", err)}
		}
		return fmt.Errorf("redispool: read Redis's memory settings: %w", err)
	}
	m := parseMemoryInfo(s)
	if m.maxmemory <= 0 {
		return nil // no limit: nothing is evicted, no push refused for memory
	}
	if m.policy != "noeviction" {
		return stopError{fmt.Errorf("redispool: Redis's maxmemory-policy is %s (with maxmemory %d): when memory runs short it evicts keys, "+
			"and the pool's chunks, paid for, would vanish unserved (a volatile-* policy evicts the quota counters too): "+
			"set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, or in redis.conf)", m.policy, m.maxmemory)}
	}
	if !room {
		return nil
	}
	pooled, err := f.rdb.LLen(ctx, f.keys.pool).Result()
	if err != nil {
		return fmt.Errorf("redispool: length of %s: %w", f.keys.pool, err)
	}
	free := m.maxmemory - m.used + pooled*int64(f.chunk)
	if need := f.need(); free < need {
		return stopError{fmt.Errorf("redispool: Redis's maxmemory %d leaves %d bytes free (used_memory %d, %d of them pooled), "+
			"less than the pool needs: %d bytes (Target %d, a batch of %d bytes per worker, and a quarter more for Redis's overhead): "+
			"raise maxmemory (CONFIG SET maxmemory, or in redis.conf) or lower FillerConfig.Target",
			m.maxmemory, free, m.used, pooled*int64(f.chunk), need, f.high*int64(f.chunk), f.batchBytes)}
	}
	return nil
}

// nodeOfPool is where the pool's memory is: on a Redis Cluster, the
// primary that holds the pool's slot (INFO goes to any node otherwise),
// elsewhere the client itself.
func (f *Filler) nodeOfPool(ctx context.Context) Redis {
	type router interface {
		MasterForKey(ctx context.Context, key string) (*redis.Client, error)
	}
	if r, ok := f.rdb.(router); ok {
		if c, err := r.MasterForKey(ctx, f.keys.pool); err == nil {
			return c
		}
	}
	return f.rdb
}
