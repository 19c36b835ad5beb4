package qrng

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 18, item 21: a test can make retries fast from Config. The
// Client's pauses between attempts are capped by MaxBackoff, and the
// Source's pause after a failed batch starts at RetryPause (1 s, and
// pauses drawn up to 200 ms, 400 ms, 800 ms and 1.6 s, by default).
func TestFastRetriesFromConfig(t *testing.T) {
	for _, c := range []struct {
		name     string
		cfg      Config
		backoff  time.Duration // the longest pause the Client may draw here
		pause    time.Duration // the Source's pause after the first failed batch
		attempts int
	}{
		{"defaults", Config{}, 1600 * time.Millisecond, time.Second, 5},
		{"fast", Config{MaxBackoff: time.Millisecond, RetryPause: 2 * time.Millisecond}, time.Millisecond, 2 * time.Millisecond, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock()
			srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 24 * time.Hour})
			srv.Inject(qrngtest.Fault{Status: 503, Times: -1})
			cfg := c.cfg
			cfg.Token, cfg.BaseURL, cfg.Workers, cfg.Fallback, cfg.Logger = srv.Token, srv.URL, 1, FallbackNever, discardLogger()
			src := NewSource(cfg)
			t.Cleanup(func() { src.Close() })
			src.now = clk.Now
			var mu sync.Mutex
			var slept []time.Duration
			src.client.sleep = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				slept = append(slept, d)
				mu.Unlock()
				return ctx.Err()
			}
			src.client.jitter = func(n int64) int64 { return n - 1 } // the longest pause each time
			_, err := src.Read(make([]byte, 8))
			require.ErrorIs(t, err, ErrServer)
			assert.Equal(t, c.attempts, srv.Counters().RandomRequests, "the first attempt and four retries")
			mu.Lock()
			require.Len(t, slept, c.attempts-1)
			for _, d := range slept {
				assert.LessOrEqual(t, d, c.backoff)
			}
			assert.Equal(t, c.backoff, slept[len(slept)-1], "the last pause is the window's top")
			mu.Unlock()
			src.mu.Lock()
			assert.Equal(t, c.pause, src.retryAt.Sub(clk.Now()), "the Source's pause")
			src.mu.Unlock()
		})
	}
}

// Issue 18, item 22: Validate reports what NewSource would panic with, so
// a configuration from outside the program can be checked without a
// panic; a usable configuration is nil.
func TestValidateReportsWhatNewSourcePanicsWith(t *testing.T) {
	for _, cfg := range []Config{
		{Bits: 65}, {BatchSize: -1}, {Workers: -1}, {BufferSize: -2}, {Fallback: 9},
		{WaitTimeout: -1}, {AttemptTimeout: -time.Second}, {MaxBackoff: -time.Millisecond}, {RetryPause: -1},
		{BaseURL: "ftp://example.com"},
	} {
		err := cfg.Validate()
		require.Error(t, err, "%+v", cfg)
		assert.Regexp(t, `^qrng: Config\.[A-Za-z]+[ :]`, err.Error())
		assert.PanicsWithValue(t, err.Error(), func() { NewSource(cfg) })
	}
	for _, cfg := range []Config{{}, {Bits: 64, BatchSize: MaxSamples, Workers: 8, RetryPause: time.Millisecond},
		{Upstream: &scriptUpstream{}, BaseURL: "not even a URL"}} {
		assert.NoError(t, cfg.Validate())
	}
}
