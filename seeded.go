package qrng

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DefaultReseedBytes is how much a Seeded generator serves under one key
// when SeededConfig.ReseedBytes is zero: 1 MiB, for 32 bytes of seed.
const DefaultReseedBytes = 1 << 20

// clockCheckBytes is how often, in bytes of output, a Seeded generator
// with a ReseedInterval reads its clock. The hot path reads no clock: it
// only counts bytes down to the next check.
const clockCheckBytes = 4096

// SeededConfig configures a Seeded generator. Every zero field means the
// default written beside it.
type SeededConfig struct {
	// ReseedBytes is the most output one key serves: after that many
	// bytes the generator takes a fresh 32-byte seed from the Source.
	// Default DefaultReseedBytes (1 MiB); at least 8 (one Uint64).
	ReseedBytes int64
	// ReseedInterval, if set, also makes the generator reseed once its key
	// is that old. The clock is read every 4 KiB of output, not on every
	// call, so the key is replaced within 4 KiB of output after the
	// interval has passed (a generator that sits idle keeps its key until
	// it is used again). Default 0: no time limit.
	ReseedInterval time.Duration

	now func() time.Time // the clock; nil: time.Now (a test seam)
}

// SeededStats is a snapshot of a Seeded generator's counters.
type SeededStats struct {
	// Reseeds counts the seeds taken from the Source, the first included.
	Reseeds int64
	// QuantumReseeds counts those of them that the Source served from its
	// upstream (the service), not from its crypto/rand fallback. A seed
	// read while the Source's fallback byte count grew is counted as not
	// quantum: exact when the generator's goroutine is the Source's only
	// reader at that moment; with concurrent readers a quantum seed may be
	// counted as not quantum (when another reader fell back meanwhile),
	// but a crypto/rand seed is never counted as quantum.
	QuantumReseeds int64
	// FailedReseeds counts seed reads that failed (the Source returned an
	// error: FallbackNever or FallbackOnQuota with the service down, the
	// Source closed). The generator serves nothing on a stale key: see
	// Seeded.
	FailedReseeds int64
	// Bytes counts the output generated: 8 per Uint64, len(p) per Read.
	Bytes int64
	// LastError is why the last seed read failed, while the generator has
	// had no seed since; nil otherwise. Right after NewSeeded it says
	// whether the first seed could be had.
	LastError error
}

// A Seeded is a quantum-seeded generator: math/rand/v2's ChaCha8, keyed
// with 32 bytes read from a Source and rekeyed with 32 fresh bytes after
// every SeededConfig.ReseedBytes of output (and, if set, once the key is
// SeededConfig.ReseedInterval old). It implements math/rand/v2's Source
// (Uint64) and io.Reader (Read), for output far beyond the monthly quota
// at ChaCha8's speed.
//
// Its output is ChaCha8 output under a key that came from the Source: it
// is statistically and cryptographically as strong as ChaCha8 itself, and
// its numbers are quantum-seeded, not quantum. A seed is whatever the
// Source serves: from the service, mixed with crypto/rand under
// Config.Mix, or crypto/rand bytes while the Source is in fallback
// (counted in SeededStats and the Source's Stats, as every fallback byte
// is). A compromised service could choose the seeds, and so the whole
// output; Config.Mix takes that power away from it.
//
// A seed is erased from the generator's memory once the key is made
// (copies Go makes on the stack to pass it are beyond reach, as for
// rand.NewChaCha8); each key is erased when it is replaced, and the
// generator's whole state by Close. Between reseeds ChaCha8 erases its own
// key every 992 bytes of output (fast key erasure).
//
// When a seed cannot be had (the Source returns an error), the generator
// serves nothing past the reseed point: the old key is erased and Read
// returns the bytes it served before that point and the error; Uint64,
// which has no room for an error, panics with it, as Source.Uint64 does.
// Each later call tries again to take a seed, so the generator resumes
// once the Source can serve one. The errors match the Source's
// (errors.Is, for example ErrQuotaExceeded or ErrClosed).
//
// A Seeded is not safe for concurrent use, like rand.ChaCha8: make one per
// goroutine (each costs 32 bytes of the Source to make). Its zero value
// is not usable: make one with NewSeeded.
type Seeded struct {
	// left is what the current key may serve before the next checkpoint
	// (0 <= left outside a call): the hot path only counts it down.
	left int64
	c    rand.ChaCha8 // all zero while the generator has no key

	// rest is what the key may serve after the checkpoint; left+rest is
	// what it has left of budget. A checkpoint comes every clockCheckBytes
	// with an interval, else only at the end of the budget.
	rest     int64
	budget   int64     // what the current key was given; 0: no key
	keyTime  time.Time // when the key was made (kept with an interval only)
	seed     [32]byte  // the seed while it is read and used; zero otherwise
	closed   bool
	src      *Source
	reseedN  int64
	interval time.Duration
	now      func() time.Time
	stats    SeededStats // Bytes: output of the keys before the current one
}

// NewSeeded returns a generator keyed with 32 bytes read from src now. It
// panics if cfg can never work (a negative or too small ReseedBytes, a
// negative ReseedInterval) or src is nil. It blocks while src reads the
// seed (at most the Source's WaitTimeout per wait, as any Read does).
//
// If the first seed cannot be had, NewSeeded does not panic: the
// generator starts without a key, Stats().LastError says why, and its
// first call tries again; if there is still no seed, that call fails as
// after a failed reseed (Read returns the error, Uint64 panics with it).
// A careful caller checks LastError after NewSeeded.
//
// src is not closed by the generator and must outlive its use.
func NewSeeded(src *Source, cfg SeededConfig) *Seeded {
	switch {
	case src == nil:
		panic("qrng: NewSeeded: nil Source")
	case cfg.ReseedBytes < 0 || (cfg.ReseedBytes > 0 && cfg.ReseedBytes < 8):
		panic(fmt.Sprintf("qrng: SeededConfig.ReseedBytes %d is below 8 (one Uint64)", cfg.ReseedBytes))
	case cfg.ReseedInterval < 0:
		panic(fmt.Sprintf("qrng: SeededConfig.ReseedInterval %s is negative", cfg.ReseedInterval))
	}
	g := &Seeded{
		src:      src,
		reseedN:  cmp(cfg.ReseedBytes, DefaultReseedBytes),
		interval: cfg.ReseedInterval,
		now:      cfg.now,
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.reseed() // a failure is kept in stats.LastError; the first call tries again
	return g
}

// Uint64 returns 64 random bits. It panics if the generator must reseed
// and cannot (see Seeded), or after Close (with ErrClosed).
func (g *Seeded) Uint64() uint64 {
	if g.left -= 8; g.left < 0 {
		g.checkpoint8()
	}
	return g.c.Uint64()
}

// checkpoint8 is Uint64's slow path: it makes 8 bytes available under a
// key that may serve them, and takes them, or panics. It is kept out of
// line so that Uint64 has room to inline ChaCha8's Uint64.
//
//go:noinline
func (g *Seeded) checkpoint8() {
	g.left += 8
	if err := g.checkpoint(8); err != nil {
		panic(err)
	}
	g.left -= 8
}

// Read fills p with random bytes and returns len(p) and a nil error,
// unless the generator must reseed and cannot, or is closed (ErrClosed):
// then it returns the bytes served before that point and the error.
//
// If calls to Read and Uint64 are interleaved, the order in which bits are
// returned by the two is undefined, as for rand.ChaCha8.
func (g *Seeded) Read(p []byte) (n int, err error) {
	if g.closed {
		return 0, ErrClosed // even for an empty p, as for a Source
	}
	for n < len(p) {
		if g.left <= 0 {
			if err := g.checkpoint(1); err != nil {
				return n, err
			}
		}
		k := int(min(int64(len(p)-n), g.left))
		g.c.Read(p[n : n+k])
		g.left -= int64(k)
		n += k
	}
	return n, nil
}

// checkpoint makes at least need (1..8) bytes available in left: from
// the current key if its budget and age allow, else under a new key. It
// is called with left < need.
func (g *Seeded) checkpoint(need int64) error {
	if g.src == nil {
		panic("qrng: Seeded used without NewSeeded")
	}
	if g.closed {
		return ErrClosed
	}
	g.rest += g.left // fewer than need bytes: pool them with the rest
	g.left = 0
	if g.rest >= need && (g.interval == 0 || g.now().Sub(g.keyTime) < g.interval) {
		g.open()
		return nil
	}
	return g.reseed()
}

// open moves the next stretch of the key's budget into left: all of it,
// or up to the next clock check with an interval.
func (g *Seeded) open() {
	g.left = g.rest
	if g.interval > 0 {
		g.left = min(g.rest, clockCheckBytes)
	}
	g.rest -= g.left
}

// reseed erases the current key and makes a new one from 32 bytes of the
// Source. On failure the generator is left without a key.
func (g *Seeded) reseed() error {
	g.stats.Bytes += g.budget - g.left - g.rest
	g.left, g.rest, g.budget = 0, 0, 0
	g.c = rand.ChaCha8{} // the old key serves nothing more, whatever follows

	before := g.src.fallbackBytes()
	_, err := g.src.Read(g.seed[:])
	fellBack := g.src.fallbackBytes() != before
	if err != nil {
		clear(g.seed[:])
		g.stats.FailedReseeds++
		g.stats.LastError = &reseedError{err: err}
		return g.stats.LastError
	}
	g.c.Seed(g.seed)
	clear(g.seed[:])
	g.stats.Reseeds++
	if !fellBack {
		g.stats.QuantumReseeds++
	}
	g.stats.LastError = nil
	if g.interval > 0 {
		g.keyTime = g.now()
	}
	g.budget, g.rest = g.reseedN, g.reseedN
	g.open()
	return nil
}

// Stats returns a snapshot of the generator's counters. Like every other
// method, it must not be called concurrently with the generator's use.
func (g *Seeded) Stats() SeededStats {
	st := g.stats
	st.Bytes += g.budget - g.left - g.rest
	return st
}

// Close erases the generator's state (its key, ChaCha8's buffered output,
// any seed) and returns nil. After Close, Read returns ErrClosed and
// Uint64 panics with it; Stats still works. It does not close the Source.
func (g *Seeded) Close() error {
	g.stats.Bytes += g.budget - g.left - g.rest
	g.left, g.rest, g.budget = 0, 0, 0
	g.c = rand.ChaCha8{}
	clear(g.seed[:])
	g.closed = true
	return nil
}

// fallbackBytes is the Source's Stats().FallbackBytes, without the rest
// of the snapshot. A read that falls back adds its bytes to it, under the
// Source's lock, before it returns.
func (s *Source) fallbackBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.FallbackBytes
}

// reseedError is a failed seed read. It matches the Source's error.
type reseedError struct{ err error }

func (e *reseedError) Error() string {
	return "qrng: no seed for the seeded generator: " + strings.TrimPrefix(e.err.Error(), "qrng: ")
}

func (e *reseedError) Unwrap() error { return e.err }
