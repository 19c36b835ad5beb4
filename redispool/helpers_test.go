package redispool

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/require"
)

func newEmulator(t testing.TB) *qrngtest.Server {
	srv := qrngtest.NewServer(qrngtest.Options{Record: true, QuotaBits: -1})
	t.Cleanup(srv.Close)
	return srv
}

// patience is how long a test waits for what must happen: a guard against
// a hang, not a claim about speed (a loaded machine may be very slow).
const patience = 2 * time.Minute

// Small sizes for tests: 1 KiB chunks, 8 chunks (4096 16-bit values) a batch.
const (
	testChunk = 1024
	testBatch = 4096
	testBits  = 16
)

// testFillerConfig is a quick filler configuration for srv and rdb.
func testFillerConfig(srv *qrngtest.Server, rdb Redis, prefix string) FillerConfig {
	return FillerConfig{
		Redis: rdb, Prefix: prefix, Token: srv.Token, BaseURL: srv.URL,
		Bits: testBits, BatchSize: testBatch, ChunkSize: testChunk,
		Target: 4 * testBits * testBatch / 8, Workers: 2, DailyBits: -1, // tests of the daily share set it

		HeartbeatTTL: time.Second, PollInterval: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
}

func newTestFiller(t testing.TB, cfg FillerConfig) *Filler {
	t.Helper()
	f, err := NewFiller(cfg)
	require.NoError(t, err)
	f.baseBackoff = 10 * time.Millisecond
	return f
}

// runFiller runs f in the background and returns once its first
// heartbeat is in Redis (or Run has returned); stop cancels it and
// returns Run's error.
func runFiller(t testing.TB, f *Filler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(20 * time.Second)
	for f.rdb.Exists(ctx, f.keys.alive).Val() == 0 {
		select {
		case err = <-done:
			once.Do(func() {})
			t.Fatalf("filler stopped before its first heartbeat: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat from the filler")
		}
		time.Sleep(time.Millisecond)
	}
	return stop
}

// idle reports whether f has no top-up under way.
func idle(f *Filler) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.filling && f.inflight == 0
}

func newTestConsumer(t testing.TB, rdb Redis, prefix string) *Consumer {
	t.Helper()
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: prefix, ChunkSize: testChunk, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	return c
}

// newTestConsumerChunk is newTestConsumer with ConsumerConfig.ChunkSize
// chunk (0: the pool's).
func newTestConsumerChunk(t testing.TB, rdb Redis, prefix string, chunk int) *Consumer {
	t.Helper()
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: prefix, ChunkSize: chunk, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	return c
}

// settled reports whether f has no batch in flight.
func settled(f *Filler) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inflight == 0
}

// chunkPos is where a chunk sits in the batches the emulator served.
type chunkPos struct{ batch, index int }

// chunkIndex cuts every batch the emulator served intact, packed as a
// filler packs it, into chunks, and maps each chunk to its place.
func chunkIndex(t testing.TB, srv *qrngtest.Server, bits, chunk int) map[string]chunkPos {
	t.Helper()
	idx := map[string]chunkPos{}
	for i, vals := range srv.Batches() {
		p := bitpack.New(bits, nil)
		for _, v := range vals {
			p.Add(v)
		}
		b := p.Bytes()
		require.Zero(t, p.Pending())
		for j := 0; j+chunk <= len(b); j += chunk {
			idx[string(b[j:j+chunk])] = chunkPos{batch: i, index: j / chunk}
		}
	}
	return idx
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)

// serverGen is the generation of the server rdb talks to.
func serverGen(t testing.TB, rdb Redis, k keys) generation {
	t.Helper()
	s, err := genScript.Run(context.Background(), rdb, []string{k.pool}).Text()
	require.NoError(t, err)
	g, ok := genFromHex(s)
	require.True(t, ok, "generation %q", s)
	return g
}

// sealedChunk is chunk as a filler pushes it to the server rdb talks to.
func sealedChunk(t testing.TB, rdb Redis, k keys, chunk []byte) []byte {
	t.Helper()
	b := make([]byte, sealedLen+len(chunk))
	seal(b, serverGen(t, rdb, k), chunk, nil)
	return b
}

// unseal is the chunk in a pool's element, failing the test if the
// element is not a sealed chunk.
func unseal(t testing.TB, v string) string {
	t.Helper()
	require.Greater(t, len(v), sealedLen, "a sealed chunk")
	require.Equal(t, byte(formatPlain), v[0], "a sealed chunk")
	return v[sealedLen:]
}
