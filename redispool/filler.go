package redispool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/internal/health"
	"github.com/qrng-go/qrng/internal/replay"
	"golang.org/x/sync/errgroup"
)

// Sizes of chunks, the unit a consumer takes from the pool.
const (
	DefaultChunkSize = 16 << 10
	MinChunkSize     = health.Window // one window of the Adaptive Proportion Test
	MaxChunkSize     = 64 << 10
)

// DefaultTarget is the pool's default high mark in bytes.
const DefaultTarget = 64 << 20

const (
	pushMarkerTTL  = 5 * time.Minute  // how long a batch's push marker lives
	pushTimeout    = 30 * time.Second // one push, which completes even after a stop
	leaveTimeout   = 5 * time.Second
	quotaRecheck   = time.Minute // how often a filler stopped by the quota looks again
	maxRetryAfter  = 10 * time.Minute
	defaultBackoff = 100 * time.Millisecond
)

// FillerConfig configures a Filler. Every zero field means its default.
type FillerConfig struct {
	// Redis holds the pool. Required.
	Redis Redis
	// Prefix starts every key of the pool. Default DefaultPrefix ("qrng").
	Prefix string

	// Token is the API token from QCI. Default: $QCI_TOKEN. Only fillers
	// need it; consumers never do.
	Token string
	// BaseURL is the service's address. Default: $QCI_API_URL, else
	// qrng.DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of the Filler's own.
	HTTPClient *http.Client

	// Bits is the width of each value requested, 1..64. Default 16.
	Bits int
	// BatchSize is the number of values per request. Default 100,000. It
	// is rounded up so that each batch is a whole number of chunks (and
	// down, if need be, to stay within qrng.MaxSamples).
	BatchSize int
	// ChunkSize is the size of each chunk in bytes, MinChunkSize (512) to
	// MaxChunkSize (64 KiB). Default DefaultChunkSize (16 KiB). Every filler
	// and consumer of a pool should use the same size.
	ChunkSize int
	// Target is the pool's high mark in bytes: a top-up fills the pool up
	// to it. Default DefaultTarget (64 MiB); at least one chunk.
	Target int64
	// LowMark is the pool's low mark in bytes: a top-up starts when the
	// pool holds less. Default Target/2; at most Target.
	LowMark int64
	// QuotaBits is the monthly allowance shared by every filler of the
	// pool, in bits. Default qrng.DefaultQuotaBits; negative: count, but
	// never refuse. It must cover at least one batch.
	QuotaBits int64
	// SkipUsageSync, when set, starts a month's counter at zero. By
	// default, a filler that finds the counter missing (a new month, or
	// Redis restarted without persistence) first raises it to the
	// service's own count for the month (Client.Usage).
	SkipUsageSync bool
	// Workers is the number of concurrent requests. Default 2.
	Workers int

	// ID names the filler in its heartbeat key and its logs. Default:
	// host name, process id and a random suffix.
	ID string
	// HeartbeatTTL is how long the heartbeat lives unless refreshed; it is
	// refreshed three times per TTL. Consumers see an empty pool with no
	// live heartbeat as ErrPoolEmpty. Default 5 s.
	HeartbeatTTL time.Duration
	// PollInterval is how often the pool's length is checked between
	// top-ups. Default 200 ms.
	PollInterval time.Duration
	// MaxBackoff caps the pause after failures. Default 30 s.
	MaxBackoff time.Duration
	// Logger receives top-ups (Info) and trouble (Warn). Default:
	// slog.Default(). Tokens and random bytes are never logged.
	Logger *slog.Logger
}

// FillerStats is a snapshot of a Filler's counters.
type FillerStats struct {
	Batches      int64 // batches pushed
	Chunks       int64 // chunks pushed
	Rejected     int64 // batches refused by the health tests or the replay check
	Failures     int64 // requests that gave no usable batch (rejected ones included)
	PushErrors   int64 // batches dropped because the push failed
	RefundedBits int64 // bits given back to the shared meter (requests with no answer)
	QuotaBlocked bool  // filling is paused because the monthly quota is spent
}

// A Filler keeps a pool in Redis topped up with health-checked chunks of
// random bytes from the uQRNG service, reserving every request's bits on
// the pool's shared monthly quota meter first. Several Fillers (for
// availability) may fill one pool: between them they never exceed the
// quota.
//
// A Filler's methods are safe for concurrent use, though Run runs once at
// a time. The zero value is not usable: make Fillers with NewFiller.
type Filler struct {
	rdb    Redis
	keys   keys
	client *qrng.Client
	meter  meter
	log    *slog.Logger
	id     string
	info   string
	tester health.Tester
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
	now         func() time.Time
	baseBackoff time.Duration
	recheck     time.Duration
	beforePush  func()              // runs between the checks and the push
	afterPush   func(erased []byte) // sees the batch buffer after it is erased

	running atomic.Bool
	beatMu  sync.Mutex // one beat at a time, so the last state computed is the last written

	mu         sync.Mutex // guards everything below
	filling    bool       // a top-up is under way
	inflight   int64      // chunks being fetched
	top        topUp
	quotaBlock bool          // the last reservation was refused
	quotaEnd   time.Time     // when the month (or the service's refusal) ends
	quotaRetry time.Time     // when to try reserving again
	lastUsed   int64         // the month's count at the last reservation
	redisDown  bool          // the last Redis call failed
	beaten     string        // the state of the last heartbeat
	replay     *replay.Index // anchors of the recent batches, as a qrng.Source keeps them
	stats      FillerStats
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
	f := &Filler{
		rdb:         cfg.Redis,
		keys:        newKeys(cfg.Prefix),
		log:         cfg.Logger,
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
	f.meter = meter{rdb: f.rdb, keys: f.keys, limit: limit}

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
	st.QuotaBlocked = f.quotaBlock
	return st
}

// Run fills the pool until ctx ends, then returns nil. A batch already
// fetched when ctx ends is still pushed, whole; requests in flight are
// cancelled (their bits are given back unless a 200 answer had begun). On its way out Run removes the filler's heartbeat. Run fails at
// once if Redis cannot be reached when it starts, and later only for
// failures that retrying cannot mend (no token, token refused, request
// refused); other trouble (Redis or the service down, bad batches) is
// logged and retried with backoff.
func (f *Filler) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("redispool: Filler.Run is already running")
	}
	defer f.running.Store(false)
	if err := f.beat(ctx); err != nil {
		return fmt.Errorf("redispool: filler %s: %w", f.id, err)
	}
	f.prune(ctx)
	f.log.Info("redispool: filler started", "filler", f.id, "pool", f.keys.pool,
		"chunk_bytes", f.chunk, "batch_values", f.batchN, "bits", f.bits,
		"target_bytes", f.high*int64(f.chunk), "low_bytes", f.low*int64(f.chunk), "quota_bits", f.meter.limit)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { f.heartbeat(gctx); return nil })
	for range f.workers {
		g.Go(func() error { return f.worker(gctx) })
	}
	err := g.Wait()

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	if lerr := leaveScript.Run(lctx, f.rdb, []string{f.keys.filler(f.id), f.keys.fillers, f.keys.alive, f.keys.active, f.keys.spent}, f.id).Err(); lerr != nil {
		f.log.Warn("redispool: could not remove the heartbeat; it expires by itself", "filler", f.id, "error", lerr.Error())
	}
	if f.ownTransport != nil {
		f.ownTransport.CloseIdleConnections()
	}
	f.log.Info("redispool: filler stopped", "filler", f.id)
	return err
}

// beat refreshes the heartbeat, the liveness or quota key and the pool's
// metadata.
func (f *Filler) beat(ctx context.Context) error {
	f.beatMu.Lock()
	defer f.beatMu.Unlock()
	state := f.state()
	err := heartbeatScript.Run(ctx, f.rdb,
		[]string{f.keys.filler(f.id), f.keys.fillers, f.keys.alive, f.keys.meta, f.keys.spent, f.keys.active},
		f.ttl.Milliseconds(), f.id, f.info, state, f.chunk, f.bits, f.meter.limit).Err()
	if err != nil {
		return fmt.Errorf("redispool: heartbeat on %s: %w", f.keys.filler(f.id), err)
	}
	f.mu.Lock()
	f.beaten = state
	f.mu.Unlock()
	return nil
}

// state is what the heartbeat says: "ok" while the filler can fill (or
// has a batch in flight), "quota <unix seconds>" while the quota stops it.
func (f *Filler) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stateLocked()
}

func (f *Filler) stateLocked() string {
	if f.quotaBlock && f.inflight == 0 && f.now().Before(f.quotaEnd) {
		return "quota " + strconv.FormatInt(f.quotaEnd.Unix(), 10)
	}
	return "ok"
}

// announce beats at once if the state changed since the last beat, so
// consumers learn of a quota stop (or its end) without waiting.
func (f *Filler) announce(ctx context.Context) {
	f.mu.Lock()
	changed := f.stateLocked() != f.beaten
	f.mu.Unlock()
	if changed {
		f.beat(ctx)
	}
}

func (f *Filler) heartbeat(ctx context.Context) {
	t := time.NewTicker(f.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.redisResult(ctx, f.beat(ctx))
	}
}

// prune drops from the sets of fillers and active fillers the ids whose
// heartbeat has expired (fillers that were killed rather than stopped).
func (f *Filler) prune(ctx context.Context) {
	for _, set := range []string{f.keys.fillers, f.keys.active} {
		ids, err := f.rdb.SMembers(ctx, set).Result()
		if err != nil {
			return
		}
		for _, id := range ids {
			if n, err := f.rdb.Exists(ctx, f.keys.filler(id)).Result(); err == nil && n == 0 {
				f.rdb.SRem(ctx, set, id)
			}
		}
	}
}

// redisResult logs Redis trouble once when it starts and once when it ends.
func (f *Filler) redisResult(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	was := f.redisDown
	f.redisDown = err != nil
	f.mu.Unlock()
	switch {
	case err != nil && !was:
		f.log.Warn("redispool: Redis unreachable; filling paused", "filler", f.id, "error", err.Error())
	case err == nil && was:
		f.log.Info("redispool: Redis reachable again", "filler", f.id)
	}
}

// worker fetches batches while a top-up is wanted, until ctx ends.
func (f *Filler) worker(ctx context.Context) error {
	buf := make([]byte, 0, f.batchBytes)
	failures := 0
	for ctx.Err() == nil {
		if d := f.quotaPause(); d > 0 {
			sleepCtx(ctx, d)
			continue
		}
		fetch, err := f.plan(ctx)
		f.redisResult(ctx, err)
		if err != nil {
			failures++
			sleepCtx(ctx, f.backoff(failures, nil))
			continue
		}
		if !fetch {
			sleepCtx(ctx, f.poll)
			continue
		}
		err = f.fillOne(ctx, buf)
		f.mu.Lock()
		f.inflight -= int64(f.batchChunks)
		f.mu.Unlock()
		f.announce(ctx)
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errQuotaSpent), errors.Is(err, qrng.ErrQuotaExceeded):
			// blockQuota logged it; quotaPause paces the next try
		case errors.Is(err, qrng.ErrNoToken), errors.Is(err, qrng.ErrUnauthorized), errors.Is(err, qrng.ErrBadRequest):
			f.log.Error("redispool: filler stops", "filler", f.id, "error", err.Error())
			return fmt.Errorf("redispool: filler %s stopped: %w", f.id, err)
		default:
			failures++
			if failures&(failures-1) == 0 { // 1, 2, 4, 8...: an outage does not flood the log
				f.log.Warn("redispool: batch failed", "filler", f.id, "failures_in_a_row", failures, "error", err.Error())
			}
			sleepCtx(ctx, f.backoff(failures, err))
		}
	}
	return nil
}

// plan reads the pool's length and decides whether this worker fetches a
// batch: a top-up starts below the low mark and goes on until the pool
// plus the batches in flight reach the high mark.
func (f *Filler) plan(ctx context.Context) (bool, error) {
	n, err := f.rdb.LLen(ctx, f.keys.pool).Result()
	if err != nil {
		return false, fmt.Errorf("redispool: length of %s: %w", f.keys.pool, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.filling {
		if n >= f.low {
			return false, nil
		}
		f.filling = true
		f.top = topUp{start: f.now()}
		f.log.Debug("redispool: top-up starts", "filler", f.id, "pooled_bytes", n*int64(f.chunk))
	}
	if n+f.inflight >= f.high {
		if f.inflight == 0 {
			f.filling = false
			f.log.Info("redispool: pool topped up", "filler", f.id,
				"pooled_bytes", n*int64(f.chunk), "added_bytes", f.top.bytes, "batches", f.top.batches,
				"took", f.now().Sub(f.top.start).Round(time.Millisecond), "quota_used_bits", f.lastUsed)
		}
		return false, nil
	}
	f.inflight += int64(f.batchChunks)
	return true, nil
}

// errQuotaSpent: the shared meter refused a reservation.
var errQuotaSpent = errors.New("redispool: monthly quota spent")

// quotaPause is how long to wait before trying to reserve again.
func (f *Filler) quotaPause() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.quotaBlock {
		return 0
	}
	now := f.now()
	if !now.Before(f.quotaEnd) {
		f.quotaBlock = false // the month turned; the next beat says so
		return 0
	}
	return f.quotaRetry.Sub(now)
}

// blockQuota pauses filling until the quota may have renewed. The worker
// then announces it (once no batch is in flight).
func (f *Filler) blockQuota(ctx context.Context, now, until time.Time, used int64) error {
	f.mu.Lock()
	first := !f.quotaBlock
	f.quotaBlock = true
	f.quotaEnd = until
	f.quotaRetry = now.Add(min(until.Sub(now), f.recheck))
	f.mu.Unlock()
	if first {
		f.log.Warn("redispool: monthly quota spent; filling paused", "filler", f.id,
			"used_bits", used, "quota_bits", f.meter.limit, "until", until.UTC().Format(time.RFC3339))
	}
	return errQuotaSpent
}

// reserve counts one batch on the shared meter, first raising a missing
// counter to the service's own count unless SkipUsageSync.
func (f *Filler) reserve(ctx context.Context, now time.Time) (reservation, error) {
	needExisting := !f.noSync
	for {
		r, status, used, err := f.meter.reserve(ctx, now, f.batchBits, needExisting)
		if err != nil {
			return r, err
		}
		switch status {
		case 1:
			f.mu.Lock()
			f.quotaBlock = false
			f.lastUsed = used
			f.mu.Unlock()
			return r, nil
		case 0:
			return r, f.blockQuota(ctx, now, nextMonth(now), used)
		}
		f.syncUsage(ctx, now)
		needExisting = false
	}
}

// syncUsage raises the month's counter to what the service says was used.
func (f *Filler) syncUsage(ctx context.Context, now time.Time) {
	first := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	used, err := f.client.Usage(ctx, first, now)
	if err != nil {
		f.log.Warn("redispool: could not read the service's usage; the month's counter starts at zero",
			"filler", f.id, "error", err.Error())
		return
	}
	if n, err := f.meter.raise(ctx, now, used); err == nil {
		f.log.Info("redispool: month's counter started from the service's usage", "filler", f.id, "used_bits", n)
	}
}

// fillOne reserves, fetches, checks, cuts and pushes one batch. buf holds
// the packed batch and is erased before fillOne returns.
func (f *Filler) fillOne(ctx context.Context, buf []byte) error {
	now := f.now()
	r, err := f.reserve(ctx, now)
	if err != nil {
		return err
	}
	actx, answer := withAnswerSeen(ctx)
	vals, err := f.client.RandomNumbers(actx, f.batchN, f.bits)
	if err != nil {
		return f.fetchFailed(ctx, now, r, answer.ok.Load(), err)
	}
	p := bitpack.New(f.bits, buf[:0])
	for _, v := range vals {
		p.Add(v)
	}
	clear(vals)
	b := p.Bytes()
	defer func() {
		clear(b)
		if f.afterPush != nil {
			f.afterPush(b)
		}
	}()
	if err := f.check(b); err != nil {
		f.mu.Lock()
		f.stats.Failures++
		f.stats.Rejected++
		f.mu.Unlock()
		return err
	}
	if f.beforePush != nil {
		f.beforePush()
	}
	return f.push(ctx, b)
}

// fetchFailed applies the refund rule: a request that got no 200 answer (a
// transport failure before the response, an error status, a stop before
// the answer) cannot have been served, so its bits go back; a 200 answer
// that was cut, malformed or is rejected stays counted. answered says
// whether a 200 status arrived. When the service itself says the quota is
// spent, the shared counter is raised to the limit so that every filler
// stops.
func (f *Filler) fetchFailed(ctx context.Context, now time.Time, r reservation, answered bool, err error) error {
	f.mu.Lock()
	f.stats.Failures++
	f.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	if errors.Is(err, qrng.ErrQuotaExceeded) {
		until := nextMonth(now)
		var ae *qrng.APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			until = now.Add(ae.RetryAfter)
		}
		used := f.meter.limit
		if used >= 0 {
			used, _ = f.meter.raise(dctx, now, used)
		} else {
			f.refund(dctx, r)
		}
		f.blockQuota(ctx, now, until, used)
		return err
	}
	if !answered {
		f.refund(dctx, r)
	}
	return err
}

// refund gives a reservation back to the shared meter.
func (f *Filler) refund(ctx context.Context, r reservation) {
	if err := f.meter.refund(ctx, r); err != nil {
		f.log.Warn("redispool: refund failed; the bits stay counted", "filler", f.id, "error", err.Error())
		return
	}
	f.mu.Lock()
	f.stats.RefundedBits += r.bits
	f.mu.Unlock()
}

// check runs the health tests and the replay check on a packed batch.
func (f *Filler) check(b []byte) error {
	if err := f.tester.Check(b); err != nil {
		return fmt.Errorf("%w: %v", qrng.ErrRejectedBatch, err)
	}
	anchors := f.replay.Anchors(b) // outside the lock: it reads the whole batch
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.replay.Remember(anchors); i >= 0 {
		return fmt.Errorf("%w: it repeats bytes of a recent batch (replay, anchor %d)", qrng.ErrRejectedBatch, i)
	}
	return nil
}

// push appends b's chunks to the pool in one script, which Redis runs
// whole or not at all. A push is never retried: if its answer is lost the
// batch may or may not be in the pool, but never twice. It completes even
// if ctx ends meanwhile, so that a fetched batch is not lost at a stop.
func (f *Filler) push(ctx context.Context, b []byte) error {
	args := make([]any, 1, 1+len(b)/f.chunk)
	args[0] = pushMarkerTTL.Milliseconds()
	for off := 0; off+f.chunk <= len(b); off += f.chunk {
		args = append(args, b[off:off+f.chunk])
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	err := pushScript.Run(pctx, f.rdb, []string{f.keys.pool, f.keys.pushed(randomHex(16))}, args...).Err()
	clear(args)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.stats.PushErrors++
		return fmt.Errorf("redispool: push to %s failed, batch dropped: %w", f.keys.pool, err)
	}
	f.stats.Batches++
	f.stats.Chunks += int64(len(args) - 1)
	f.top.batches++
	f.top.bytes += int64(len(b))
	return nil
}

// backoff is the pause after the failures-th failure in a row: full
// jitter over a window doubling from 100 ms up to MaxBackoff, but no less
// than the service's Retry-After (capped at ten minutes).
func (f *Filler) backoff(failures int, err error) time.Duration {
	window := f.maxBack
	if s := min(failures-1, 30); f.baseBackoff<<s < window {
		window = f.baseBackoff << s
	}
	d := time.Duration(mrand.Int64N(int64(window) + 1))
	var ae *qrng.APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		d = max(d, min(ae.RetryAfter, maxRetryAfter))
	}
	return d
}

// sleepCtx pauses for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
