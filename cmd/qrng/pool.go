package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/qrng-go/qrng/redispool"
	"github.com/redis/go-redis/v9"
)

// redactURL keeps the user information of a Redis URL (its password) out
// of a message, in the forms a message may hold it: as typed, quoted by
// Go, or percent-encoded.
func redactURL(msg, raw string) string {
	i := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if i < 0 || at <= i+3 {
		return msg
	}
	info := raw[i+3 : at]
	forms := []string{info, strings.Trim(strconv.Quote(info), `"`), url.QueryEscape(info)}
	if _, pw, ok := strings.Cut(info, ":"); ok && pw != "" {
		forms = append(forms, pw, strings.Trim(strconv.Quote(pw), `"`), url.QueryEscape(pw))
	}
	for _, f := range forms {
		if f != "" {
			msg = strings.ReplaceAll(msg, f, "[REDACTED]")
		}
	}
	return msg
}

// quietRedis stops go-redis's own logger from printing on stderr: the
// command reports each failure once, as one line.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// quiet silences go-redis, once, before the command makes any client.
func quiet() { quietOnce.Do(func() { redis.SetLogger(quietRedis{}) }) }

// poolBackend opens a consumer of the pool, for bytes, ints and floats.
// Its chunk size is the pool's, which the README's consumer ACL may read;
// where it is not known yet, the first Fetch learns it from the first
// chunk (and pops one chunk only), so a guess here wastes nothing.
func (e *env) poolBackend(t *redisTarget, key string) (*backend, error) {
	rdb, err := e.openRedis(t)
	if err != nil {
		return nil, err
	}
	c, err := redispool.NewConsumer(redispool.ConsumerConfig{Redis: rdb, Prefix: key})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	chunk, err := c.ChunkSize(e.ctx)
	if err != nil || chunk == 0 {
		chunk = redispool.DefaultChunkSize // Redis down: Fetch reports it
	}
	return &backend{pool: c, chunk: chunk, rdb: rdb}, nil
}

// poolFillCmd is 'qrng pool fill'.
type poolFillCmd struct {
	redisFlags
	target string
	bits   int
	quota  int64
	chunk  string
	daily  string
	addr   string // -metrics
	emu    bool   // -emulator

	targetN int64
	chunkN  int64
	dailyN  int64 // FillerConfig.DailyBits
}

func (c *poolFillCmd) define(fs *flag.FlagSet) {
	c.redisFlags.define(fs)
	fs.StringVar(&c.target, "target", "2MiB", "bytes to keep in the pool (refilled when half is gone)")
	fs.IntVar(&c.bits, "bits", qrng.DefaultBits, "width in bits of each value fetched, 1..64")
	fs.Int64Var(&c.quota, "quota", qrng.DefaultQuotaBits, "bits all fillers of the pool may fetch per UTC month")
	fs.StringVar(&c.chunk, "chunk", "16KiB", "bytes per chunk, 512 to 64KiB")
	fs.StringVar(&c.addr, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics and a health check at /healthz (200 while filling)")
	fs.StringVar(&c.daily, "daily", "even", "bits all fillers may fetch per UTC day: even (the quota left over the days left), off (no daily limit), or BITS")
	fs.BoolVar(&c.emu, "emulator", false, "fill the pool from the built-in emulator, even if QCI_TOKEN is set: numbers NOT quantum, for trying a fleet")
}

func (c *poolFillCmd) check(given map[string]bool) error {
	if err := c.checkKey(given); err != nil {
		return err
	}
	var err error
	if c.targetN, _, err = parseSize(c.target); err != nil {
		return usagef("-target %q: %v", c.target, err)
	}
	if c.chunkN, _, err = parseSize(c.chunk); err != nil {
		return usagef("-chunk %q: %v", c.chunk, err)
	}
	switch {
	case c.bits < 1 || c.bits > 64:
		return usagef("-bits %d outside 1..64", c.bits)
	case c.quota < 1:
		return usagef("-quota %d: want a positive number of bits", c.quota)
	case c.chunkN < redispool.MinChunkSize || c.chunkN > redispool.MaxChunkSize:
		return usagef("-chunk %s outside 512B..64KiB", c.chunk)
	case c.targetN < c.chunkN:
		return usagef("-target %s is less than one chunk", c.target)
	}
	switch c.daily {
	case "even":
		c.dailyN = 0
	case "off":
		c.dailyN = -1
	default:
		n, err := strconv.ParseInt(c.daily, 10, 64)
		if err != nil || n < 1 {
			return usagef("-daily %q: want even, off or a positive number of bits", c.daily)
		}
		c.dailyN = n
	}
	return nil
}

func (c *poolFillCmd) run(e *env) error {
	target, err := c.resolve(e, true)
	if err != nil {
		return err
	}
	token, base := e.token(), ""
	if c.emu {
		// The emulator stands in for the service; the filler's meter
		// still keeps the -quota and -daily rules, as with the service.
		srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: -1})
		defer srv.Close()
		token, base = srv.Token, srv.URL
		fmt.Fprintln(e.stderr, "qrng: pool fill -emulator: filling the pool from the built-in emulator; these numbers are NOT quantum (crypto/rand), and the pool's consumers cannot tell")
	} else {
		if token == "" {
			return usagef("pool fill needs QCI_TOKEN: the filler is the one that talks to the service (-emulator fills from the built-in emulator)")
		}
		if base, err = e.serviceURL(); err != nil {
			return err
		}
	}
	var m *fillMetrics
	if c.addr != "" {
		if m, err = listenMetrics(c.addr); err != nil {
			return err
		}
		defer m.close()
	}
	rdb, err := e.openRedis(target)
	if err != nil {
		return err
	}
	defer rdb.Close()
	f, err := redispool.NewFiller(redispool.FillerConfig{Redis: rdb, Prefix: c.key, Token: token, BaseURL: base,
		Bits: c.bits, ChunkSize: int(c.chunkN), Target: c.targetN, QuotaBits: c.quota, DailyBits: c.dailyN,
		Logger: newLoggerAt(e.stderr, slog.LevelInfo), OnStart: func(b redispool.Budget) {
			c.started(e, b)
			if m != nil {
				m.started.Store(true)
			}
		}})
	if err != nil {
		return usagef("%s", fillerFlags.Replace(bare(err)))
	}
	if c.targetN > c.quota/8 {
		return usagef("-target %s is more than the month's quota (-quota %d bits, %d bytes): the pool could never be filled", c.target, c.quota, c.quota/8)
	}
	if m != nil {
		m.serve(f, rdb, c.key)
		fmt.Fprintf(e.stderr, "qrng: pool fill: metrics on http://%s/metrics, health on /healthz\n", m.ln.Addr())
	}
	err = f.Run(e.ctx)
	if m != nil {
		m.stopped.Store(true)
	}
	if err != nil && e.ctx.Err() == nil {
		msg := bare(err)
		if strings.Contains(msg, "FillerConfig.") {
			// A setting that conflicts with the pool's or with Redis's
			// (found before anything is spent): named by its flag.
			return usagef("pool fill: %s", fillerFlags.Replace(msg))
		}
		return fmt.Errorf("pool fill: %w", err)
	}
	return nil // stopped by SIGINT or SIGTERM: a clean stop, as serve's
}

// fillerFlags names, in the filler's configuration errors, the flag that
// set each field the user can set, not the Go field.
var fillerFlags = strings.NewReplacer("FillerConfig.QuotaBits", "-quota", "FillerConfig.ChunkSize", "-chunk",
	"FillerConfig.Target", "-target", "FillerConfig.Bits", "-bits", "FillerConfig.DailyBits", "-daily")

// started prints the line pool fill prints once filling starts: the target
// and today's share, in bytes and as shares of the month's quota.
func (c *poolFillCmd) started(e *env, b redispool.Budget) {
	month := float64(b.QuotaLimit)
	share := "no daily limit (-daily off): the month's quota may be spent in a day"
	if b.DailyShare >= 0 {
		share = fmt.Sprintf("daily share %d bytes (%.2f%% of the month; %d of its %d bits used, %d days left, today included)",
			b.DailyShare/8, 100*float64(b.DailyShare)/month, b.QuotaUsed, b.QuotaLimit, b.DaysLeft)
	}
	fmt.Fprintf(e.stderr, "qrng: pool fill: target %d bytes (%.2f%% of the month); %s\n",
		c.targetN, 100*float64(8*c.targetN)/month, share)
}

// poolStatusCmd is 'qrng pool status'.
type poolStatusCmd struct {
	redisFlags
	json bool
}

func (c *poolStatusCmd) define(fs *flag.FlagSet) {
	c.redisFlags.define(fs)
	fs.BoolVar(&c.json, "json", false, "print the status as one JSON object")
}

func (c *poolStatusCmd) check(given map[string]bool) error { return c.checkKey(given) }

func (c *poolStatusCmd) run(e *env) error {
	target, err := c.resolve(e, true)
	if err != nil {
		return err
	}
	target.noRetry() // an unreachable Redis is reported at once
	rdb, err := e.openRedis(target)
	if err != nil {
		return fmt.Errorf("pool status: %s", redactURL(bare(err), c.url))
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	st, err := redispool.ReadStatus(ctx, rdb, c.key)
	if err != nil {
		return fmt.Errorf("pool status: %s", redactURL(bare(err), c.url))
	}
	w := e.stdout
	if c.json {
		return writeStatusJSON(w, st)
	}
	if st.Prefix != redispool.DefaultPrefix && c.key == "" {
		fmt.Fprintf(w, "prefix: %s (an earlier version's default; README: \"Pools of earlier versions\")\n", st.Prefix)
	}
	fmt.Fprintf(w, "pool: %d bytes in %d chunks of %d bytes\n", st.Bytes, st.Chunks, st.ChunkSize)
	switch {
	case st.Auth == "none":
		fmt.Fprintf(w, "chunks: unauthenticated (no pool key: whoever can push to Redis can add bytes)\n")
	case st.Auth != "":
		fmt.Fprintf(w, "chunks: authenticated (%s)\n", st.Auth)
	}
	switch {
	case st.QuotaLimit < 0:
		fmt.Fprintf(w, "quota: %d bits used in %s, no limit\n", st.QuotaUsed, st.Month)
	case st.QuotaLimit == 0:
		fmt.Fprintf(w, "quota: %d bits used in %s, limit not recorded\n", st.QuotaUsed, st.Month)
	default:
		fmt.Fprintf(w, "quota: %d of %d bits used in %s (%.1f%%)\n", st.QuotaUsed, st.QuotaLimit, st.Month,
			100*float64(st.QuotaUsed)/float64(st.QuotaLimit))
	}
	when := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if st.DailyShare >= 0 {
		fmt.Fprintf(w, "today: %d of a daily share of %d bits used in %s (renews %s)\n", st.DayUsed, st.DailyShare, st.Day, when(st.DayRenews))
	} else {
		fmt.Fprintf(w, "today: %d bits used in %s, no daily limit (the day renews %s)\n", st.DayUsed, st.Day, when(st.DayRenews))
	}
	fmt.Fprintf(w, "month renews: %s (%d days left, today included)\n", when(st.MonthRenews), st.DaysLeft)
	switch {
	case st.QuotaSpentUntil.IsZero():
	case st.DailySpent:
		fmt.Fprintf(w, "daily share spent until: %s\n", when(st.QuotaSpentUntil))
	default:
		fmt.Fprintf(w, "quota spent until: %s\n", when(st.QuotaSpentUntil))
	}
	fmt.Fprintf(w, "filling: %v\n", st.Filling)
	fmt.Fprintf(w, "fillers: %d\n", len(st.Fillers))
	for _, f := range st.Fillers {
		fmt.Fprintf(w, "filler %s: %s (heartbeat %s left)\n", f.ID, f.Info, f.TTL.Round(time.Millisecond))
	}
	return nil
}

var errNoPoolWithEmulator = errors.New("-emulator and -redis exclude each other: the pool's bytes are the service's")
