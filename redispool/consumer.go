package redispool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/redis/go-redis/v9"
)

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

// quotaSpentError: the pool is empty and its fillers are stopped by the
// monthly quota. It matches qrng.ErrQuotaExceeded.
type quotaSpentError struct{ until time.Time }

func (e *quotaSpentError) Error() string {
	return "redispool: pool empty and the monthly quota is spent until " + e.until.UTC().Format(time.RFC3339)
}

func (e *quotaSpentError) Is(target error) bool { return target == qrng.ErrQuotaExceeded }

// RetryAfter is the time left until the quota renews, but at most a
// minute, the pace at which fillers look again (an operator may raise the
// quota).
func (e *quotaSpentError) RetryAfter() time.Duration {
	return max(0, min(time.Until(e.until), quotaRecheck))
}

// ConsumerConfig configures a Consumer. Every zero field means its default.
type ConsumerConfig struct {
	// Redis holds the pool. Required. A consumer needs only LMPOP on the
	// pool key and GET on the liveness and quota keys (see the package
	// documentation for the ACL).
	Redis Redis
	// Prefix starts every key of the pool. Default DefaultPrefix ("qrng").
	Prefix string
	// ChunkSize is the size of the pool's chunks, as its fillers cut them.
	// Default DefaultChunkSize. Fetch pops as many chunks as fit in its
	// buffer; a chunk that does not fit is erased, never kept for later.
	ChunkSize int
	// PollInterval is the longest pause between pops while Fetch waits on
	// an empty pool that a live filler is refilling. Default 50 ms.
	PollInterval time.Duration
}

// ConsumerStats is a snapshot of a Consumer's counters.
type ConsumerStats struct {
	Chunks    int64 // chunks popped
	Bytes     int64 // bytes returned by Fetch
	Discarded int64 // bytes popped that did not fit in Fetch's buffer, erased unserved
	Waits     int64 // Fetch calls that found the pool empty and waited for a filler
}

// A Consumer takes chunks of random bytes from a pool: it is a
// qrng.Upstream for a Source (Config.Upstream), needing no API token.
//
// Each chunk is removed from the pool by the same atomic command that
// hands it over, so it reaches one consumer at most. A Consumer is safe
// for concurrent use by multiple goroutines; it holds no bytes between
// calls. The zero value is not usable: make Consumers with NewConsumer.
type Consumer struct {
	rdb   Redis
	keys  keys
	chunk int
	poll  time.Duration

	afterTake func(popped []string) // test seam: the popped strings, after wiping

	chunks, bytes, discarded, waits atomic.Int64
}

var _ qrng.Upstream = (*Consumer)(nil)

// NewConsumer returns a Consumer for cfg. It does not contact Redis.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	c := &Consumer{
		rdb:   cfg.Redis,
		keys:  newKeys(cfg.Prefix),
		chunk: orDefault(cfg.ChunkSize, DefaultChunkSize),
		poll:  orDefault(cfg.PollInterval, 50*time.Millisecond),
	}
	switch {
	case cfg.Redis == nil:
		return nil, errors.New("redispool: ConsumerConfig.Redis is nil")
	case c.chunk < MinChunkSize || c.chunk > MaxChunkSize:
		return nil, fmt.Errorf("redispool: ConsumerConfig.ChunkSize %d outside %d..%d", c.chunk, MinChunkSize, MaxChunkSize)
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("redispool: ConsumerConfig.PollInterval %s is negative", cfg.PollInterval)
	}
	return c, nil
}

// Fetch pops as many whole chunks as fit in p (at least one), copies them
// into p and returns how many bytes it copied. It never returns a chunk
// twice, to this or any other consumer, and does not keep p. A p shorter
// than a chunk gets the start of one chunk; the rest is erased unserved
// (counted in ConsumerStats.Discarded).
//
// When the pool is empty and some filler is able to fill, Fetch waits
// for the refill until ctx ends (then it returns ctx.Err()). When the pool
// is empty and no filler is running, it returns ErrPoolEmpty at once; when
// the fillers are stopped by the monthly quota, an error matching
// qrng.ErrQuotaExceeded. Redis failures are returned as errors starting
// "redispool:"; the Redis client reconnects by itself, so Fetch works
// again once Redis is back.
//
// The popped chunks are erased from the client's memory once copied: the
// strings go-redis made from the reply, each over a buffer of its own, are
// overwritten with zeros. Redis frees its own copy when it pops a chunk;
// it does not erase it.
func (c *Consumer) Fetch(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, errors.New("redispool: Fetch needs a non-empty buffer")
	}
	count := int64(max(1, len(p)/c.chunk))
	pause := 5 * time.Millisecond
	waited := false
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		_, vals, err := c.rdb.LMPop(ctx, "left", count, c.keys.pool).Result()
		if err == nil {
			if n := c.take(p, vals); n > 0 {
				return n, nil
			}
			continue // only empty strings: nothing to serve
		}
		if !errors.Is(err, redis.Nil) {
			return 0, c.failed(ctx, "pop from", c.keys.pool, err)
		}
		_, err = c.rdb.Get(ctx, c.keys.alive).Result()
		if errors.Is(err, redis.Nil) {
			return 0, c.whyEmpty(ctx)
		}
		if err != nil {
			return 0, c.failed(ctx, "read", c.keys.alive, err)
		}
		if !waited {
			waited = true
			c.waits.Add(1)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
		pause = min(2*pause, c.poll)
	}
}

// whyEmpty tells an empty pool with no active filler: the quota is spent
// (the quota key holds when it renews), or nobody is filling.
func (c *Consumer) whyEmpty(ctx context.Context) error {
	v, err := c.rdb.Get(ctx, c.keys.spent).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return ErrPoolEmpty
	case err != nil:
		return c.failed(ctx, "read", c.keys.spent, err)
	}
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil && time.Now().Unix() < sec {
		return &quotaSpentError{until: time.Unix(sec, 0)}
	}
	return ErrPoolEmpty
}

// take copies the popped chunks into p, erasing each, and returns the
// bytes copied. Bytes that do not fit are erased unserved.
func (c *Consumer) take(p []byte, vals []string) int {
	var popped []string
	if c.afterTake != nil {
		popped = append(popped, vals...)
	}
	n := 0
	for i, v := range vals {
		k := copy(p[n:], v)
		n += k
		if k < len(v) {
			c.discarded.Add(int64(len(v) - k))
		}
		wipe(v)
		vals[i] = ""
	}
	if c.afterTake != nil {
		c.afterTake(popped)
	}
	c.chunks.Add(int64(len(vals)))
	c.bytes.Add(int64(n))
	return n
}

// failed wraps a Redis error, or returns ctx's error if ctx ended.
func (c *Consumer) failed(ctx context.Context, verb, key string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("redispool: %s %s: %w", verb, key, err)
}

// Stats returns a snapshot of the Consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{Chunks: c.chunks.Load(), Bytes: c.bytes.Load(),
		Discarded: c.discarded.Load(), Waits: c.waits.Load()}
}
