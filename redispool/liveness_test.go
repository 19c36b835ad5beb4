package redispool

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 17, item 3: every Redis call honours its context, a filler that
// cannot fill says so, and waiting consumers block instead of polling.

// A go-redis client that ignores deadlines is refused, naming the option.
func TestClientWithoutContextTimeoutsRefused(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: "/nonexistent"})
	t.Cleanup(func() { rdb.Close() })
	_, err := NewConsumer(ConsumerConfig{Redis: rdb})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redispool: ConsumerConfig.Redis has ContextTimeoutEnabled off")
	srv := newEmulator(t)
	_, err = NewFiller(testFillerConfig(srv, rdb, "x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redispool: FillerConfig.Redis has ContextTimeoutEnabled off")
}

// stopped SIGSTOPs the server until the test ends (or cont is called).
func (s *redisServer) stopped(t *testing.T) (cont func()) {
	proc := s.cmd.Process
	require.NoError(t, proc.Signal(syscall.SIGSTOP))
	var once sync.Once
	cont = func() { once.Do(func() { proc.Signal(syscall.SIGCONT) }) }
	t.Cleanup(cont)
	return cont
}

// hungClient is a client whose own timeouts are far longer than any
// context of the tests: only the contexts can end its calls.
func (s *redisServer) hungClient(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock, ContextTimeoutEnabled: true,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	t.Cleanup(func() { c.Close() })
	return c
}

// On a SIGSTOPped redis-server, Fetch returns with its context's end,
// whatever the client's timeouts, and with no context deadline it fails
// after hungCalls calls of callTimeout, saying Redis does not answer.
func TestFetchOnHungRedis(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.hungClient(t)
	c := newTestConsumer(t, rdb, "hung")
	require.NoError(t, rdb.Ping(context.Background()).Err()) // connected before the stop
	rs.stopped(t)

	const wait = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	_, err := c.Fetch(ctx, make([]byte, testChunk))
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	// The client's own timeouts are a minute: a return well before it
	// can only come from the context.
	assert.Less(t, took, wait+20*time.Second, "Fetch held %s with a %s context", took, wait)

	start = time.Now()
	_, err = c.Fetch(context.Background(), make([]byte, testChunk))
	took = time.Since(start)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("(Redis did not answer %d calls in a row, within %s each)", hungCalls, callTimeout))
	assert.Less(t, took, hungCalls*callTimeout+20*time.Second)
}

// poolUpstream passes Fetch to a Consumer, announcing each call.
type poolUpstream struct {
	*Consumer
	entered chan struct{}
}

func (u poolUpstream) Fetch(ctx context.Context, p []byte) (int, error) {
	select {
	case u.entered <- struct{}{}:
	default:
	}
	return u.Consumer.Fetch(ctx, p)
}

// A Source whose Consumer is stuck on a SIGSTOPped redis-server closes
// within a second: its Fetch sees the cancelled context after one call
// of at most PollInterval + callTimeout, not after the client's timeouts
// (a minute here), and Close, which gives up after 5 s with an error,
// returns nil.
func TestSourceCloseOnHungRedis(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.hungClient(t)
	require.NoError(t, rdb.Ping(context.Background()).Err())
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "close", ChunkSize: testChunk})
	require.NoError(t, err)
	up := poolUpstream{Consumer: c, entered: make(chan struct{}, 1)}
	src := qrng.NewSource(qrng.Config{Upstream: up, Bits: testBits, BatchSize: 4 * testChunk * 8 / testBits,
		Workers: 1, Fallback: qrng.FallbackNever, WaitTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	rs.stopped(t)
	read := make(chan error, 1)
	go func() {
		_, err := src.Read(make([]byte, 8))
		read <- err
	}()
	select {
	case <-up.entered:
	case <-time.After(patience):
		t.Fatal("the Source never called Fetch")
	}
	time.Sleep(100 * time.Millisecond) // well into a Redis call
	start := time.Now()
	require.NoError(t, src.Close(), "Close found a Fetch still running")
	took := time.Since(start)
	t.Logf("Close took %s", took)
	// The bound is the configuration's: one call of PollInterval (500 ms)
	// plus callTimeout (500 ms); Close's own limit is 5 s.
	assert.Less(t, took, 5*time.Second)
	select {
	case err := <-read:
		assert.Error(t, err)
	case <-time.After(patience):
		t.Fatal("Read still blocked after Close")
	}
}

// A filler whose service fails marks the pool "not filling" after its
// heartbeat TTL: a consumer waiting on the empty pool stops at once with
// ErrNotFilling and the filler's last error (FallbackNever), a Source
// with FallbackOnError falls back with that reason, and the failing state
// ends when the service is back.
func TestNotFillingStopsWaiting(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	srv.Inject(qrngtest.Fault{Status: 503, Body: `{"message":"device warming up"}`, Times: -1})
	cfg := testFillerConfig(srv, rdb, "nf")
	cfg.HeartbeatTTL = 3 * time.Second // beats a loaded machine delays still come before the TTL ends
	f := newTestFiller(t, cfg)
	stop := runFiller(t, f)

	c := newTestConsumer(t, rdb, "nf")
	// Far longer than the TTL (3 s): a wait that ends with the context
	// means the consumer never learnt that nobody fills.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, err := c.Fetch(ctx, make([]byte, testChunk))
	require.ErrorIs(t, err, ErrNotFilling)
	assert.Regexp(t, `^redispool: pool empty and its fillers are not filling \(failing since [0-9T:-]+Z\), last error: .*503`, err.Error())
	assert.Contains(t, err.Error(), "device warming up")
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	assert.Equal(t, time.Second, ra.RetryAfter())

	st, err := ReadStatus(context.Background(), rdb, "nf")
	require.NoError(t, err)
	assert.False(t, st.Filling)
	require.Len(t, st.Fillers, 1)
	assert.True(t, f.Stats().Failing, "the filler's own Stats say it too (pool fill's /healthz reads them)")

	var reason error
	var mu sync.Mutex
	fb := newPoolSource(t, rs, "nf", qrng.Config{Fallback: qrng.FallbackOnError, WaitTimeout: patience,
		OnFallback: func(e qrng.FallbackEvent) {
			mu.Lock()
			defer mu.Unlock()
			if e.Active {
				reason = e.Reason
			}
		}})
	n, err := fb.Read(make([]byte, 64))
	require.NoError(t, err)
	assert.Equal(t, 64, n)
	mu.Lock()
	assert.ErrorIs(t, reason, ErrNotFilling, "the reason names the failing fillers: %v", reason)
	mu.Unlock()

	srv.ClearFaults()
	require.Eventually(t, func() bool { // the service is back: the pool fills again
		n, err := c.Fetch(ctx, make([]byte, testChunk))
		return err == nil && n == testChunk
	}, patience, 5*time.Millisecond)
	require.Eventually(t, func() bool { return rdb.Exists(ctx, "nf:failing").Val() == 0 }, patience, 5*time.Millisecond,
		"the failing key goes once the filler fills")
	require.NoError(t, stop())
}

// commandCalls is the server's count of commands run, from INFO
// commandstats, without those of the INFO calls themselves.
func commandCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	s, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	var n int64
	for line := range strings.SplitSeq(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || name == "cmdstat_info" {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		k, err := strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
		n += k
	}
	return n
}

// idleConsumers waits with 32 consumers on an empty pool that a filler
// says it can fill, for about window, and returns the commands they sent
// per second and the time they waited.
func idleConsumers(t *testing.T, window time.Duration) (perSecond float64, waited time.Duration) {
	const consumers = 32
	rs := startRedis(t)
	admin := rs.client(t, "", "")
	ctx := context.Background()
	// A filler able to fill and not filling yet: the liveness key alone.
	require.NoError(t, admin.Set(ctx, "idle:alive", "ok", time.Hour).Err())
	var cs []*Consumer
	for range consumers {
		c, err := NewConsumer(ConsumerConfig{Redis: admin, Prefix: "idle", ChunkSize: testChunk}) // the default PollInterval
		require.NoError(t, err)
		cs = append(cs, c)
	}
	before := commandCalls(t, admin)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, window)
			defer cancel()
			_, err := c.Fetch(wctx, make([]byte, testChunk))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
	wg.Wait()
	waited = time.Since(start)
	calls := commandCalls(t, admin) - before
	perSecond = float64(calls) / waited.Seconds()
	t.Logf("%d waiting consumers sent %d commands in %s: %.0f/s", consumers, calls, waited.Round(time.Millisecond), perSecond)
	// Each wait is a blocking pop of up to PollInterval and one GET of the
	// liveness key; first come the server check (HELLO), the keying check
	// (an HGET of the settings), an LMPOP and the reads of why the pool is
	// empty: at most 2 commands per consumer per PollInterval, plus 8 at
	// the start. A slow machine sends fewer.
	bound := consumers * (2*int64(waited/(500*time.Millisecond)) + 8)
	assert.LessOrEqual(t, calls, bound, "commands of %d waiting consumers in %s", consumers, waited)
	return perSecond, waited
}

// 32 consumers waiting on an empty pool cost Redis about two commands
// each per PollInterval (500 ms by default), not a poll every 50 ms.
func TestIdleConsumersBlock(t *testing.T) {
	idleConsumers(t, 3*time.Second)
}
