package redispool

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/redis/go-redis/v9"
)

// The pool's benchmarks beside their baseline, the emulator reached
// directly through a qrng.Client, so that one run gives the ratio:
//
//	go test -run '^$' -bench . ./redispool
//
// Sizes: a Fetch of 12 default chunks (192 KiB, about one default Source
// batch of 200,000 bytes) against a request for the same bytes (98,304
// 16-bit values); a first Fetch of one chunk on a new connection against a
// new Client's first request for the same 16 KiB.

const benchChunks = 12

// fillForBench pushes n sealed chunks of random bytes (the same ones: the
// benchmark measures transport, not uniqueness) and records the chunk
// size in the pool's settings, as a filler does (a consumer that does not
// know it learns it from one chunk first).
func fillForBench(b *testing.B, rdb *redis.Client, n int) {
	b.Helper()
	if err := rdb.HSet(context.Background(), "bench:meta", "chunk_size", DefaultChunkSize).Err(); err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, DefaultChunkSize)
	rand.Read(raw)
	chunk := sealedChunk(b, rdb, newKeys("bench"), raw) // as a filler seals it, with the server's generation
	args := make([]any, 0, 256)
	for n > 0 {
		args = args[:0]
		for range min(n, cap(args)) {
			args = append(args, chunk)
		}
		if err := rdb.RPush(context.Background(), "bench:pool", args...).Err(); err != nil {
			b.Fatal(err)
		}
		n -= len(args)
	}
}

// BenchmarkConsumerFetch: bytes per second from a local Redis (unix
// socket) into a Source-sized buffer.
func BenchmarkConsumerFetch(b *testing.B) {
	rs := startRedis(b)
	rdb := rs.client(b, "", "")
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	p := make([]byte, benchChunks*DefaultChunkSize)
	ctx := context.Background()
	fillForBench(b, rdb, 64*benchChunks)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := c.Fetch(ctx, p)
		if errors.Is(err, ErrPoolEmpty) {
			b.StopTimer()
			fillForBench(b, rdb, 64*benchChunks)
			b.StartTimer()
			n, err = c.Fetch(ctx, p)
		}
		if err != nil || n != len(p) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkConsumerFirstFetch: a new connection and its first chunk from
// a warm pool, as a new process would get it.
func BenchmarkConsumerFirstFetch(b *testing.B) {
	rs := startRedis(b)
	admin := rs.client(b, "", "")
	fillForBench(b, admin, 256)
	p := make([]byte, DefaultChunkSize)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: rs.sock, ContextTimeoutEnabled: true})
		c, _ := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "bench"})
		n, err := c.Fetch(ctx, p)
		rdb.Close()
		if errors.Is(err, ErrPoolEmpty) {
			b.StopTimer()
			fillForBench(b, admin, 256)
			b.StartTimer()
			continue
		}
		if err != nil || n != len(p) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkEmulatorDirect is the baseline for BenchmarkConsumerFetch: the
// same bytes fetched from the emulator over loopback HTTP and packed.
func BenchmarkEmulatorDirect(b *testing.B) {
	srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: -1})
	defer srv.Close()
	client, err := qrng.NewClient(qrng.ClientConfig{Token: srv.Token, BaseURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	const n = benchChunks * DefaultChunkSize * 8 / 16
	buf := make([]byte, 0, benchChunks*DefaultChunkSize)
	ctx := context.Background()
	b.SetBytes(benchChunks * DefaultChunkSize)
	b.ReportAllocs()
	for b.Loop() {
		vals, err := client.RandomNumbers(ctx, n, 16)
		if err != nil {
			b.Fatal(err)
		}
		p := bitpack.New(16, buf[:0])
		for _, v := range vals {
			p.Add(v)
		}
		clear(vals)
		clear(p.Bytes())
	}
}

// BenchmarkEmulatorFirstFetch is the baseline for
// BenchmarkConsumerFirstFetch: a new Client (token exchange, new
// connection) and its first request for one chunk's bytes.
func BenchmarkEmulatorFirstFetch(b *testing.B) {
	srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: -1})
	defer srv.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		client, err := qrng.NewClient(qrng.ClientConfig{Token: srv.Token, BaseURL: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		vals, err := client.RandomNumbers(ctx, DefaultChunkSize*8/16, 16)
		if err != nil {
			b.Fatal(err)
		}
		clear(vals)
	}
}
