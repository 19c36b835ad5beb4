package qrng

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng/internal/health"
	"github.com/qrng-go/qrng/internal/replay"
	"golang.org/x/sync/errgroup"
)

// Config configures a Source. Every zero field means the default written
// beside it. Validate reports a field that can never work; NewSource
// panics with that report.
type Config struct {
	// Token is the API token from QCI. Default: $QCI_TOKEN. Without one the
	// Source cannot fetch and falls back as Fallback allows.
	Token string
	// BaseURL is the service's address. Default: $QCI_API_URL, else
	// DefaultBaseURL. Plain http is allowed only to loopback hosts.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of the Source's own.
	HTTPClient *http.Client
	// MaxRetries bounds retries of one request. Default 4; negative: none.
	MaxRetries int
	// AttemptTimeout bounds one HTTP attempt, body included. Default 60 s.
	// A request that times out, or whose answer is cut short, is not
	// retried at its size: the Source halves its next request (see
	// BatchSize).
	AttemptTimeout time.Duration
	// MaxBackoff caps one pause between retries of a request (the pause
	// is drawn at random up to a window that doubles from 200 ms).
	// Default 10 s. A test may set it to a millisecond.
	MaxBackoff time.Duration
	// RetryPause is the Source's first pause after a failed batch, before
	// it asks again; it doubles with each failure in a row, up to 64
	// times, and is never less than the server's last Retry-After (capped
	// at 60 s). Default 1 s. A test may set it to a millisecond.
	RetryPause time.Duration

	// Bits is the width of each value requested, 1..64. Default 16. The
	// values are packed into one continuous bit stream whatever the width.
	// With Upstream set there are no values: Bits and BatchSize then only
	// size the batches (BatchSize × Bits / 8 bytes).
	Bits int
	// BatchSize is the largest number of values one request asks for, at
	// most MaxSamples. Default 100,000. It is rounded up so that every
	// batch packs into a whole number of 512-byte health-test windows (a
	// multiple of 4096/gcd(Bits, 4096) values: 256 at 16 bits, 4096 at odd
	// widths) and rounded down again where that would pass MaxSamples. So
	// the smallest batch is 512 bytes, and every byte served has been
	// through both health tests.
	//
	// Requests start small (slow start): the first asks for what the
	// first read needs, rounded up to that unit (one value at 16 bits
	// costs 4,096 bits), and each request that succeeds doubles the next,
	// up to BatchSize. A request that times out or is cut short halves
	// the next one, down to one unit.
	BatchSize int
	// Workers is the number of concurrent prefetch requests. Default 2.
	Workers int
	// BufferSize bounds the bytes the Source keeps ready (buffered, in
	// windows and in flight). Default four batches; at least one batch is
	// always allowed. The first target is the first request; each refill
	// doubles it, up to BufferSize, so a short-lived Source spends little
	// quota. A refill starts when the bytes ready fall below half the
	// target. A worker starts a request only while the bytes ready plus in
	// flight are below the target, so the Source never holds more than
	// BufferSize plus one batch.
	BufferSize int
	// OnDemand, when set, fetches only when a caller finds the buffer empty,
	// and each request asks for what that caller still needs, rounded up
	// to whole units (512 bytes at 16 bits; at most BatchSize values): no
	// prefetch, so no more is fetched than callers read plus less than a
	// unit per request. Reads of a few bytes each then cost a request per
	// unit: read in larger pieces for fewer requests. For uses where
	// quota matters more than latency.
	OnDemand bool

	// Fallback says when crypto/rand may stand in. Default FallbackOnError.
	Fallback FallbackPolicy
	// WaitTimeout bounds how long a caller waits for quantum data when the
	// buffer is empty before falling back or failing. Default 10 s. Once
	// the Source serves crypto/rand bytes under FallbackOnError, callers
	// no longer wait while the upstream keeps failing: they get fallback
	// bytes at once until a batch arrives.
	WaitTimeout time.Duration
	// QuotaBits is the monthly allowance the local meter enforces.
	// Default DefaultQuotaBits; negative disables the local meter. A
	// request's bits are reserved before it is sent and given back if the
	// service did not answer it with 200 (see Stats.QuotaBitsUsed).
	QuotaBits int64
	// SyncUsage, when set, reads this month's usage from the service
	// before the first request and starts the meter there. A failed read
	// is tried again, after a backoff pause, up to 3 times (each with the
	// Client's own retries) before any random numbers are requested; then
	// a warning says the meter starts at zero. A usage answer that cannot
	// be true (outside 0..2^62, or malformed) fails closed: the quota
	// counts as spent, and the usage is read again a minute later.
	SyncUsage bool
	// Mix, when set, XORs every quantum byte with a crypto/rand byte, so
	// that a compromised service cannot choose the output. Default off.
	Mix bool

	// Logger receives fallback switches (Warn) and recoveries (Info).
	// Default: slog.Default(). Tokens are never logged. To silence it,
	// pass slog.New(slog.DiscardHandler).
	Logger *slog.Logger
	// OnFallback, if set, is called on each switch to and from fallback,
	// in the order the switches happened, one call at a time, while a
	// caller of Read or Uint64 waits for it (on a goroutine of its own, so
	// that a callback that panics or calls runtime.Goexit harms nothing:
	// the first such failure is logged, later events are still
	// delivered). It must not block.
	OnFallback func(FallbackEvent)

	// Upstream, if set, is where batches come from instead of the uQRNG
	// service (for example a redispool.Consumer, or a test's own). Token,
	// BaseURL, HTTPClient, MaxRetries, AttemptTimeout, MaxBackoff,
	// QuotaBits and SyncUsage then do not apply: quota is the Upstream's
	// business. Fetch is given slices of any whole number of 512-byte
	// windows up to the batch size (BatchSize values of Bits bits; see
	// BatchSize for how requests grow). Every batch must be at least 512
	// bytes. The Source does not close it.
	Upstream Upstream
}

// Validate reports the first field of cfg that can never work (a negative
// size or duration, Bits outside 1..64, BatchSize above MaxSamples, an
// unknown Fallback, an unusable BaseURL), naming it; nil if there is
// none. NewSource panics with this report. The environment is not
// checked: an unusable $QCI_API_URL, like a missing token, surfaces when
// bytes are read.
func (cfg Config) Validate() error {
	switch {
	case cfg.Bits < 0 || cfg.Bits > 64:
		return fmt.Errorf("qrng: Config.Bits %d outside 1..64", cfg.Bits)
	case cfg.BatchSize < 0 || cfg.BatchSize > MaxSamples:
		return fmt.Errorf("qrng: Config.BatchSize %d outside 1..%d", cfg.BatchSize, MaxSamples)
	case cfg.Workers < 0:
		return fmt.Errorf("qrng: Config.Workers %d is negative", cfg.Workers)
	case cfg.BufferSize < 0:
		return fmt.Errorf("qrng: Config.BufferSize %d is negative", cfg.BufferSize)
	case cfg.Fallback < FallbackOnError || cfg.Fallback > FallbackNever:
		return fmt.Errorf("qrng: Config.Fallback %d is not a FallbackPolicy", int(cfg.Fallback))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"WaitTimeout", cfg.WaitTimeout}, {"AttemptTimeout", cfg.AttemptTimeout}, {"MaxBackoff", cfg.MaxBackoff}, {"RetryPause", cfg.RetryPause}} {
		if d.v < 0 {
			return fmt.Errorf("qrng: Config.%s %s is negative", d.name, d.v)
		}
	}
	if cfg.BaseURL != "" && cfg.Upstream == nil {
		if _, err := checkBaseURL(cfg.BaseURL); err != nil {
			return errors.New("qrng: Config.BaseURL: " + strings.TrimPrefix(err.Error(), "qrng: "))
		}
	}
	return nil
}

// Stats is a snapshot of a Source's counters. What was fetched and what
// was served: FetchedBytes counts every byte the upstream delivered,
// QuantumBytes what callers received of them; the difference is Buffered
// (ready to serve) plus what was erased unserved (rejected batches, and
// what Close erased).
type Stats struct {
	QuantumBytes  int64 // bytes served from the upstream (the service)
	FallbackBytes int64 // bytes served from crypto/rand
	// FetchedBytes counts the bytes the upstream delivered (every batch a
	// Fetch returned, including any the health or replay checks then
	// rejected), whether or not served yet.
	FetchedBytes   int64
	Requests       int64 // HTTP requests sent (attempts, token exchanges included)
	FailedRequests int64 // requests that gave no usable answer
	Retries        int64 // requests that were retries
	// QuotaBitsUsed is what the local meter counts against this UTC
	// month's quota: n_samples × n_bits of every request that the service
	// answered with 200, including answers that were then cut short,
	// malformed or rejected by the health tests (the service probably
	// counted those), and of every request sent whole that got no answer
	// (timed out, cancelled by Close, its connection broken: the service
	// may have served it). A request that never left, or that the service
	// answered with a 4xx or 5xx, is refunded. Bits of a request in flight
	// are counted. Zero with Config.Upstream.
	QuotaBitsUsed    int64
	Buffered         int   // bytes ready to serve
	Waits            int64 // times a caller found the buffer empty and waited
	FallbackActive   bool  // whether fallback is serving now
	FallbackSwitches int64 // switches to fallback so far
	RejectedBatches  int64 // batches refused by health or replay checks
	LastError        error // the most recent fetch failure, nil if none
}

// A Source serves random bits fetched from the uQRNG service in
// prefetched batches. It implements math/rand/v2's Source (Uint64) and
// io.Reader (Read).
//
// A Source is safe for concurrent use by multiple goroutines. Each byte it
// receives is served at most once, and served bytes are erased from its
// buffer. Nothing is fetched, and no goroutine started, until the first
// Read or Uint64 that needs bytes. Call Close to stop its workers and
// erase what it still holds. The zero value is not usable: make Sources
// with NewSource.
type Source struct {
	up         Upstream
	svc        *service // the default upstream; nil with Config.Upstream
	client     *Client  // svc's client; nil with Config.Upstream or a bad $QCI_API_URL
	bits       int
	batchBytes int // packed bytes of the largest request, a multiple of health.Window
	capacity   int // ready + in flight stays below capacity + batchBytes
	onDemand   bool
	workers    int
	policy     FallbackPolicy
	wait       time.Duration
	maxPause   time.Duration // longest Retry-After honoured between batches
	mix        bool
	log        *slog.Logger
	onFallback func(FallbackEvent)
	now        func() time.Time
	cooldown   time.Duration // first pause after a failed batch; doubles, capped at 64x
	closeWait  time.Duration // how long Close waits for workers stuck in Fetch

	ctx    context.Context
	cancel context.CancelFunc
	g      *errgroup.Group // the prefetch workers; its Wait closes stopped

	// Lock-free serving (window.go): win is the one window while callers
	// come one at a time; stripes, once set, replaces it for good.
	_       [64]byte // keep the fast path's lines apart from the fields around
	win     slot
	stripes atomic.Pointer[[numStripes]slot]
	_       [56]byte

	reportMu  sync.Mutex  // held while delivering events, so they arrive in order
	pubMu     sync.Mutex  // held by callers (never workers) publishing windows; see serveWindows
	cbFailed  atomic.Bool // a callback (or the Logger) panicked or called Goexit; logged once
	closeErr  error       // what Close returns; set before closeDone is closed
	closeDone chan struct{}

	mu       sync.Mutex // guards all below
	buf      buffer
	started  bool
	closed   bool
	running  int           // workers not yet returned (for Close's error)
	stopped  chan struct{} // closed when g.Wait returns: every worker has returned
	filling  bool          // a refill is under way: fetch until target
	target   int           // the first request <= target <= capacity; doubles per refill
	low      int           // target/2: a refill starts when the bytes ready fall below it
	inflight int           // bytes of requests being fetched
	z        sizing        // the size of the next request (slowstart.go)
	need     int           // under OnDemand: the largest need of a caller that found the buffer empty since the last request started or batch arrived
	wake     chan struct{} // closed to wake workers; then replaced
	ready    chan struct{} // closed when data or state changes for waiters; then replaced
	quotaEnd time.Time     // quota spent until then (zero: not spent)
	quotaErr error         // why the quota is spent, while it is
	retryAt  time.Time     // no fetch before then, after failures
	failures int           // consecutive failed batches
	lastErr  error
	fallback bool            // serving crypto/rand now
	events   []FallbackEvent // switches not yet delivered, oldest first
	health   healthState
	stats    Stats

	// Test seams, nil in production: tap sees every range served from
	// the buffer at its offset in the stream of pushed bytes (while it is
	// set no window is published, so every read takes the locked path);
	// trace sees every range served, lock-free paths included, from any
	// goroutine; onPush sees each pushed batch. served counts the bytes
	// taken from the buffer (served, or cut into windows): the offsets.
	tap   func(off int64, p []byte)
	trace func(off int64, p []byte)
	// oneWindow keeps every caller on one window (no stripes), so that a
	// test can make all claims contend for one cursor.
	oneWindow bool
	onPush    func(p []byte)
	served    int64
}

// closeTimeout is how long Close waits, after cancelling, for workers to
// return from Upstream.Fetch.
const closeTimeout = 5 * time.Second

// NewSource returns a Source for cfg. It panics if a Config field can
// never work, with the message Config.Validate returns (naming the
// field); call Validate first where a configuration comes from outside
// the program. Runtime trouble (no token, no network, an unusable
// $QCI_API_URL) never fails construction: it surfaces when bytes are
// read, as the fallback policy allows.
func NewSource(cfg Config) *Source {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	s := &Source{
		bits:       cmp(cfg.Bits, DefaultBits),
		workers:    cmp(cfg.Workers, 2),
		policy:     cfg.Fallback,
		wait:       cmp(cfg.WaitTimeout, 10*time.Second),
		maxPause:   60 * time.Second,
		mix:        cfg.Mix,
		log:        cmp(cfg.Logger, slog.Default()),
		onFallback: cfg.OnFallback,
		now:        time.Now,
		cooldown:   cmp(cfg.RetryPause, time.Second),
		closeWait:  closeTimeout,
		closeDone:  make(chan struct{}),
		wake:       make(chan struct{}),
		ready:      make(chan struct{}),
		onDemand:   cfg.OnDemand,
	}
	batchN := batchValues(cmp(cfg.BatchSize, 100_000), s.bits)
	s.batchBytes = batchN * s.bits / 8
	s.capacity = max(cmp(cfg.BufferSize, 4*s.batchBytes), s.batchBytes)
	s.z = sizing{base: unitBytes(s.bits), unit: unitBytes(s.bits), batch: s.batchBytes}
	s.target = s.z.unit // set by the first demand
	s.low = s.target / 2
	s.health = newHealthState(s.batchBytes)
	if cfg.Upstream != nil {
		s.up = cfg.Upstream
	} else {
		s.svc = newService(cfg, s.bits, s.log)
		s.svc.now = func() time.Time { return s.now() }
		s.up, s.client = s.svc, s.svc.client
		if s.client != nil {
			s.maxPause = s.client.maxRetryAf
		}
	}
	return s
}

// batchValues rounds a batch of n values of the given width so that it
// packs into whole health-test windows: up to a multiple of
// 4096/gcd(bits, 4096) values, or down where that would pass MaxSamples.
func batchValues(n, bits int) int {
	step := health.Window * 8 / (bits & -bits) // bits & -bits: its largest power-of-two factor, at most 64
	n = (n + step - 1) / step * step
	if n > MaxSamples {
		n = MaxSamples / step * step
	}
	return n
}

// Uint64 returns 64 random bits: the next 8 bytes of the stream, big-endian.
// Under FallbackNever or FallbackOnQuota it panics with the error that
// Read would return (for example ErrQuotaExceeded or ErrClosed), since the
// rand.Source interface has no room for an error. Bytes taken for a value
// that ends in a panic are erased and not counted as served.
//
// It takes no lock while the Source has bytes ready (see window.go): one
// atomic add claims the 8 bytes, which are copied and erased.
func (s *Source) Uint64() uint64 {
	sl := s.slotFor()
	if w := sl.w.Load(); w != nil {
		end := w.off.Add(8)
		if end < int64(len(w.b)) && s.trace == nil {
			p := w.b[end-8 : end]
			v := binary.BigEndian.Uint64(p)
			binary.NativeEndian.PutUint64(p, 0)
			return v
		}
		var b [8]byte
		k := s.settle(sl, w, end, b[:]) // the window's end: settle withdraws it
		return s.uint64Slow(sl, &b, k)
	}
	var b [8]byte
	return s.uint64Slow(sl, &b, 0)
}

// uint64Slow completes a value whose first k bytes are in b; sl is the
// caller's slot.
func (s *Source) uint64Slow(sl *slot, b *[8]byte, k int) uint64 {
	if k < 8 {
		k += s.serveWindows(sl, b[k:])
	}
	if k < 8 {
		n, err := s.read(context.Background(), b[k:])
		if err != nil {
			clear(b[:])
			s.mu.Lock()
			s.stats.QuantumBytes -= int64(k + n) // taken and erased, but nobody received them
			s.mu.Unlock()
			panic(err)
		}
	}
	v := binary.BigEndian.Uint64(b[:])
	clear(b[:])
	return v
}

// Close stops the workers, waits for them, and erases the buffer.
// Requests in flight are cancelled, so Close returns promptly. After
// Close, Read returns ErrClosed and Uint64 panics with it, whatever the
// fallback policy. Close is idempotent; every call, even a concurrent
// one, returns only once the workers have stopped (or Close has given up
// on them, below) and the buffer is erased, and returns the same error.
//
// A worker stuck in a Config.Upstream's Fetch that ignores its context
// is the one exception to "no goroutine outlives Close": Close waits for
// it at most 5 s after cancelling, then returns an error saying how many
// Fetch calls are still running. Such a worker, when its Fetch returns,
// erases what it got and stops; nothing it fetched is served. Close
// returns nil otherwise.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		done := s.closeDone
		s.mu.Unlock()
		<-done
		return s.closeErr
	}
	s.closed = true
	s.reclaimLocked() // no claim succeeds from here on
	s.broadcastLocked()
	started := s.started
	s.mu.Unlock()
	var err error
	if started {
		s.cancel()
		t := time.NewTimer(s.closeWait)
		select {
		case <-s.stopped:
		case <-t.C:
			s.mu.Lock()
			stuck := s.running
			s.mu.Unlock()
			err = fmt.Errorf("qrng: Close gave up after %s: %d Upstream Fetch call(s) ignore the cancelled context and still run; "+
				"what they return will be erased, not served", s.closeWait, stuck)
		}
		t.Stop()
	}
	s.mu.Lock()
	s.buf.erase() // the windows were reclaimed above; none is published after Close
	s.mu.Unlock()
	if s.client != nil {
		s.client.closeIdle()
	}
	s.closeErr = err
	close(s.closeDone)
	return err
}

// Stats returns a snapshot of the Source's counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	unclaimed := s.unclaimedLocked()
	st.QuantumBytes -= int64(unclaimed) // cut into windows, not yet claimed
	st.Buffered = s.buf.len() + unclaimed
	st.FallbackActive = s.fallback
	st.LastError = s.lastErr
	if s.quotaErr != nil {
		st.LastError = s.quotaErr
	}
	s.mu.Unlock()
	if s.svc != nil {
		st.QuotaBitsUsed = s.svc.quotaUsed()
	}
	if s.client != nil {
		st.Requests, st.FailedRequests, st.Retries = s.client.stats()
	}
	return st
}

// readyLocked counts the bytes ready to serve: buffered, and unclaimed in
// windows. Refills start when they fall below half the target, and a
// worker starts a request only while they plus the bytes in flight are
// below the target, so bytes left in the windows of other slots (which a
// caller takes through the general path) are never refetched. The fast
// paths never look at the level; a window is at most a quarter of the
// target (see publishLocked), so that at most that much is used up
// between two looks.
func (s *Source) readyLocked() int {
	return s.buf.n + s.unclaimedLocked()
}

// startLocked launches the workers on first use.
func (s *Source) startLocked() {
	if s.started || s.closed {
		return
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.running = s.workers
	s.stopped = make(chan struct{})
	var gctx context.Context
	s.g, gctx = errgroup.WithContext(s.ctx)
	s.g.SetLimit(s.workers)
	for range s.workers {
		s.g.Go(func() error { s.worker(gctx); return nil })
	}
	// Close waits on stopped, not on g.Wait, so that a Fetch that ignores
	// its context cannot hold Close for ever (see Close).
	g, stopped := s.g, s.stopped
	go func() { g.Wait(); close(stopped) }()
}

// kickLocked asks the workers to refill if the bytes ready are low (below
// half the target; see readyLocked). waiting says whether a caller found the buffer empty (the only trigger
// under OnDemand); such a caller also wakes workers that a refill left
// idle (after a quota stop or a cooldown), provided a fetch may start now.
//
// Depth follows demand: the target doubles (to at least the next
// request's size), up to BufferSize, each time a refill starts and each
// time a caller finds the buffer empty, so a reader faster than one fetch
// at a time soon has every worker fetching.
func (s *Source) kickLocked(waiting bool) {
	if s.closed || (!waiting && (s.onDemand || s.readyLocked() >= s.low)) {
		return // a waiting caller found the buffer empty: always below the mark
	}
	s.startLocked()
	grew := false
	if !s.onDemand && s.stats.QuantumBytes > 0 && (waiting || !s.filling) && s.target < s.capacity {
		// Demand is real: prefetch deeper, and at least one request deep.
		s.target = min(max(2*s.target, s.z.next), s.capacity)
		s.low = s.target / 2
		grew = true
	}
	if s.filling && !grew {
		if !waiting || s.inflight > 0 {
			return // a refill is under way
		}
		if quota, cooling := s.blockedLocked(s.now()); quota || cooling {
			return // no fetch may start: do not wake workers for nothing
		}
	}
	s.filling = true
	close(s.wake)
	s.wake = make(chan struct{})
}

// demandLocked records that a caller finds the buffer empty and needs
// need more bytes: the next request brings at least that much (within
// the batch size), and the first demand sets the first target.
func (s *Source) demandLocked(need int) {
	if s.onDemand {
		s.need = max(s.need, need)
	}
	if s.z.demand(need) {
		s.target = min(max(s.z.next, s.target), s.capacity)
		s.low = s.target / 2
	}
}

// broadcastLocked wakes waiting callers and workers.
func (s *Source) broadcastLocked() {
	close(s.ready)
	s.ready = make(chan struct{})
	close(s.wake)
	s.wake = make(chan struct{})
}

// blockedLocked reports why no fetch may start now, if one may not.
func (s *Source) blockedLocked(now time.Time) (quota, cooling bool) {
	if !s.quotaEnd.IsZero() {
		if now.Before(s.quotaEnd) {
			return true, false
		}
		s.quotaEnd, s.quotaErr = time.Time{}, nil
	}
	return false, now.Before(s.retryAt)
}

// worker fetches batches while a refill is wanted, until ctx ends.
func (s *Source) worker(ctx context.Context) {
	defer func() {
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		quota, cooling := s.blockedLocked(s.now())
		want := s.filling && !s.closed && !quota && !cooling &&
			s.readyLocked()+s.inflight < s.target && (!s.onDemand || s.need > 0)
		if !want {
			if s.readyLocked()+s.inflight >= s.target {
				s.filling = false
			}
			wake := s.wake
			var timer *time.Timer
			var fire <-chan time.Time
			if cooling && s.filling {
				timer = time.NewTimer(s.retryAt.Sub(s.now()))
				fire = timer.C
			}
			s.mu.Unlock()
			select {
			case <-wake:
			case <-fire:
			case <-ctx.Done():
			}
			if timer != nil {
				timer.Stop()
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if u, ok := s.up.(interface{ FetchUnit() int }); ok {
			s.z.fit(u.FetchUnit()) // a pool's chunks: ask for whole ones
		}
		size := s.z.take()
		if s.onDemand {
			// What the waiting caller needs, in whole units: nothing
			// ahead. A caller that still needs more once this arrives
			// asks again.
			size = min(size, s.z.roundUp(s.need))
			s.need = 0
		}
		s.inflight += size
		chunk := s.buf.chunk(size)
		s.mu.Unlock()

		batch, err := s.fetchBatch(ctx, chunk)
		delivered := len(batch)
		var anchors []replay.Fingerprint
		if err == nil {
			anchors, err = s.health.test(batch) // outside the lock: it reads the whole batch
		}

		s.mu.Lock()
		s.inflight -= size
		s.stats.FetchedBytes += int64(delivered)
		if err == nil {
			err = s.health.remember(anchors)
		}
		switch {
		case s.closed:
			s.buf.recycle(chunk)
		case err != nil:
			s.buf.recycle(chunk)
			s.failedLocked(err, size)
		default:
			s.failures = 0
			s.retryAt = time.Time{}
			s.z.succeeded(size)
			if s.onPush != nil {
				s.onPush(batch)
			}
			s.buf.push(batch)
			if s.onDemand {
				s.filling = false
				s.need = 0 // a caller this batch does not cover asks again
			}
		}
		close(s.ready)
		s.ready = make(chan struct{})
		s.mu.Unlock()
	}
}

// fetchBatch asks the upstream for one batch in chunk and returns the
// bytes it wrote. A panic in Fetch is a failed batch, not a dead process.
func (s *Source) fetchBatch(ctx context.Context, chunk []byte) (batch []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			batch, err = nil, fmt.Errorf("qrng: the upstream's Fetch panicked: %.200s", fmt.Sprint(r))
		}
	}()
	n, err := s.up.Fetch(ctx, chunk)
	switch {
	case err != nil:
		return nil, err
	case n < health.Window || n > len(chunk):
		return nil, fmt.Errorf("%w: the upstream returned %d bytes for a batch (want %d..%d)",
			ErrInvalidResponse, n, health.Window, len(chunk))
	}
	return chunk[:n], nil
}

// failedLocked records a failed request of size bytes and when to try
// again.
func (s *Source) failedLocked(err error, size int) {
	if s.closed || s.ctx.Err() != nil {
		return
	}
	if errorIsQuota(err) {
		// Spent until the month turns, or as long as the server says. While
		// it is, this error is the one callers see: a later failure of
		// another kind does not hide it.
		s.quotaErr = err
		s.quotaEnd = nextMonth(s.now()) // a monthly quota renews then, whatever a server says
		if ra := retryAfterOf(err); ra > 0 && s.now().Add(ra).Before(s.quotaEnd) {
			s.quotaEnd = s.now().Add(ra)
		}
		return
	}
	s.lastErr = err
	if isTooSlow(s.ctx, err) && s.z.tooSlow(size) {
		return // too big for the service's pace: a smaller request goes out at once
	}
	s.failures++
	if isBadAnswer(err) {
		if isRejected(err) {
			s.stats.RejectedBatches++
		}
		if s.failures < 3 {
			return // a bad answer is fetched again at once, twice
		}
	}
	pause := s.cooldown << min(s.failures-1, 6)
	if ra := retryAfterOf(err); ra > 0 {
		pause = max(pause, min(ra, s.maxPause)) // the server asked for at least this
	}
	s.retryAt = s.now().Add(pause)
}

// retryAfterOf is how long err asks to wait before the next attempt: an
// *APIError's RetryAfter, or what an error's RetryAfter method says.
func retryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}
