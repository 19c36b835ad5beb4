package qrng

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock shared by a client and an emulator.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sleepLog records the pauses a client asked for instead of sleeping.
type sleepLog struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleepLog) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepLog) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

// newTestClient returns a client for srv that records its pauses instead of
// sleeping and draws the largest jitter (so backoff bounds are visible).
func newTestClient(t *testing.T, srv *qrngtest.Server, cfg ClientConfig) (*Client, *sleepLog) {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = srv.URL
	}
	if cfg.Token == "" {
		cfg.Token = srv.Token
	}
	c, err := NewClient(cfg)
	require.NoError(t, err)
	sl := &sleepLog{}
	c.sleep = sl.sleep
	c.jitter = func(n int64) int64 { return n - 1 }
	return c, sl
}

func newServer(t *testing.T, opts qrngtest.Options) *qrngtest.Server {
	t.Helper()
	srv := qrngtest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
