package redispool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
// copies them into p. popped reports whether the pool had any.
func (c *Consumer) pop(ctx context.Context, p []byte) (n int, popped bool, err error) {
	size, err := c.ChunkSize(ctx)
	if err != nil {
		return 0, false, err
	}
	count := 1
	if size > 0 {
		count = max(1, len(p)/size)
	}
	_, vals, err := c.rdb.LMPop(ctx, "left", int64(count), c.keys.pool).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, false, nil
	case err != nil:
		return 0, false, c.failed(ctx, "pop from", c.keys.pool, err)
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
