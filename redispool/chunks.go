package redispool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// What a Consumer pops: whole chunks of the pool's size, learnt from the
// pool's settings or from the first chunk, copied out and erased.

// ChunkSize returns the size of the pool's chunks: the one its first
// filler recorded in the pool's settings, else the size of the chunks
// this Consumer popped; 0 while neither is known (no filler has run, or
// the consumer may not read the settings and has popped nothing yet). It
// fails if the pool's size differs from ConsumerConfig.ChunkSize, or if
// Redis fails.
func (c *Consumer) ChunkSize(ctx context.Context) (int, error) {
	if err := c.ready(ctx); err != nil {
		return 0, err
	}
	if c.size.Load() == 0 && !c.metaDenied.Load() {
		v, err := c.rdb.HGet(ctx, c.keys.meta, "chunk_size").Result()
		switch {
		case err == nil:
			if n, err := strconv.Atoi(v); err == nil && n >= MinChunkSize && n <= MaxChunkSize {
				c.size.CompareAndSwap(0, int64(n))
			}
		case errors.Is(err, redis.Nil): // no filler has run: the first chunk will tell
		case strings.Contains(err.Error(), "NOPERM"):
			c.metaDenied.Store(true)
		default:
			return 0, c.failed(ctx, "read", c.keys.meta, err)
		}
	}
	return c.checkSize(int(c.size.Load()))
}

// FetchUnit is the pool's chunk size as far as this Consumer knows it
// (ConsumerConfig.ChunkSize, or what the pool's settings or a popped
// chunk said), 0 before that; it never calls Redis. A qrng.Source asks
// it before each request, so that it asks for whole chunks and none is
// cut and its rest erased.
func (c *Consumer) FetchUnit() int {
	if n := c.size.Load(); n > 0 {
		return int(n)
	}
	return c.want
}

// checkSize returns size, or an error if it is known and differs from
// ConsumerConfig.ChunkSize.
func (c *Consumer) checkSize(size int) (int, error) {
	if size > 0 && c.want != 0 && size != c.want {
		return 0, fmt.Errorf("redispool: ConsumerConfig.ChunkSize %d differs from the pool's chunk size %d (chunk_size in %s): "+
			"leave ChunkSize zero to use the pool's", c.want, size, c.keys.meta)
	}
	return size, nil
}

// pop pops the chunks that fit in p (one while their size is unknown) and
// copies them into p. popped reports whether the pool had any. With wait
// > 0 it blocks (BLMPOP) up to wait for a chunk, else it does not (LMPOP).
// Each call has a deadline of callTimeout (and wait), or ctx's if sooner.
func (c *Consumer) pop(parent context.Context, p []byte, wait time.Duration) (n int, popped bool, err error) {
	ctx, cancel := context.WithTimeout(parent, callTimeout+wait)
	defer cancel()
	size := c.FetchUnit() // a blocking pop follows a non-blocking one, which asked
	if wait == 0 {
		var err error
		if size, err = c.ChunkSize(ctx); err != nil {
			if parent.Err() != nil {
				return 0, false, parent.Err()
			}
			return 0, false, err
		}
	}
	count := 1
	if size > 0 {
		count = max(1, len(p)/size)
	}
	// The server's generation, read after the pop: in the same pipeline
	// for LMPOP; after BLMPOP only when it popped something, so that a
	// waiting consumer sends one command per wait. Either way a check
	// that finds the chunks' generation was made in their server's life,
	// and so was the pop before it (see seal.go).
	var cmd *redis.KeyValuesCmd
	var genCmd *redis.Cmd
	var waitCmd *redis.IntCmd
	switch {
	case c.replicas > 0:
		// WAIT must follow the pop on its connection: one pipeline.
		ctx, cancel = context.WithTimeout(parent, callTimeout+wait+c.replicaWait)
		defer cancel()
		pipe := c.rdb.Pipeline()
		if wait > 0 {
			cmd = blockingPop(ctx, pipe, wait, int64(count), c.keys.pool)
		} else {
			cmd = pipe.LMPop(ctx, "left", int64(count), c.keys.pool)
		}
		waitCmd = redis.NewIntCmd(ctx, "wait", c.replicas, max(1, c.replicaWait.Milliseconds())) // 0 would wait for ever
		_ = pipe.Process(ctx, waitCmd)
		genCmd = pipe.Eval(ctx, genSource, []string{c.keys.pool})
		_, _ = pipe.Exec(ctx)
	case wait > 0:
		cmd = blockingPop(ctx, c.rdb, wait, int64(count), c.keys.pool)
	default:
		pipe := c.rdb.Pipeline()
		cmd = pipe.LMPop(ctx, "left", int64(count), c.keys.pool)
		genCmd = pipe.Eval(ctx, genSource, []string{c.keys.pool})
		_, _ = pipe.Exec(ctx)
	}
	_, vals, err := cmd.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, false, nil
	case err != nil:
		return 0, false, c.failed(parent, "pop from", c.keys.pool, err)
	}
	if waitCmd != nil {
		if acked, err := waitCmd.Result(); err != nil || acked < int64(c.replicas) {
			k := len(vals)
			c.drop(vals, &c.unreplicated)
			if err != nil {
				return 0, true, c.failed(parent, "wait for the replicas of", c.keys.pool, err)
			}
			return 0, true, fmt.Errorf("redispool: a pop from %s reached %d of %d replicas within %s (ConsumerConfig.ReplicaTimeout): "+
				"its %d chunks were erased unserved", c.keys.pool, acked, c.replicas, c.replicaWait, k)
		}
	}
	if genCmd == nil {
		genCmd = c.rdb.Eval(ctx, genSource, []string{c.keys.pool})
	}
	gs, err := genCmd.Text()
	gen, ok := genFromHex(gs)
	if err != nil || !ok {
		c.drop(vals, &c.stale) // popped, but not known to be of this server's life
		if err == nil {
			err = fmt.Errorf("Redis's INFO shows no run_id or master_replid (%q)", gs)
		}
		return 0, true, c.failed(parent, "read the generation of", c.keys.pool, err)
	}
	// Open every element; keep those of this generation, in order.
	var m *macer
	if c.key != nil {
		m = newMacer(c.keys.prefix, c.key)
	}
	keep := vals[:0]
	needsKey := 0
	for _, v := range vals {
		off, verdict := open(v, gen, m)
		switch verdict {
		case sealStale:
			c.stale.Add(1)
		case sealBad:
			c.foreign.Add(1)
			if !c.warned.Swap(true) {
				c.log.Warn("redispool: erased, unserved, an element of the pool that is not a chunk sealed by its fillers"+
					" (pushed by something else, or sealed under another key); this warning is not repeated; ConsumerStats.Foreign counts them",
					"pool", c.keys.pool, "authenticated", m != nil)
			}
		case sealNeedsKey:
			needsKey++
			c.foreign.Add(1)
		default:
			keep = append(keep, v[off:])
			continue
		}
		wipe(v)
	}
	clear(vals[len(keep):])
	if needsKey > 0 {
		c.take(p[:0], keep)
		return 0, true, fmt.Errorf("redispool: the chunks of %s carry a MAC and ConsumerConfig.Key is not set: "+
			"give the consumer the pool key ($%s or $%s); %d popped chunks were erased unserved", c.keys.pool, EnvPoolKey, EnvPoolKeyFile, len(vals))
	}
	vals = keep
	if len(vals) == 0 {
		return 0, true, nil
	}
	if got := len(vals[0]); got != size && got >= MinChunkSize {
		// The first chunk tells the size (or that the pool's changed).
		c.size.Store(int64(got))
		if _, err := c.checkSize(got); err != nil {
			c.take(p[:0], vals) // erased, counted as discarded
			return 0, true, err
		}
	}
	return c.take(p, vals), true, nil
}

// drop erases popped elements unserved, counting them in n.
func (c *Consumer) drop(vals []string, n *atomic.Int64) {
	for i, v := range vals {
		wipe(v)
		vals[i] = ""
	}
	n.Add(int64(len(vals)))
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

// blockingPop is BLMPOP with a timeout in fractions of a second (Redis 6
// and later read it as a double; go-redis's BLMPop rounds it to whole
// seconds).
func blockingPop(ctx context.Context, rdb interface {
	Process(context.Context, redis.Cmder) error
}, wait time.Duration, count int64, key string) *redis.KeyValuesCmd {
	secs := strconv.FormatFloat(max(wait, time.Millisecond).Seconds(), 'f', 3, 64)
	cmd := redis.NewKeyValuesCmd(ctx, "blmpop", secs, 1, key, "left", "count", count)
	cmd.SetFirstKeyPos(3)
	_ = rdb.Process(ctx, cmd)
	return cmd
}
