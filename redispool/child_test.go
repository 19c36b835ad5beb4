package redispool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/redis/go-redis/v9"
)

// Some tests re-execute the test binary as a child process: a consumer
// (one more process popping from the pool) or a filler (to be killed).
// TestMain sends such a process here.

const childEnv = "REDISPOOL_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode)) // the test binary re-executed as a consumer or filler
	}
	os.Exit(m.Run())
}

// startChild starts the test binary as a child in the given mode.
func startChild(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + mode}, env...)...)
	return cmd
}

func runChild(mode string) int {
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: os.Getenv("REDISPOOL_SOCK"), ContextTimeoutEnabled: true})
	defer rdb.Close()
	prefix := os.Getenv("REDISPOOL_PREFIX")
	switch mode {
	case "consumer":
		return childConsumer(rdb, prefix)
	case "filler":
		return childFiller(rdb, prefix)
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

// childConsumer writes what it fetches to stdout, with buffers of varied
// sizes, until the pool is empty for good (quota spent or no filler).
func childConsumer(rdb *redis.Client, prefix string) int {
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: prefix, ChunkSize: testChunk, PollInterval: 10 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	sizes := []int{testChunk, 3 * testChunk, 5 * testChunk / 2, 7 * testChunk}
	p := make([]byte, 7*testChunk)
	for i := 0; ; i++ {
		n, err := c.Fetch(ctx, p[:sizes[i%len(sizes)]])
		w.Write(p[:n])
		if err != nil {
			if errors.Is(err, qrng.ErrQuotaExceeded) || errors.Is(err, ErrPoolEmpty) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "consumer:", err)
			return 3
		}
	}
}

// childFiller fills the pool until it is killed.
func childFiller(rdb *redis.Client, prefix string) int {
	batch, _ := strconv.Atoi(os.Getenv("REDISPOOL_BATCH"))
	chunk, _ := strconv.Atoi(os.Getenv("REDISPOOL_CHUNK"))
	f, err := NewFiller(FillerConfig{Redis: rdb, Prefix: prefix,
		Token: os.Getenv("REDISPOOL_TOKEN"), BaseURL: os.Getenv("REDISPOOL_URL"),
		Bits: testBits, BatchSize: batch, ChunkSize: chunk, Target: 1 << 30, Workers: 3, QuotaBits: -1,
		HeartbeatTTL: time.Second, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := f.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "filler:", err)
		return 3
	}
	return 0
}
