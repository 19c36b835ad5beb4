package main

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/qrng-go/qrng/redispool"
	"github.com/redis/go-redis/v9"
)

// fetchFlags are the flags of every command that fetches numbers and
// writes them out (bytes, ints, floats).
type fetchFlags struct {
	emulator bool
	fallback string
	bits     int
	pool     redisFlags
	out      string // -o FILE, or "" for stdout
	verbose  bool   // -v: say what was fetched and served
	seeded   seededFlags

	policy   qrng.FallbackPolicy // from fallback, set by check
	keyGiven bool                // -key was on the command line
}

func (f *fetchFlags) define(fs *flag.FlagSet) {
	f.pool.define(fs)
	fs.BoolVar(&f.emulator, "emulator", false, "use the built-in emulator even if QCI_TOKEN is set (numbers are NOT quantum)")
	fs.StringVar(&f.fallback, "fallback", "never", "when crypto/rand may stand in: never, quota or error")
	fs.IntVar(&f.bits, "bits", qrng.DefaultBits, "width in bits of each value fetched, 1..64")
	fs.StringVar(&f.out, "o", "", "write to `FILE` instead of stdout, whole or not at all")
	fs.BoolVar(&f.verbose, "v", false, "at the end, say on stderr how many bits were fetched and bytes served")
	f.seeded.define(fs)
}

func (f *fetchFlags) check(given map[string]bool) error {
	if f.bits < 1 || f.bits > 64 {
		return usagef("-bits %d outside 1..64", f.bits)
	}
	if f.keyGiven = given["key"]; f.keyGiven && f.pool.key == "" {
		return usagef("-key: want a prefix (omit -key for %q)", redispool.DefaultPrefix)
	}
	if given["o"] {
		if f.out == "" {
			return usagef("-o: want a file name")
		}
		if err := checkOutFile(f.out); err != nil {
			return err
		}
	}
	switch f.fallback {
	case "never":
		f.policy = qrng.FallbackNever
	case "quota":
		f.policy = qrng.FallbackOnQuota
	case "error":
		f.policy = qrng.FallbackOnError
	default:
		return usagef("-fallback %q: want never, quota or error", f.fallback)
	}
	return f.seeded.check(given)
}

// backend is where numbers come from: the service, the emulator, or a
// shared pool.
type backend struct {
	token, baseURL string
	srv            *qrngtest.Server    // the in-process emulator, or nil
	pool           *redispool.Consumer // the pool's consumer, or nil
	chunk          int                 // the pool's chunk size
	rdb            redis.UniversalClient
}

func (b *backend) close() {
	if b.srv != nil {
		b.srv.Close()
	}
	if b.rdb != nil {
		b.rdb.Close()
	}
}

// token is $QCI_TOKEN without the blanks around it: a token is never
// blank, so one of only spaces counts as none, and a pasted one with a
// stray space or newline still works.
func (e *env) token() string { return strings.TrimSpace(e.getenv("QCI_TOKEN")) }

// serviceURL is the service's address from QCI_API_URL, checked.
func (e *env) serviceURL() (string, error) {
	u := e.getenv("QCI_API_URL")
	if u == "" {
		return qrng.DefaultBaseURL, nil
	}
	if _, err := qrng.NewClient(qrng.ClientConfig{BaseURL: u}); err != nil { // checks the address only
		return "", usagef("QCI_API_URL: %s", bare(err))
	}
	return u, nil
}

// backend picks the service when a token is set, else the emulator, and
// says so on stderr when the numbers will not be quantum.
func (e *env) backend(f *fetchFlags) (*backend, error) {
	if f.emulator && f.pool.given {
		return nil, usagef("%s", errNoPoolWithEmulator)
	}
	if f.emulator && f.keyGiven {
		return nil, usagef("-key %s names a pool, and -emulator uses none", f.pool.key)
	}
	if !f.emulator { // -emulator wins over $QRNG_REDIS_URL
		opts, err := f.pool.resolve(e, false)
		if err != nil {
			return nil, err
		}
		if opts != nil {
			return e.poolBackend(opts, f.pool.key) // no token, no notice: the bytes are the service's
		}
		if f.keyGiven {
			return nil, usagef("-key %s needs a pool: give -redis URL or set QRNG_REDIS_URL", f.pool.key)
		}
	}
	if token := e.token(); token != "" && !f.emulator {
		u, err := e.serviceURL()
		if err != nil {
			return nil, err
		}
		return &backend{token: token, baseURL: u}, nil
	}
	reason := "no QCI_TOKEN set"
	if f.emulator {
		reason = "-emulator given"
	}
	fmt.Fprintf(e.stderr, "qrng: %s: using the built-in emulator; these numbers are NOT quantum (crypto/rand)\n", reason)
	srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: -1}) // no monthly quota: it is not the service
	return &backend{token: srv.Token, baseURL: srv.URL, srv: srv}, nil
}

// sourceConfig is the Source's configuration. A bounded command (batch >
// 0 values) fetches on demand only, so that it asks for nothing ahead; a
// stream (batch 0) prefetches. The emulator has no monthly meter.
//
// A batch of a million values can take longer than the library's 10 s
// wait on a slow link, so the command waits up to waitTimeout: a service
// that fails ends the wait sooner, through the client's retries (each
// attempt bounded), and the user can always interrupt.
func (e *env) sourceConfig(f *fetchFlags, b *backend, batch int) qrng.Config {
	cfg := qrng.Config{Token: b.token, BaseURL: b.baseURL, Bits: f.bits, Fallback: f.policy,
		WaitTimeout: waitTimeout, Logger: newLogger(e.stderr)}
	if batch > 0 {
		cfg.BatchSize, cfg.OnDemand, cfg.Workers = batch, true, 1
	}
	if b.srv != nil {
		cfg.QuotaBits = -1
	}
	if b.pool != nil {
		// Whole chunks per batch: as many as a bounded command needs, split
		// evenly over as few batches as a batch's limit allows (so that
		// it pops at most a chunk's tail more than it serves), 12 for a
		// stream. Bits only sizes the batch here.
		chunks := int64(12)
		if batch > 0 {
			need := max(1, (needBytes(batch, f.bits)+int64(b.chunk)-1)/int64(b.chunk))
			most := max(1, int64(qrng.MaxSamples)*8/int64(b.chunk)) // a batch of 64-bit values
			requests := (need + most - 1) / most
			chunks = (need + requests - 1) / requests
		}
		cfg.Upstream, cfg.Bits = b.pool, 64
		cfg.BatchSize = int(chunks) * b.chunk / 8
	}
	return cfg
}

const waitTimeout = 2 * time.Minute

// open starts a Source for f; see sourceConfig for batch.
func (e *env) open(f *fetchFlags, batch int) (*qrng.Source, *backend, error) {
	b, err := e.backend(f)
	if err != nil {
		return nil, nil, err
	}
	return qrng.NewSource(e.sourceConfig(f, b, batch)), b, nil
}

// finish closes the source and reports fallback use on stderr, and with
// -v what was fetched and served.
func (e *env) finish(src *qrng.Source, b *backend, f *fetchFlags) {
	src.Close() // first: no request is in flight when the counters are read
	st := src.Stats()
	fetched := fetchedBits(st, b)
	b.close()
	if st.FallbackBytes > 0 {
		fmt.Fprintf(e.stderr, "qrng: %d of %d bytes came from crypto/rand, not the quantum service (last error: %s)\n",
			st.FallbackBytes, st.FallbackBytes+st.QuantumBytes, bare(st.LastError))
	}
	if f.verbose {
		fmt.Fprintf(e.stderr, "qrng: fetched %d bits (%s) from %s; served %s\n",
			fetched, plural((fetched+7)/8, "byte"), b.name(), plural(st.QuantumBytes+st.FallbackBytes, "byte"))
	}
}

// fetchedBits is what a run took from where its numbers come from, in
// bits: the one place that counts it. From the service or the emulator,
// the local meter's count (Stats.QuotaBitsUsed: n_samples x n_bits of
// every request answered with 200, the Source's own, since the command
// does not sync the meter with the service); from a pool, every byte of
// the chunks the consumer popped, served or not, those it erased as
// stale, foreign or unreplicated included.
func fetchedBits(st qrng.Stats, b *backend) int64 {
	if b.pool != nil {
		cs := b.pool.Stats()
		erased := (cs.Stale + cs.Foreign + cs.Unreplicated) * int64(b.chunk) // popped and erased unserved, about a chunk each
		return 8 * (cs.Bytes + cs.Discarded + erased)
	}
	return st.QuotaBitsUsed
}

// name says where the numbers came from, for messages.
func (b *backend) name() string {
	switch {
	case b.pool != nil:
		return fmt.Sprintf("the pool (%s)", plural(b.pool.Stats().Chunks, "chunk"))
	case b.srv != nil:
		return "the built-in emulator"
	}
	return "the service"
}

// plural is "1 chunk", "2 chunks".
func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// batchFor is the batch, in values of bits each, for a command that needs
// need bytes: just enough, split evenly over as few requests as the
// service's limit allows, so that the last request is not mostly waste.
func batchFor(need int64, bits int) int {
	values := (min(need, maxNeed)*8 + int64(bits) - 1) / int64(bits)
	requests := (values + qrng.MaxSamples - 1) / qrng.MaxSamples
	return int((values + requests - 1) / requests)
}

// maxNeed caps the byte counts commands compute (a petabyte, far beyond
// any quota), so that the arithmetic on them cannot overflow.
const maxNeed = 1 << 50

// needBytes is the bytes count values of width bits each take, capped at
// maxNeed.
func needBytes(count, width int) int64 {
	return (min(int64(count), maxNeed)*int64(width) + 7) / 8
}

// bare is err's text on one line without the package prefixes ("qrng: ",
// "redispool: ") of the errors it wraps, for messages that add their own
// "qrng: " once.
func bare(err error) string {
	if err == nil {
		return "none"
	}
	return bareText(err.Error())
}

// bareText is bare for a message's text.
func bareText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for {
		t := pkgPrefix.ReplaceAllString(s, "$1")
		if t == s {
			return s
		}
		s = t
	}
}

// pkgPrefix is a package's prefix at the start of an error's text or of
// a wrapped error's.
var pkgPrefix = regexp.MustCompile(`(^|: |; |\()(qrng|redispool): `)
