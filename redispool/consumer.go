package redispool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/redis/go-redis/v9"
)

// ConsumerConfig configures a Consumer. Every zero field means its default.
type ConsumerConfig struct {
	// Redis holds the pool. Required, with ContextTimeoutEnabled set (see
	// Redis). A consumer needs only LMPOP and BLMPOP on the pool key and
	// GET on the liveness, quota and failing keys (see the package
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
	// PollInterval is the longest a blocking pop (BLMPOP) waits on an
	// empty pool that a live filler is refilling before Fetch looks again
	// whether some filler can still fill: a chunk pushed meanwhile is
	// taken at once. It is also about the longest Fetch takes to notice
	// that its context was cancelled (go-redis honours deadlines, not
	// cancellation). It is capped at half the client's ReadTimeout.
	// Default 500 ms.
	PollInterval time.Duration
	// Key is the pool key (see FillerConfig.Key). Default: $QRNG_POOL_KEY,
	// else the contents of the file named by $QRNG_POOL_KEY_FILE. With a
	// key, Fetch serves only chunks whose MAC it checks, and erases any
	// other element it pops (ConsumerStats.Foreign), logging the first;
	// without one, it serves unauthenticated chunks and fails, erasing
	// them, on chunks that carry a MAC (the pool has a key: give it).
	Key []byte
	// Logger receives the one warning about foreign elements and the one
	// notice that the old default prefix is in use. Default
	// slog.Default().
	Logger *slog.Logger
	// Replicas is how many replicas must acknowledge each pop (Redis
	// WAIT, in the pop's pipeline, up to ReplicaTimeout) before its chunks
	// are served; chunks whose pop fewer replicas acknowledged are erased
	// unserved (ConsumerStats.Unreplicated) and Fetch fails, naming the
	// count. Default 0: no wait, for a Redis without replicas (where it
	// would cost a command per pop and give nothing). The generation seal
	// (see the package documentation, "Restarts and failovers") already
	// keeps a promoted replica from serving chunks popped from the old
	// primary; Replicas adds that a failover loses no pop that a consumer
	// served. It needs a *redis.Client (one node, or Sentinel's failover
	// client): WAIT has no key to route it on a cluster.
	Replicas int
	// ReplicaTimeout bounds each WAIT. Default 100 ms.
	ReplicaTimeout time.Duration
}

// ConsumerStats is a snapshot of a Consumer's counters.
type ConsumerStats struct {
	Chunks    int64 // chunks popped
	Bytes     int64 // bytes returned by Fetch
	Discarded int64 // bytes popped that did not fit in Fetch's buffer, erased unserved
	Waits     int64 // Fetch calls that found the pool empty and waited for a filler
	Stale     int64 // chunks popped and erased unserved: of an older generation (pushed before Redis restarted or failed over), or of none known
	Foreign   int64 // elements popped and erased unserved: not chunks sealed by a filler (pushed by something else)
	// Unreplicated counts chunks popped and erased unserved because fewer
	// than ConsumerConfig.Replicas replicas acknowledged their pop.
	Unreplicated int64
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
	want int           // ConsumerConfig.ChunkSize; 0: the pool's
	poll time.Duration // the longest BLMPOP wait

	key         []byte // the pool key; nil: none
	log         *slog.Logger
	warned      atomic.Bool   // the foreign elements were logged
	replicas    int           // ConsumerConfig.Replicas
	replicaWait time.Duration // ConsumerConfig.ReplicaTimeout

	size       atomic.Int64 // the pool's chunk size once known; 0 until then
	metaDenied atomic.Bool  // the pool's settings may not be read: learn from chunks

	auto    bool        // no Prefix given: the first call picks it (choosePrefix)
	readyMu sync.Mutex  // guards the writes of ready
	isReady atomic.Bool // the server was checked and keys chosen; keys is not written after

	afterTake func(popped []string) // test seam: the popped strings, after wiping
	beforeWhy func()                // test seam: between a pop that found nothing and reading why

	chunks, bytes, discarded, waits, stale, foreign, unreplicated atomic.Int64
}

var _ qrng.Upstream = (*Consumer)(nil)

// NewConsumer returns a Consumer for cfg. It does not contact Redis.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	c := &Consumer{
		rdb:  cfg.Redis,
		keys: newKeys(cfg.Prefix),
		want: cfg.ChunkSize,
		poll: orDefault(cfg.PollInterval, 500*time.Millisecond),
		auto: cfg.Prefix == "",

		log:         cfg.Logger,
		replicas:    cfg.Replicas,
		replicaWait: orDefault(cfg.ReplicaTimeout, 100*time.Millisecond),
	}
	if cfg.Redis != nil {
		if rt := readTimeout(cfg.Redis); rt > 0 {
			c.poll = max(time.Millisecond, min(c.poll, rt/2))
		}
	}
	switch {
	case cfg.Redis == nil:
		return nil, errors.New("redispool: ConsumerConfig.Redis is nil")
	case checkContextTimeouts("ConsumerConfig.Redis", cfg.Redis) != nil:
		return nil, checkContextTimeouts("ConsumerConfig.Redis", cfg.Redis)
	case c.want != 0 && (c.want < MinChunkSize || c.want > MaxChunkSize):
		return nil, fmt.Errorf("redispool: ConsumerConfig.ChunkSize %d outside %d..%d", c.want, MinChunkSize, MaxChunkSize)
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("redispool: ConsumerConfig.PollInterval %s is negative", cfg.PollInterval)
	case cfg.Replicas < 0:
		return nil, fmt.Errorf("redispool: ConsumerConfig.Replicas %d is negative", cfg.Replicas)
	case cfg.ReplicaTimeout < 0:
		return nil, fmt.Errorf("redispool: ConsumerConfig.ReplicaTimeout %s is negative", cfg.ReplicaTimeout)
	case cfg.Replicas > 0 && !isClient(cfg.Redis):
		return nil, fmt.Errorf("redispool: ConsumerConfig.Replicas needs a *redis.Client (one node, or Sentinel's failover client), not a %T: "+
			"WAIT has no key by which a cluster client could route it to the node of the pop", cfg.Redis)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	key, err := poolKey("ConsumerConfig.Key", cfg.Key)
	if err != nil {
		return nil, err
	}
	c.key = key
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
// for the refill until ctx ends (then it returns ctx.Err()), blocked in
// BLMPOP (see ConsumerConfig.PollInterval), so that a waiting consumer
// costs Redis about two commands per PollInterval. When the pool is
// empty and no filler is running, it returns ErrPoolEmpty at once; when
// the fillers are stopped by the monthly quota or by today's share of
// it, an error matching qrng.ErrQuotaExceeded (and, for the day's share,
// ErrDailyShareSpent) that says when it renews; when they run but have
// failed to fill for a heartbeat TTL, an error matching ErrNotFilling
// that gives their last error. It reports any of these only after a last
// pop finds the pool still empty. Redis failures are returned as errors
// starting "redispool:"; the Redis client reconnects by itself, so Fetch
// works again once Redis is back.
//
// Every Redis call has a deadline: ctx's, or callTimeout (a blocking pop:
// its wait and callTimeout), whichever is sooner, so Fetch returns
// within ctx even on a hung Redis. A call that runs out of its own time
// is tried again, with ctx; after hungCalls in a row Fetch fails with an
// error that says Redis does not answer. (A pop whose answer came too
// late may have taken chunks from the pool: they are lost, never served.)
//
// The popped chunks are erased from the client's memory once copied: the
// strings go-redis made from the reply, each over a buffer of its own, are
// overwritten with zeros. Redis frees its own copy when it pops a chunk;
// it does not erase it.
func (c *Consumer) Fetch(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, errors.New("redispool: Fetch needs a non-empty buffer")
	}
	for hung := 0; !c.isReady.Load(); {
		// The server's check and the prefix's choice, once: each try
		// bounded by callTimeout, as every call of Fetch is.
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := c.ready(rctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !c.hung(ctx, &err, &hung) {
			return 0, err
		}
	}
	waited := false
	var wait time.Duration // 0: pop without blocking
	hung := 0
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, popped, err := c.pop(ctx, p, wait)
		if c.hung(ctx, &err, &hung) {
			continue
		}
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
		if c.hung(ctx, &err, &hung) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if why != nil {
			// Chunks pushed just before the reason was written are there
			// now: the reason is true only if the pool is still empty.
			if n, _, err := c.pop(ctx, p, 0); err != nil || n > 0 {
				return n, err
			}
			return 0, why
		}
		if !waited {
			waited = true
			c.waits.Add(1)
		}
		wait = c.poll
		if d, ok := ctx.Deadline(); ok {
			wait = max(time.Millisecond, min(wait, time.Until(d)))
		}
	}
}

const (
	// callTimeout bounds each Redis call of Fetch (beyond a blocking
	// pop's wait) when ctx allows longer.
	callTimeout = 500 * time.Millisecond
	// hungCalls is how many calls in a row may run out of callTimeout
	// before Fetch reports that Redis does not answer.
	hungCalls = 4
)

// hung reports whether *err is a call that ran out of its own time while
// ctx goes on, to be tried again, counting it in *n; the hungCalls-th in a
// row it turns into the error Fetch returns (and reports false). Any
// other outcome resets *n.
func (c *Consumer) hung(ctx context.Context, err *error, n *int) bool {
	if *err == nil || ctx.Err() != nil || !isTimeout(*err) {
		*n = 0
		return false
	}
	*n++
	if *n < hungCalls {
		return true
	}
	*err = fmt.Errorf("%w (Redis did not answer %d calls in a row, within %s each)", *err, *n, callTimeout)
	return false
}

// isTimeout reports whether err is a deadline that expired.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// readTimeout is the client's ReadTimeout, where its type tells it.
func readTimeout(rdb Redis) time.Duration {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ReadTimeout
	case *redis.ClusterClient:
		return c.Options().ReadTimeout
	case *redis.Ring:
		return c.Options().ReadTimeout
	}
	return 0
}

// whyEmpty tells why the pool is empty: nil while a filler can fill (the
// liveness key is set: wait), else the quota or the day's share (the quota
// key says which, and when it renews), else the fillers' failure to fill
// (the failing key says since when, and their last error), else
// ErrPoolEmpty.
func (c *Consumer) whyEmpty(parent context.Context) (error, error) {
	ctx, cancel := context.WithTimeout(parent, callTimeout)
	defer cancel()
	_, err := c.rdb.Get(ctx, c.keys.alive).Result()
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, redis.Nil):
		return nil, c.failed(parent, "read", c.keys.alive, err)
	}
	v, err := c.rdb.Get(ctx, c.keys.spent).Result()
	switch {
	case err == nil:
		if e, ok := parseSpent(v); ok {
			return e, nil
		}
	case !errors.Is(err, redis.Nil):
		return nil, c.failed(parent, "read", c.keys.spent, err)
	}
	v, err = c.rdb.Get(ctx, c.keys.failing).Result()
	switch {
	case err == nil:
		if e, ok := parseFailing(v); ok {
			return e, nil
		}
	case !errors.Is(err, redis.Nil):
		return nil, c.failed(parent, "read", c.keys.failing, err)
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
		Discarded: c.discarded.Load(), Waits: c.waits.Load(), Stale: c.stale.Load(), Foreign: c.foreign.Load(),
		Unreplicated: c.unreplicated.Load()}
}

// isClient reports whether rdb is a *redis.Client.
func isClient(rdb Redis) bool {
	_, ok := rdb.(*redis.Client)
	return ok
}
