package redispool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/redis/go-redis/v9"
)

// ConsumerConfig configures a Consumer. Every zero field means its default.
type ConsumerConfig struct {
	// Redis holds the pool. Required. A consumer needs only LMPOP on the
	// pool key and GET on the liveness and quota keys (see the package
	// documentation for the ACL).
	Redis Redis
	// Prefix starts every key of the pool. Default DefaultPrefix
	// ("{qrng}"), or OldDefaultPrefix ("qrng") where Redis holds a pool
	// under it and none under DefaultPrefix (decided at the first Fetch or
	// ChunkSize, and logged).
	Prefix string
	// ChunkSize is the size of the pool's chunks, as its fillers cut them.
	// Default (0): the pool's, as its first filler recorded it in the
	// pool's settings (or, where the consumer may not read them, as the
	// first chunk popped shows). A ChunkSize that differs from the pool's
	// makes Fetch fail, naming both, before it pops anything where the
	// settings can be read (after one chunk where they cannot), rather
	// than popping chunks it cannot serve.
	ChunkSize int
	// PollInterval is the longest pause between pops while Fetch waits on
	// an empty pool that a live filler is refilling. Default 50 ms.
	PollInterval time.Duration
	// Logger receives the one notice a Consumer may log: that it uses the
	// old default prefix. Default: slog.Default().
	Logger *slog.Logger
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
	rdb  Redis
	keys keys
	want int // ConsumerConfig.ChunkSize; 0: the pool's
	poll time.Duration

	size       atomic.Int64 // the pool's chunk size once known; 0 until then
	metaDenied atomic.Bool  // the pool's settings may not be read: learn from chunks

	auto    bool         // no Prefix given: the first call picks it (choosePrefix)
	log     *slog.Logger // for the old prefix's notice
	readyMu sync.Mutex   // guards the writes of ready
	isReady atomic.Bool  // the server was checked and keys chosen; keys is not written after

	afterTake func(popped []string) // test seam: the popped strings, after wiping
	beforeWhy func()                // test seam: between a pop that found nothing and reading why

	chunks, bytes, discarded, waits atomic.Int64
}

var _ qrng.Upstream = (*Consumer)(nil)

// NewConsumer returns a Consumer for cfg. It does not contact Redis.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	c := &Consumer{
		rdb:  cfg.Redis,
		keys: newKeys(cfg.Prefix),
		want: cfg.ChunkSize,
		poll: orDefault(cfg.PollInterval, 50*time.Millisecond),
		auto: cfg.Prefix == "",
		log:  cfg.Logger,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	switch {
	case cfg.Redis == nil:
		return nil, errors.New("redispool: ConsumerConfig.Redis is nil")
	case c.want != 0 && (c.want < MinChunkSize || c.want > MaxChunkSize):
		return nil, fmt.Errorf("redispool: ConsumerConfig.ChunkSize %d outside %d..%d", c.want, MinChunkSize, MaxChunkSize)
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("redispool: ConsumerConfig.PollInterval %s is negative", cfg.PollInterval)
	}
	return c, nil
}

// Fetch pops as many whole chunks as fit in p (at least one), copies them
// into p and returns how many bytes it copied: it never pops more than it
// can serve, but for the tail of one chunk when p is shorter than a chunk
// (the rest is erased unserved, counted in ConsumerStats.Discarded). It
// never returns a chunk twice, to this or any other consumer, and does
// not keep p. Until the pool's chunk size is known (see
// ConsumerConfig.ChunkSize) it pops one chunk.
//
// When the pool is empty and some filler is able to fill, Fetch waits
// for the refill until ctx ends (then it returns ctx.Err()). When the pool
// is empty and no filler is running, it returns ErrPoolEmpty at once; when
// the fillers are stopped by the monthly quota or by today's share of it,
// an error matching qrng.ErrQuotaExceeded (and, for the day's share,
// ErrDailyShareSpent) that says when it renews. It reports either only
// after a last pop finds the pool still empty. Redis failures are
// returned as errors starting "redispool:"; the Redis client reconnects
// by itself, so Fetch works again once Redis is back.
//
// The popped chunks are erased from the client's memory once copied: the
// strings go-redis made from the reply, each over a buffer of its own, are
// overwritten with zeros. Redis frees its own copy when it pops a chunk;
// it does not erase it.
func (c *Consumer) Fetch(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, errors.New("redispool: Fetch needs a non-empty buffer")
	}
	if err := c.ready(ctx); err != nil {
		return 0, err
	}
	pause := 5 * time.Millisecond
	waited := false
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, popped, err := c.pop(ctx, p)
		if err != nil || n > 0 {
			return n, err
		}
		if popped {
			continue // only empty strings: nothing to serve
		}
		if c.beforeWhy != nil {
			c.beforeWhy()
		}
		why, err := c.whyEmpty(ctx)
		if err != nil {
			return 0, err
		}
		if why != nil {
			// Chunks pushed just before the reason was written are there
			// now: the reason is true only if the pool is still empty.
			if n, _, err := c.pop(ctx, p); err != nil || n > 0 {
				return n, err
			}
			return 0, why
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

// whyEmpty tells why the pool is empty: nil while a filler can fill (the
// liveness key is set: wait), else the quota or the day's share (the quota
// key says which, and when it renews), else ErrPoolEmpty.
func (c *Consumer) whyEmpty(ctx context.Context) (error, error) {
	_, err := c.rdb.Get(ctx, c.keys.alive).Result()
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, redis.Nil):
		return nil, c.failed(ctx, "read", c.keys.alive, err)
	}
	v, err := c.rdb.Get(ctx, c.keys.spent).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return ErrPoolEmpty, nil
	case err != nil:
		return nil, c.failed(ctx, "read", c.keys.spent, err)
	}
	if e, ok := parseSpent(v); ok {
		return e, nil
	}
	return ErrPoolEmpty, nil
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
