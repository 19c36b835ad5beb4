package redispool_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/qrng-go/qrng/redispool"
	"github.com/redis/go-redis/v9"
)

// A filler, in one process: it holds the API token ($QCI_TOKEN) and keeps
// the pool topped up until SIGINT or SIGTERM.
func ExampleFiller() {
	opts, err := redis.ParseURL("rediss://qrng-filler:FILLER-PASSWORD@redis.internal:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true // every call honours its context
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	f, err := redispool.NewFiller(redispool.FillerConfig{Redis: rdb, Target: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// A consumer, in any number of processes, with no token. A Source takes
// it as its upstream (qrng.Config.Upstream) and health-checks, mixes and
// erases as it does for the service; here it is called directly.
func ExampleConsumer() {
	opts, err := redis.ParseURL("rediss://qrng-consumer:CONSUMER-PASSWORD@redis.internal:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true // every call honours its context
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	c, err := redispool.NewConsumer(redispool.ConsumerConfig{Redis: rdb})
	if err != nil {
		log.Fatal(err)
	}
	p := make([]byte, 4*redispool.DefaultChunkSize)
	n, err := c.Fetch(context.Background(), p)
	if err != nil {
		log.Fatal(err) // redispool.ErrPoolEmpty: no filler is running
	}
	fmt.Println(n, "bytes from the pool")
	clear(p)
}

// The pool's state, as an operator would check it.
func ExampleReadStatus() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	st, err := redispool.ReadStatus(context.Background(), rdb, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pooled: %d bytes in %d chunks\n", st.Bytes, st.Chunks)
	fmt.Printf("quota %s: %d of %d bits\n", st.Month, st.QuotaUsed, st.QuotaLimit)
	for _, f := range st.Fillers {
		fmt.Printf("filler %s (%s), heartbeat %s\n", f.ID, f.Info, f.TTL)
	}
}
