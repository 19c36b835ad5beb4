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
// beside it.
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

	// Bits is the width of each value requested, 1..64. Default 16. The
	// values are packed into one continuous bit stream whatever the width.
	Bits int
	// BatchSize is the number of values per request, at most MaxSamples.
	// Default 100,000. It is rounded up so that every batch packs into a
	// whole number of 512-byte health-test windows (a multiple of
	// 4096/gcd(Bits, 4096) values: 256 at 16 bits, 4096 at odd widths) and
	// rounded down again where that would pass MaxSamples. So the smallest
	// batch is 512 bytes, and every byte served has been through both
	// health tests.
	BatchSize int
	// Workers is the number of concurrent prefetch requests. Default 2.
	Workers int
	// BufferSize is the most bytes the Source keeps ready (buffered plus in
	// flight). Default four batches; at least one batch is always allowed.
	// The first fill is one batch; each refill doubles the target up to
	// BufferSize, so a short-lived Source spends little quota. A refill
	// starts when the buffer falls below half the target.
	BufferSize int
	// OnDemand, when set, fetches only when a caller finds the buffer empty:
	// no prefetch, so no batch is fetched that is not needed. For one-shot
	// uses where quota matters more than latency.
	OnDemand bool

	// Fallback says when crypto/rand may stand in. Default FallbackOnError.
	Fallback FallbackPolicy
	// WaitTimeout bounds how long a caller waits for quantum data when the
	// buffer is empty before falling back or failing. Default 10 s.
	WaitTimeout time.Duration
	// QuotaBits is the monthly allowance the local meter enforces.
	// Default DefaultQuotaBits; negative disables the local meter. A
	// request's bits are reserved before it is sent and given back if the
	// service did not answer it with 200 (see Stats.QuotaBitsUsed).
	QuotaBits int64
	// SyncUsage, when set, reads this month's usage from the service before
	// the first request and starts the meter there.
	SyncUsage bool
	// Mix, when set, XORs every quantum byte with a crypto/rand byte, so
	// that a compromised service cannot choose the output. Default off.
	Mix bool

	// Logger receives fallback switches (Warn) and recoveries (Info).
	// Default: slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// OnFallback, if set, is called on each switch to and from fallback,
	// in the order the switches happened, one call at a time, on the
	// goroutine of a caller of Read or Uint64. It must not block.
	OnFallback func(FallbackEvent)

	// Upstream, if set, is where batches come from instead of the uQRNG
	// service (for example a redispool.Consumer, or a test's own). Token,
	// BaseURL, HTTPClient, MaxRetries, QuotaBits and SyncUsage then do not
	// apply: quota is the Upstream's business. Fetch is given slices of
	// the batch size (BatchSize values of Bits bits): for a pool of
	// chunks, make that a whole number of chunks. Every batch must be at
	// least 512 bytes. The Source does not close it.
	Upstream Upstream
}

// Stats is a snapshot of a Source's counters.
type Stats struct {
	QuantumBytes   int64 // bytes served from the upstream (the service)
	FallbackBytes  int64 // bytes served from crypto/rand
	Requests       int64 // HTTP requests sent (attempts, token exchanges included)
	FailedRequests int64 // requests that gave no usable answer
	Retries        int64 // requests that were retries
	// QuotaBitsUsed is what the local meter counts against this UTC
	// month's quota: n_samples × n_bits of every request that the service
	// answered with 200, including answers that were then cut short,
	// malformed or rejected by the health tests (the service probably
	// counted those). A request with no 200 answer (a transport error
	// before the answer, a 4xx or 5xx) is refunded. Bits of a request in
	// flight are counted until it ends. Zero with Config.Upstream.
	QuotaBitsUsed    int64
	Buffered         int   // bytes ready to serve
	Waits            int64 // times a caller found the buffer empty and waited
	FallbackActive   bool  // whether fallback is serving now
	FallbackSwitches int64 // switches to fallback so far
	RejectedBatches  int64 // batches refused by health or replay checks
	LastError        error // the most recent fetch failure, nil if none
}

// A Source serves random bits fetched from the uQRNG service in large,
// prefetched batches. It implements math/rand/v2's Source (Uint64) and
// io.Reader (Read).
//
// A Source is safe for concurrent use by multiple goroutines. Each byte it
// receives is served at most once, and served bytes are erased from its
// buffer. Nothing is fetched, and no goroutine started, until the first
// Read or Uint64. Call Close to stop its workers and erase what it still
// holds. The zero value is not usable: make Sources with NewSource.
type Source struct {
	up         Upstream
	svc        *service // the default upstream; nil with Config.Upstream
	client     *Client  // svc's client; nil with Config.Upstream or a bad $QCI_API_URL
	bits       int
	batchN     int // values per request
	batchBytes int // packed bytes per batch, a multiple of health.Window
	capacity   int // buffered + in flight stays below capacity + batchBytes
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

	ctx    context.Context
	cancel context.CancelFunc
	g      *errgroup.Group

	// Lock-free serving (window.go): win is the one window while callers
	// come one at a time; stripes, once set, replaces it for good.
	_       [64]byte // keep the fast path's lines apart from the fields around
	win     slot
	stripes atomic.Pointer[[numStripes]slot]
	_       [56]byte

	reportMu sync.Mutex // held while delivering events, so they arrive in order
	pubMu    sync.Mutex // held by callers (never workers) publishing windows; see serveWindows

	mu        sync.Mutex // guards all below
	buf       buffer
	started   bool
	closed    bool
	closeDone chan struct{} // closed when Close has finished
	filling   bool          // a refill is under way: fetch until target
	target    int           // batchBytes <= target <= capacity; doubles per refill
	low       int           // target/2: a refill starts when buffered falls below it
	inflight  int           // bytes of batches being fetched
	wake      chan struct{} // closed to wake workers; then replaced
	ready     chan struct{} // closed when data or state changes for waiters; then replaced
	quotaEnd  time.Time     // quota spent until then (zero: not spent)
	quotaErr  error         // why the quota is spent, while it is
	retryAt   time.Time     // no fetch before then, after failures
	failures  int           // consecutive failed batches
	lastErr   error
	fallback  bool            // serving crypto/rand now
	events    []FallbackEvent // switches not yet delivered, oldest first
	health    healthState
	stats     Stats

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

// NewSource returns a Source for cfg. It panics if a Config field can
// never work (a negative size, Bits outside 1..64, BatchSize above
// MaxSamples, an unusable BaseURL), naming the field. Runtime trouble (no
// token, no network, an unusable $QCI_API_URL) never fails construction:
// it surfaces when bytes are read, as the fallback policy allows.
func NewSource(cfg Config) *Source {
	switch {
	case cfg.Bits < 0 || cfg.Bits > 64:
		panic(fmt.Sprintf("qrng: Config.Bits %d outside 1..64", cfg.Bits))
	case cfg.BatchSize < 0 || cfg.BatchSize > MaxSamples:
		panic(fmt.Sprintf("qrng: Config.BatchSize %d outside 1..%d", cfg.BatchSize, MaxSamples))
	case cfg.Workers < 0:
		panic(fmt.Sprintf("qrng: Config.Workers %d is negative", cfg.Workers))
	case cfg.BufferSize < 0:
		panic(fmt.Sprintf("qrng: Config.BufferSize %d is negative", cfg.BufferSize))
	case cfg.WaitTimeout < 0:
		panic(fmt.Sprintf("qrng: Config.WaitTimeout %s is negative", cfg.WaitTimeout))
	case cfg.Fallback < FallbackOnError || cfg.Fallback > FallbackNever:
		panic(fmt.Sprintf("qrng: Config.Fallback %d is not a FallbackPolicy", int(cfg.Fallback)))
	}
	if cfg.BaseURL != "" && cfg.Upstream == nil {
		if _, err := checkBaseURL(cfg.BaseURL); err != nil {
			panic("qrng: Config.BaseURL: " + strings.TrimPrefix(err.Error(), "qrng: "))
		}
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
		cooldown:   time.Second,
		closeDone:  make(chan struct{}),
		wake:       make(chan struct{}),
		ready:      make(chan struct{}),
		onDemand:   cfg.OnDemand,
	}
	s.batchN = batchValues(cmp(cfg.BatchSize, 100_000), s.bits)
	s.batchBytes = s.batchN * s.bits / 8
	s.capacity = max(cmp(cfg.BufferSize, 4*s.batchBytes), s.batchBytes)
	s.target = s.batchBytes
	s.low = s.target / 2
	s.health = newHealthState(s.batchBytes, s.bits)
	if cfg.Upstream != nil {
		s.up = cfg.Upstream
	} else {
		s.svc = newService(cfg, s.bits, s.batchN, s.log)
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
		return s.uint64Slow(&b, k)
	}
	var b [8]byte
	return s.uint64Slow(&b, 0)
}

// uint64Slow completes a value whose first k bytes are in b.
func (s *Source) uint64Slow(b *[8]byte, k int) uint64 {
	if k < 8 {
		k += s.serveWindows(b[k:])
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

// Close stops the workers, waits for them, and erases the buffer. Requests
// in flight are cancelled, so Close returns promptly. After Close, Read
// returns ErrClosed and Uint64 panics with it, whatever the fallback
// policy. Close is idempotent and always returns nil; every call, even a
// concurrent one, returns only once the workers have stopped and the
// buffer is erased.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		done := s.closeDone
		s.mu.Unlock()
		<-done
		return nil
	}
	s.closed = true
	s.reclaimLocked() // no claim succeeds from here on
	s.broadcastLocked()
	started := s.started
	s.mu.Unlock()
	if started {
		s.cancel()
		s.g.Wait()
	}
	s.mu.Lock()
	s.buf.erase() // the windows were reclaimed above; none is published after Close
	s.mu.Unlock()
	if s.client != nil {
		s.client.closeIdle()
	}
	close(s.closeDone)
	return nil
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

// startLocked launches the workers on first use.
func (s *Source) startLocked() {
	if s.started || s.closed {
		return
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var gctx context.Context
	s.g, gctx = errgroup.WithContext(s.ctx)
	s.g.SetLimit(s.workers)
	for range s.workers {
		s.g.Go(func() error { return s.worker(gctx) })
	}
}

// kickLocked asks the workers to refill if the buffer is low. waiting says
// whether a caller found the buffer empty (the only trigger under
// OnDemand); such a caller also wakes workers that a refill left idle (after
// a quota stop or a cooldown), provided a fetch may start now.
//
// Depth follows demand: the target doubles, up to BufferSize, each time a
// refill starts and each time a caller finds the buffer empty, so a reader
// faster than one fetch at a time soon has every worker fetching.
func (s *Source) kickLocked(waiting bool) {
	if s.closed || (!waiting && (s.onDemand || s.buf.n >= s.low)) {
		return // a waiting caller found the buffer empty: always below the mark
	}
	s.startLocked()
	grew := false
	if !s.onDemand && s.stats.QuantumBytes > 0 && (waiting || !s.filling) && s.target < s.capacity {
		s.target = min(2*s.target, s.capacity) // demand is real: prefetch deeper
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
func (s *Source) worker(ctx context.Context) error {
	for {
		s.mu.Lock()
		quota, cooling := s.blockedLocked(s.now())
		want := s.filling && !s.closed && !quota && !cooling &&
			s.buf.n+s.inflight < s.target
		if !want {
			if s.buf.n+s.inflight >= s.target {
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
				return nil
			}
			continue
		}
		s.inflight += s.batchBytes
		chunk := s.buf.chunk(s.batchBytes)
		s.mu.Unlock()

		batch, err := s.fetchBatch(ctx, chunk)
		var anchors []replay.Fingerprint
		if err == nil {
			anchors, err = s.health.test(batch) // outside the lock: it reads the whole batch
		}

		s.mu.Lock()
		s.inflight -= s.batchBytes
		if err == nil {
			err = s.health.remember(anchors)
		}
		switch {
		case s.closed:
			s.buf.recycle(chunk)
		case err != nil:
			s.buf.recycle(chunk)
			s.failedLocked(err)
		default:
			s.failures = 0
			s.retryAt = time.Time{}
			if s.onPush != nil {
				s.onPush(batch)
			}
			s.buf.push(batch)
			if s.onDemand {
				s.filling = false
			}
		}
		close(s.ready)
		s.ready = make(chan struct{})
		s.mu.Unlock()
	}
}

// fetchBatch asks the upstream for one batch in chunk and returns the
// bytes it wrote.
func (s *Source) fetchBatch(ctx context.Context, chunk []byte) ([]byte, error) {
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

// failedLocked records a failed batch and when to try again.
func (s *Source) failedLocked(err error) {
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
