package redispool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/internal/health"
	"github.com/qrng-go/qrng/internal/replay"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Sizes of chunks, the unit a consumer takes from the pool.
const (
	DefaultChunkSize = 16 << 10
	MinChunkSize     = health.Window // one window of the Adaptive Proportion Test
	MaxChunkSize     = 64 << 10
)

// DefaultTarget is the pool's default high mark in bytes: 2 MiB, about
// half of a day's even share of a fresh month's quota (10^9 bits over 31
// days is 4.03 MB a day).
const DefaultTarget = 2 << 20

const (
	leaveTimeout   = 5 * time.Second
	quotaRecheck   = time.Minute // how often a filler stopped by the quota looks again
	maxRetryAfter  = 10 * time.Minute
	defaultBackoff = 100 * time.Millisecond
)

// FillerConfig configures a Filler. Every zero field means its default.
type FillerConfig struct {
	// Redis holds the pool. Required, with ContextTimeoutEnabled set (see
	// Redis). It must not evict the pool's keys:
	// Run refuses a Redis whose maxmemory-policy is not noeviction (when
	// maxmemory is set), or whose maxmemory leaves too little room for
	// Target (see the package documentation, "Redis settings").
	Redis Redis
	// Prefix starts every key of the pool. Default DefaultPrefix
	// ("{qrng}"), or OldDefaultPrefix ("qrng") where Redis holds a pool
	// under it and none under DefaultPrefix (decided as Run starts, and
	// logged).
	Prefix string

	// Key is the pool key, shared by the pool's fillers and consumers, at
	// least MinKeySize bytes: with it every chunk carries an HMAC-SHA256
	// that consumers with the key check (see auth.go), so that whoever
	// can push to the list cannot make them serve bytes of their choosing.
	// Default: $QRNG_POOL_KEY, else the contents of the file named by
	// $QRNG_POOL_KEY_FILE; without either, chunks are unauthenticated.
	// The pool's first filler records which (and an id of the key, never
	// the key); a filler with another key, or none where the pool has
	// one, refuses to run. Never log it, nor take it from a command-line
	// flag (ps shows those).
	Key []byte

	// Token is the API token from QCI. Default: $QCI_TOKEN. Only fillers
	// need it; consumers never do.
	Token string
	// BaseURL is the service's address. Default: $QCI_API_URL, else
	// qrng.DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of the Filler's own.
	HTTPClient *http.Client

	// Bits is the width of each value requested, 1..64. Default 16. The
	// first filler of a pool records it; every other must use the same.
	Bits int
	// BatchSize is the number of values per request. Default 100,000. It
	// is rounded up so that each batch is a whole number of chunks (and
	// down, if need be, to stay within qrng.MaxSamples).
	BatchSize int
	// ChunkSize is the size of each chunk in bytes, MinChunkSize (512) to
	// MaxChunkSize (64 KiB). Default DefaultChunkSize (16 KiB). The first
	// filler of a pool records it, for consumers too; every other filler
	// must use the same.
	ChunkSize int
	// Target is the pool's high mark in bytes: a top-up fills the pool up
	// to it. Default DefaultTarget (2 MiB); at least one chunk.
	Target int64
	// LowMark is the pool's low mark in bytes: a top-up starts when the
	// pool holds less. Default Target/2; at most Target.
	LowMark int64
	// QuotaBits is the monthly allowance shared by every filler of the
	// pool, in bits. Default qrng.DefaultQuotaBits; negative: count, but
	// never refuse. It must cover at least one batch. The first filler of
	// a pool records it; every other must use the same.
	QuotaBits int64
	// DailyBits is what all the fillers of the pool together may reserve
	// in one UTC day (of the Redis server's clock), in bits. Default (0):
	// an even share of what remains of the month, that is the quota left
	// at the start of the day divided by the UTC days left, today
	// included, so that consumers who pull hard find the pool empty for
	// the rest of the day rather than spending the month. Negative: no
	// daily limit (the month may be spent in a day); positive: that many
	// bits a day. Without a monthly limit the default means no daily
	// limit. The first filler of a pool records it; every other must use
	// the same.
	DailyBits int64
	// SkipUsageSync, when set, never asks the service for its usage: a
	// missing month's counter (a new month, or Redis restarted without
	// persistence) starts at zero. By default a filler raises the month's
	// counter to the service's own count (Client.Usage) when it starts and
	// whenever Redis may have lost data, and reserves nothing until that
	// count is known.
	SkipUsageSync bool
	// Workers is the number of concurrent requests. Default 2.
	Workers int

	// ID names the filler in its heartbeat key and its logs. Default:
	// host name, process id and a random suffix.
	ID string
	// HeartbeatTTL is how long the heartbeat lives unless refreshed; it is
	// refreshed three times per TTL. Consumers see an empty pool with no
	// live heartbeat as ErrPoolEmpty. A filler that has wanted to fill and
	// failed (the service or Redis failing, batches rejected) for a TTL,
	// with no batch pushed, says so in its heartbeat: once no filler of
	// the pool can fill, consumers of an empty pool stop waiting
	// (ErrNotFilling, with the last error). Default 5 s.
	HeartbeatTTL time.Duration
	// PollInterval is how often the pool's length is checked between
	// top-ups. Default 200 ms.
	PollInterval time.Duration
	// MaxBackoff caps the pause after failures. Default 30 s.
	MaxBackoff time.Duration
	// Logger receives top-ups (Info) and trouble (Warn, Error). Default:
	// slog.Default(). Tokens and random bytes are never logged.
	Logger *slog.Logger
	// OnStart, if set, is called once by each Run when filling starts
	// (Redis checked, the month's count known), with the pool's budget.
	OnStart func(Budget)
}

// FillerStats is a snapshot of a Filler's counters.
type FillerStats struct {
	Batches      int64 // batches pushed
	Chunks       int64 // chunks pushed
	Rejected     int64 // batches refused by the health tests or the replay check
	Failures     int64 // requests that gave no usable batch (rejected ones included)
	PushErrors   int64 // batches dropped because no push got through
	PushRetries  int64 // pushes sent again (same batch marker) after a failure
	RefundedBits int64 // bits given back to the shared meter (requests with no answer)
	ReservedBits int64 // bits reserved on the shared meter (refunds not subtracted)
	BytesPushed  int64 // Chunks × the chunk size
	EvictedKeys  int64 // keys Redis evicted while this filler ran, as its heartbeats saw them
	Replayed     int64 // of Rejected: batches the pool's shared replay memory refused (pushed before, by some filler)
	Dropped      int64 // of PushErrors: batches dropped unpushed: Redis restarted or failed over after a push whose outcome is unknown
	Wiped        int64 // chunks of older generations wiped from the pool's head (pushed before a restart or failover)
	Syncs        int64 // times the month's count was taken from the service's usage
	QuotaBlocked bool  // filling is paused because the monthly quota is spent
	DailyBlocked bool  // filling is paused because today's share is spent
	Failing      bool  // it has wanted to fill and failed for a HeartbeatTTL with nothing pushed: its heartbeat says "not filling"
}

// A Filler keeps a pool in Redis topped up with health-checked chunks of
// random bytes from the uQRNG service, reserving every request's bits on
// the pool's shared quota meter first. Several Fillers (for availability)
// may fill one pool: between them they never exceed the monthly quota nor,
// unless told otherwise, the day's even share of it.
//
// A Filler's methods are safe for concurrent use, though Run runs once at
// a time. The zero value is not usable: make Fillers with NewFiller.
type Filler struct {
	rdb     Redis
	keys    keys
	client  *qrng.Client
	key     []byte // the pool key; nil: chunks are unauthenticated
	meter   meter
	log     *slog.Logger
	onStart func(Budget)
	id      string
	info    string
	tester  health.Tester
	// ownTransport is the HTTP transport the Filler made (no HTTPClient
	// given), whose idle connections Run closes on its way out.
	ownTransport *http.Transport
	noSync       bool
	workers      int
	ttl          time.Duration
	poll         time.Duration
	maxBack      time.Duration

	bits        int
	chunk       int
	batchN      int   // values per request: a whole number of chunks
	batchBytes  int   // packed bytes per batch
	batchChunks int   // chunks per batch
	batchBits   int64 // quota per request
	high, low   int64 // marks, in chunks

	// Test seams.
	now           func() time.Time
	baseBackoff   time.Duration
	recheck       time.Duration
	beforePush    func()                       // runs between the checks and the push
	afterPush     func(erased []byte)          // sees the batch buffer after it is erased
	beforeReserve func(token string)           // runs before each reservation is sent (one worker)
	beforeRefund  func(token string)           // runs before each refund is sent (one worker)
	pushFailed    func(attempt int, err error) // sees each failed push

	running atomic.Bool
	beatMu  sync.Mutex // one beat at a time, so the last state computed is the last written

	auto    bool        // no Prefix given: ready picks it (choosePrefix)
	readyMu sync.Mutex  // guards the writes of ready
	isReady atomic.Bool // the server was checked and keys chosen; keys is not written after

	syncs singleflight.Group

	mu        sync.Mutex // guards everything below
	filling   bool       // a top-up is under way
	inflight  int64      // chunks being fetched
	top       topUp
	block     block                  // why filling is paused, if it is
	clock     serverClock            // the Redis server's clock, as last seen
	fl        monthFloors            // what the meter must at least hold
	own       map[string]reservation // this filler's reservations in flight, by token
	lastUsed  int64                  // the month's count at the last reservation
	evicted   int64                  // Redis's evicted_keys at the last heartbeat; -1 before the first
	redisDown bool                   // the last Redis call failed
	beaten    string                 // the state of the last heartbeat
	gen       generation             // the server's generation, as last seen
	genKnown  bool                   // gen has been seen
	failSince time.Time              // since when filling has failed, with no batch pushed; zero if it has not
	lastFail  string                 // the last failure's text, for the failing state
	replay    *replay.Index          // anchors of the recent batches, as a qrng.Source keeps them
	stats     FillerStats
}

// topUp is one top-up, from the low mark to the high mark, for its log line.
type topUp struct {
	start   time.Time
	batches int
	bytes   int64
}

// NewFiller returns a Filler for cfg. It fails for a configuration that
// can never work; it does not contact Redis or the service.
func NewFiller(cfg FillerConfig) (*Filler, error) {
	if cfg.Redis == nil {
		return nil, errors.New("redispool: FillerConfig.Redis is nil")
	}
	if err := checkContextTimeouts("FillerConfig.Redis", cfg.Redis); err != nil {
		return nil, err
	}
	key, err := poolKey("FillerConfig.Key", cfg.Key)
	if err != nil {
		return nil, err
	}
	f := &Filler{
		rdb:         cfg.Redis,
		keys:        newKeys(cfg.Prefix),
		key:         key,
		log:         cfg.Logger,
		onStart:     cfg.OnStart,
		id:          cfg.ID,
		noSync:      cfg.SkipUsageSync,
		workers:     orDefault(cfg.Workers, 2),
		ttl:         orDefault(cfg.HeartbeatTTL, 5*time.Second),
		poll:        orDefault(cfg.PollInterval, 200*time.Millisecond),
		maxBack:     orDefault(cfg.MaxBackoff, 30*time.Second),
		bits:        orDefault(cfg.Bits, qrng.DefaultBits),
		chunk:       orDefault(cfg.ChunkSize, DefaultChunkSize),
		now:         time.Now,
		baseBackoff: defaultBackoff,
		recheck:     quotaRecheck,
		own:         map[string]reservation{},
		evicted:     -1,
		auto:        cfg.Prefix == "",
	}
	switch {
	case cfg.Bits < 0 || cfg.Bits > 64:
		return nil, fmt.Errorf("redispool: FillerConfig.Bits %d outside 1..64", cfg.Bits)
	case f.chunk < MinChunkSize || f.chunk > MaxChunkSize:
		return nil, fmt.Errorf("redispool: FillerConfig.ChunkSize %d outside %d..%d", f.chunk, MinChunkSize, MaxChunkSize)
	case cfg.BatchSize < 0:
		return nil, fmt.Errorf("redispool: FillerConfig.BatchSize %d is negative", cfg.BatchSize)
	case cfg.Workers < 0:
		return nil, fmt.Errorf("redispool: FillerConfig.Workers %d is negative", cfg.Workers)
	case cfg.Target < 0 || cfg.LowMark < 0:
		return nil, fmt.Errorf("redispool: FillerConfig.Target %d or LowMark %d is negative", cfg.Target, cfg.LowMark)
	case cfg.HeartbeatTTL < 0 || cfg.PollInterval < 0 || cfg.MaxBackoff < 0:
		return nil, errors.New("redispool: FillerConfig durations must not be negative")
	}
	if f.ttl < 30*time.Millisecond {
		return nil, fmt.Errorf("redispool: FillerConfig.HeartbeatTTL %s is below 30ms", f.ttl)
	}

	// Each batch is a whole number of chunks: n*bits must be a multiple of
	// 8*chunk, so n a multiple of unit.
	unit := 8 * f.chunk / gcd(f.bits, 8*f.chunk)
	n := orDefault(cfg.BatchSize, 100_000)
	n = (n + unit - 1) / unit * unit
	if n > qrng.MaxSamples {
		n = qrng.MaxSamples / unit * unit // unit <= 8*MaxChunkSize < MaxSamples
	}
	f.batchN = n
	f.batchBytes = n * f.bits / 8
	f.batchChunks = f.batchBytes / f.chunk
	f.tester, f.replay = health.ForBits(f.bits), replay.ForBatch(f.batchBytes, f.bits) // as a qrng.Source's
	f.batchBits = int64(n) * int64(f.bits)

	target := orDefault(cfg.Target, DefaultTarget)
	low := orDefault(cfg.LowMark, target/2)
	if low > target {
		return nil, fmt.Errorf("redispool: FillerConfig.LowMark %d above Target %d", low, target)
	}
	cs := int64(f.chunk)
	f.high = max(1, (target+cs-1)/cs)
	f.low = min(f.high, max(1, (low+cs-1)/cs))

	limit := orDefault(cfg.QuotaBits, qrng.DefaultQuotaBits)
	if limit >= 0 && limit < f.batchBits {
		return nil, fmt.Errorf("redispool: FillerConfig.QuotaBits %d is less than one batch (%d values of %d bits)", limit, f.batchN, f.bits)
	}
	if cfg.DailyBits > 0 && cfg.DailyBits < f.batchBits {
		return nil, fmt.Errorf("redispool: FillerConfig.DailyBits %d is less than one batch (%d values of %d bits)", cfg.DailyBits, f.batchN, f.bits)
	}
	f.meter = meter{rdb: f.rdb, keys: f.keys, limit: limit, daily: cfg.DailyBits}

	hc, own := observingClient(cfg.HTTPClient)
	f.ownTransport = own
	client, err := qrng.NewClient(qrng.ClientConfig{Token: cfg.Token, BaseURL: cfg.BaseURL,
		HTTPClient: hc,
		MaxRetries: -1}) // one reservation per request: retries are ours
	if err != nil {
		return nil, err
	}
	f.client = client
	if f.log == nil {
		f.log = slog.Default()
	}
	host, _ := os.Hostname()
	if f.id == "" {
		f.id = fmt.Sprintf("%s-%d-%s", orDefault(host, "host"), os.Getpid(), randomHex(2))
	}
	f.info = fmt.Sprintf("host=%s pid=%d started=%s bits=%d chunk=%d batch=%d",
		host, os.Getpid(), time.Now().UTC().Format(time.RFC3339), f.bits, f.chunk, f.batchN)
	return f, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ID returns the filler's id, as its heartbeat key and logs show it.
func (f *Filler) ID() string { return f.id }

// Stats returns a snapshot of the Filler's counters.
func (f *Filler) Stats() FillerStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.BytesPushed = st.Chunks * int64(f.chunk)
	st.QuotaBlocked = f.block.kind == blockQuota
	st.DailyBlocked = f.block.kind == blockDaily
	st.Failing = strings.HasPrefix(f.stateLocked(), "failing ")
	return st
}

// Run fills the pool until ctx ends, then returns nil. A batch already
// fetched when ctx ends is still pushed, whole; requests in flight are
// cancelled (their bits stay counted: the service may have served them). On
// its way out Run removes the filler's heartbeat.
//
// Run fails at once, before spending anything, if Redis cannot be reached
// when it starts, if its settings would lose the pool (an eviction policy,
// too small a maxmemory), or if the pool was set up with another chunk
// size, bit width, quota or daily rule; later it fails only for failures
// that retrying cannot mend (no token, token refused, request refused,
// Redis out of memory or evicting the pool, another filler's settings);
// other trouble (Redis or the service down, bad batches) is logged and
// retried with backoff.
func (f *Filler) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("redispool: Filler.Run is already running")
	}
	defer f.running.Store(false)
	if err := f.ready(ctx); err != nil {
		return fmt.Errorf("redispool: filler %s: %w", f.id, err)
	}
	if err := f.checkRedis(ctx, true); err != nil {
		return fmt.Errorf("redispool: filler %s: %w", f.id, err)
	}
	if err := f.beat(ctx); err != nil {
		return fmt.Errorf("redispool: filler %s: %w", f.id, err)
	}
	f.prune(ctx)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.heartbeat(gctx) })
	g.Go(func() error {
		// The workers start once the month's count is known: until then
		// they could reserve nothing, and OnStart sees the budget before
		// this filler spends.
		if err := f.start(gctx); err != nil {
			return err
		}
		for range f.workers {
			g.Go(func() error { return f.worker(gctx) })
		}
		return nil
	})
	err := g.Wait()

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	f.leave(lctx)
	if f.ownTransport != nil {
		f.ownTransport.CloseIdleConnections()
	}
	f.log.Info("redispool: filler stopped", "filler", f.id)
	if err != nil {
		return fmt.Errorf("redispool: filler %s stopped: %w", f.id, err)
	}
	return nil
}

// start waits until the month's count is known (retrying while the
// service's usage cannot be read), then logs the filler's plan and calls
// OnStart.
func (f *Filler) start(ctx context.Context) error {
	for failures := 1; ctx.Err() == nil; failures++ {
		b, err := f.Budget(ctx)
		if fatal(err) {
			f.log.Error("redispool: filler stops", "filler", f.id, "error", err.Error())
			return err
		}
		if err == nil {
			if f.onStart != nil {
				f.onStart(b)
			}
			f.log.Info("redispool: filler started", "filler", f.id, "pool", f.keys.pool,
				"chunk_bytes", f.chunk, "batch_values", f.batchN, "bits", f.bits,
				"target_bytes", f.high*int64(f.chunk), "low_bytes", f.low*int64(f.chunk),
				"quota_bits", b.QuotaLimit, "used_bits", b.QuotaUsed, "daily_share_bits", b.DailyShare,
				"days_left", b.DaysLeft)
			return nil
		}
		sleepCtx(ctx, f.backoff(failures, err))
	}
	return nil
}

// fatal reports whether err is one that retrying cannot mend: the token
// missing or refused, a request refused, Redis settings that lose the pool.
func fatal(err error) bool {
	return errors.As(err, new(stopError)) || errors.Is(err, qrng.ErrNoToken) ||
		errors.Is(err, qrng.ErrUnauthorized) || errors.Is(err, qrng.ErrBadRequest)
}
