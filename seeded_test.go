package qrng

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamUpstream hands out one ChaCha8 stream, in order, so that a test
// knows every byte a Source with one worker serves: rand.NewChaCha8(seed)
// read from the start. While fail is set, Fetch returns it instead.
type streamUpstream struct {
	mu      sync.Mutex
	stream  *rand.ChaCha8
	fail    error
	fetches int
}

func newStreamUpstream(seed byte) *streamUpstream {
	return &streamUpstream{stream: rand.NewChaCha8([32]byte{seed, 's', 't', 'r', 'e', 'a', 'm'})}
}

// streamBytes returns the first n bytes newStreamUpstream(seed) hands out.
func streamBytes(seed byte, n int) []byte {
	p := make([]byte, n)
	newStreamUpstream(seed).stream.Read(p)
	return p
}

func (u *streamUpstream) Fetch(ctx context.Context, p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fetches++
	if u.fail != nil {
		return 0, u.fail
	}
	u.stream.Read(p)
	return len(p), nil
}

func (u *streamUpstream) setFail(err error) {
	u.mu.Lock()
	u.fail = err
	u.mu.Unlock()
}

// seedingSource returns a Source over up with one worker and batches of
// 512 bytes (64 values of 64 bits: 16 seeds), closed when the test ends.
func seedingSource(t *testing.T, up Upstream, cfg Config) *Source {
	t.Helper()
	cfg.Upstream, cfg.Bits, cfg.Workers = up, 64, 1
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	s := NewSource(cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

// generate draws n bytes from g: through Uint64 (n a multiple of 8) or
// through Reads of chunk bytes.
func generate(t *testing.T, g *Seeded, n, chunk int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	if chunk == 0 {
		var b [8]byte
		for len(out) < n {
			v := g.Uint64()
			for i := range b {
				b[i] = byte(v >> (8 * i))
			}
			out = append(out, b[:]...)
		}
		return out
	}
	p := make([]byte, chunk)
	for len(out) < n {
		k, err := g.Read(p[:min(chunk, n-len(out))])
		require.NoError(t, err)
		out = append(out, p[:k]...)
	}
	return out
}

// Issue 16: a reseed after every ReseedBytes of output, the first seed
// included in the count, and each seed 32 bytes of the Source.
func TestSeededReseedsFollowReseedBytes(t *testing.T) {
	for _, c := range []struct {
		name        string
		reseedBytes int64
		total       int
		want        int64 // keys needed for total bytes
	}{
		{"1 MiB at 64 KiB", 64 << 10, 1 << 20, 16},
		{"default 1 MiB", 0, 3<<20 + 8, 4},
		{"smallest: 8 bytes", 8, 800, 100},
		{"not a multiple of 8", 1004, 10 * 1004, 10},
		{"largest", math.MaxInt64, 1 << 20, 1},
	} {
		for _, via := range []struct {
			name  string
			chunk int
		}{{"Uint64", 0}, {"Read 1000 B", 1000}, {"Read 1 MiB", 1 << 20}} {
			t.Run(c.name+"/"+via.name, func(t *testing.T) {
				src := seedingSource(t, newStreamUpstream(1), Config{BatchSize: 4096})
				g := NewSeeded(src, SeededConfig{ReseedBytes: c.reseedBytes})
				defer g.Close()
				total := c.total
				if via.chunk == 0 && c.reseedBytes%8 != 0 && c.reseedBytes < int64(total) {
					// Uint64 takes a new key when fewer than 8 bytes of the
					// budget are left: 125 values of 1004 bytes per key.
					total = int(c.want) * int(c.reseedBytes/8*8)
				}
				generate(t, g, total, via.chunk)
				st := g.Stats()
				assert.Equal(t, c.want, st.Reseeds, "seeds taken")
				assert.Equal(t, c.want, st.QuantumReseeds, "seeds from the upstream")
				assert.Zero(t, st.FailedReseeds)
				assert.EqualValues(t, total, st.Bytes)
				assert.EqualValues(t, 32*c.want, src.Stats().QuantumBytes, "32 bytes of the Source per seed")
			})
		}
	}
}

// Issue 16: each key is ChaCha8 under the next 32 bytes of the Source, and
// serves exactly ReseedBytes: after each reseed the output is the new
// key's, not what the old key would have gone on to produce.
func TestSeededKeyChangesAtEachReseed(t *testing.T) {
	const reseed = 1004 // not a multiple of 8: Uint64 stops at 1000
	stream := streamBytes(7, 4*32)
	key := func(k int) *rand.ChaCha8 { return rand.NewChaCha8([32]byte(stream[32*k : 32*k+32])) }
	for _, via := range []struct {
		name  string
		chunk int
		per   int // bytes each key serves
	}{{"Uint64", 0, 1000}, {"Read 100 B", 100, reseed}, {"Read all at once", 4 * reseed, reseed}} {
		t.Run(via.name, func(t *testing.T) {
			src := seedingSource(t, newStreamUpstream(7), Config{})
			g := NewSeeded(src, SeededConfig{ReseedBytes: reseed})
			defer g.Close()
			got := generate(t, g, 4*via.per, via.chunk)
			require.EqualValues(t, 4, g.Stats().Reseeds)
			for k := range 4 {
				want := make([]byte, via.per)
				key(k).Read(want) // Uint64's bytes are little-endian, as ChaCha8.Read's
				assert.Equal(t, want, got[k*via.per:(k+1)*via.per], "output under key %d", k)
				if k > 0 {
					old := make([]byte, 2*via.per)
					key(k - 1).Read(old)
					assert.NotEqual(t, old[via.per:], got[k*via.per:(k+1)*via.per],
						"key %d's output is what key %d would have produced", k, k-1)
				}
			}
		})
	}
}

// Issue 16: two generators from one Source have different keys, the next
// 32 bytes each.
func TestSeededGeneratorsFromOneSourceDiffer(t *testing.T) {
	src := seedingSource(t, newStreamUpstream(2), Config{})
	a := NewSeeded(src, SeededConfig{})
	b := NewSeeded(src, SeededConfig{})
	defer a.Close()
	defer b.Close()
	assert.EqualValues(t, 64, src.Stats().QuantumBytes, "32 bytes of the Source each")
	pa, pb := generate(t, a, 1024, 0), generate(t, b, 1024, 0)
	assert.NotEqual(t, pa, pb)
	stream := streamBytes(2, 64)
	want := make([]byte, 1024)
	rand.NewChaCha8([32]byte(stream[32:])).Read(want)
	assert.Equal(t, want, pb, "the second generator is keyed with the Source's next 32 bytes")
}

// Issue 16: the seed buffer is erased once the key is made, each old key
// at its reseed, and everything by Close. Checked on the generator's own
// fields (a test seam), which stay reachable.
func TestSeededErasesSeedsAndState(t *testing.T) {
	src := seedingSource(t, newStreamUpstream(3), Config{})
	g := NewSeeded(src, SeededConfig{ReseedBytes: 64})
	assert.Equal(t, [32]byte{}, g.seed, "seed bytes kept after the first key was made")
	for range 20 { // past two reseeds
		g.Uint64()
		assert.Equal(t, [32]byte{}, g.seed, "seed bytes kept after a reseed")
	}
	require.EqualValues(t, 3, g.Stats().Reseeds)
	require.NotEqual(t, rand.ChaCha8{}, g.c, "precondition: a live key")

	require.NoError(t, g.Close())
	assert.Equal(t, rand.ChaCha8{}, g.c, "key or buffered output left after Close")
	assert.Equal(t, [32]byte{}, g.seed)
	assert.Zero(t, g.left+g.rest+g.budget, "budget left after Close")
	assert.EqualValues(t, 160, g.Stats().Bytes, "Stats still works after Close")

	n, err := g.Read(make([]byte, 8))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = g.Read(nil)
	assert.ErrorIs(t, err, ErrClosed, "even an empty Read")
	assert.PanicsWithValue(t, ErrClosed, func() { g.Uint64() })
	assert.NoError(t, g.Close(), "Close is idempotent")
	assert.EqualValues(t, 3*32, src.Stats().QuantumBytes, "nothing read from the Source after Close")
}

// Issue 16: a seed the Source serves from crypto/rand is counted as not
// quantum, as the Source counts it.
func TestSeededFallbackSeedsAreNotQuantum(t *testing.T) {
	up := newStreamUpstream(4)
	src := seedingSource(t, up, Config{OnDemand: true, Fallback: FallbackOnError})
	src.cooldown = time.Hour // once failed, the Source stays in fallback: no refetch
	g := NewSeeded(src, SeededConfig{ReseedBytes: 64})
	defer g.Close()
	up.setFail(fmt.Errorf("%w: scripted outage", ErrServer))

	generate(t, g, 20*64, 0) // 20 keys; the batch of 512 bytes held 16 seeds
	st, sst := g.Stats(), src.Stats()
	assert.EqualValues(t, 20, st.Reseeds)
	assert.EqualValues(t, 16, st.QuantumReseeds, "seeds from the one batch")
	assert.Zero(t, st.FailedReseeds, "FallbackOnError: no seed read fails")
	assert.EqualValues(t, 4*32, sst.FallbackBytes, "the Source counted the 4 crypto/rand seeds")
	assert.EqualValues(t, 16*32, sst.QuantumBytes)
	assert.True(t, sst.FallbackActive)
}

// Issue 16: under concurrent readers of one Source going in and out of
// fallback, a crypto/rand seed is never counted as quantum: the seeds
// counted quantum are no more than the Source's quantum bytes allow, and
// those counted not quantum cover at least its fallback bytes.
func TestSeededNeverCountsFallbackSeedsAsQuantum(t *testing.T) {
	var calls atomic.Int64
	up := &funcUpstream{fetch: func(p []byte) (int, error) {
		if calls.Add(1)%2 == 1 { // odd fetches fail, the first included
			return 0, fmt.Errorf("%w: scripted outage", ErrServer)
		}
		return fresh(p)
	}}
	src := seedingSource(t, up, Config{Workers: 1, OnDemand: true, Fallback: FallbackOnError})
	src.cooldown = time.Millisecond
	var (
		mu                sync.Mutex
		reseeds, quantums int64
	)
	for round := 0; ; round++ {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				g := NewSeeded(src, SeededConfig{ReseedBytes: 8})
				for range 50 {
					g.Uint64()
				}
				st := g.Stats()
				g.Close()
				mu.Lock()
				reseeds += st.Reseeds
				quantums += st.QuantumReseeds
				mu.Unlock()
			})
		}
		wg.Wait()
		sst := src.Stats()
		require.Equal(t, 32*reseeds, sst.QuantumBytes+sst.FallbackBytes, "the Source served exactly the seeds")
		require.LessOrEqual(t, 32*quantums, sst.QuantumBytes, "a crypto/rand seed counted as quantum")
		require.GreaterOrEqual(t, 32*(reseeds-quantums), sst.FallbackBytes)
		if sst.FallbackSwitches >= 3 && sst.QuantumBytes > 0 {
			break // in and out of fallback, several times
		}
	}
}

// funcUpstream answers Fetch with its function.
type funcUpstream struct{ fetch func(p []byte) (int, error) }

func (u *funcUpstream) Fetch(ctx context.Context, p []byte) (int, error) { return u.fetch(p) }

// Issue 16: a reseed that fails (FallbackNever, the service down) serves
// nothing past the reseed point: Read returns the bytes before it and the
// error, Uint64 panics with it, the old key is erased; the generator
// resumes once the Source can serve a seed.
func TestSeededFailedReseedServesNothingStale(t *testing.T) {
	up := newStreamUpstream(5)
	clock := newFakeClock()
	src := seedingSource(t, up, Config{OnDemand: true, Fallback: FallbackNever})
	src.now = clock.Now
	src.cooldown = time.Hour // after a failure the Source waits: its clock says when
	g := NewSeeded(src, SeededConfig{ReseedBytes: 64})
	defer g.Close()
	outage := fmt.Errorf("%w: scripted outage", ErrServer)
	up.setFail(outage)

	p := make([]byte, 2000)
	n, err := g.Read(p)
	assert.Equal(t, 16*64, n, "16 keys from the one batch, nothing past the 17th reseed point")
	require.ErrorIs(t, err, ErrServer)
	assert.Contains(t, err.Error(), "scripted outage")
	assert.NotContains(t, err.Error(), "qrng: qrng:", "one prefix")
	st := g.Stats()
	assert.EqualValues(t, 16, st.Reseeds)
	assert.EqualValues(t, 1, st.FailedReseeds)
	assert.ErrorIs(t, st.LastError, ErrServer)
	assert.EqualValues(t, 16*64, st.Bytes)
	assert.Equal(t, rand.ChaCha8{}, g.c, "the stale key is erased at the reseed point")

	n, err = g.Read(p)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, ErrServer, "every later call tries again, and fails again")
	func() {
		defer func() {
			e, ok := recover().(error)
			require.True(t, ok, "Uint64 panics with an error")
			assert.ErrorIs(t, e, ErrServer)
		}()
		g.Uint64()
		t.Error("Uint64 served a value without a key")
	}()
	assert.EqualValues(t, 3, g.Stats().FailedReseeds)
	assert.EqualValues(t, 16*64, g.Stats().Bytes, "nothing served since")

	up.setFail(nil)
	clock.Advance(2 * time.Hour) // the Source's pause is over
	want := streamBytes(5, 17*32)[16*32:]
	out := make([]byte, 64)
	rand.NewChaCha8([32]byte(want)).Read(out)
	n, err = g.Read(p[:64])
	require.NoError(t, err)
	assert.Equal(t, 64, n)
	assert.Equal(t, out, p[:64], "keyed with the Source's next 32 bytes")
	st = g.Stats()
	assert.EqualValues(t, 17, st.Reseeds)
	assert.EqualValues(t, 17, st.QuantumReseeds)
	assert.NoError(t, st.LastError, "cleared by the seed taken")
}

// Issue 16: when the first seed cannot be had, NewSeeded does not panic;
// LastError says so at once and the first call fails as a failed reseed
// does.
func TestSeededFirstSeedFailureIsDeferred(t *testing.T) {
	up := newStreamUpstream(6)
	up.setFail(fmt.Errorf("%w: scripted outage", ErrServer))
	clock := newFakeClock()
	src := seedingSource(t, up, Config{OnDemand: true, Fallback: FallbackNever})
	src.now = clock.Now
	src.cooldown = time.Hour

	var g *Seeded
	require.NotPanics(t, func() { g = NewSeeded(src, SeededConfig{}) })
	defer g.Close()
	st := g.Stats()
	assert.ErrorIs(t, st.LastError, ErrServer)
	assert.Zero(t, st.Reseeds)
	assert.EqualValues(t, 1, st.FailedReseeds)
	assert.Panics(t, func() { g.Uint64() })
	_, err := g.Read(make([]byte, 8))
	assert.ErrorIs(t, err, ErrServer)

	up.setFail(nil)
	clock.Advance(2 * time.Hour)
	_, err = g.Read(make([]byte, 8))
	require.NoError(t, err)
	assert.EqualValues(t, 1, g.Stats().Reseeds)
	assert.NoError(t, g.Stats().LastError)
}

// Issue 16: ReseedInterval, with the generator's clock injected: no reseed
// while the key is younger, one within 4 KiB of output once it is that old.
func TestSeededReseedInterval(t *testing.T) {
	clock := newFakeClock()
	src := seedingSource(t, newStreamUpstream(8), Config{})
	g := NewSeeded(src, SeededConfig{ReseedBytes: 1 << 30, ReseedInterval: time.Minute, now: clock.Now})
	defer g.Close()

	generate(t, g, 1<<20, 0)
	clock.Advance(59 * time.Second)
	generate(t, g, 64<<10, 0)
	generate(t, g, 64<<10, 1000)
	require.EqualValues(t, 1, g.Stats().Reseeds, "reseeded before the interval")

	generate(t, g, 800, 0)     // part way between two clock checks
	clock.Advance(time.Second) // the key is a minute old now
	at := g.Stats().Bytes
	for g.Stats().Reseeds == 1 {
		stale := g.Stats().Bytes - at // served by the old key since
		require.LessOrEqual(t, stale, int64(clockCheckBytes), "more than 4 KiB served by a key older than ReseedInterval")
		g.Uint64()
	}
	assert.EqualValues(t, 2, g.Stats().Reseeds)
	clock.Advance(30 * time.Second)
	generate(t, g, 1<<20, 0)
	assert.EqualValues(t, 2, g.Stats().Reseeds, "the new key's age counts from its seed")

	clock.Advance(30 * time.Second) // idle past the interval: the next check reseeds
	_, err := g.Read(make([]byte, clockCheckBytes+1))
	require.NoError(t, err)
	assert.EqualValues(t, 3, g.Stats().Reseeds)
}

// Issue 16: 10M values through rand.New(g) spend under 1 Mbit of quota.
func TestSeededTenMillionValuesSpendUnderAMegabit(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	// A Source as a user makes it, every size at its default: slow start
	// sizes its first request to the first seed (one 512-byte window) and
	// doubles from there, so 77 seeds (2,464 bytes) cost a few requests
	// of a few KiB, far below the bound, not a batch of 1.6 Mbit.
	src := NewSource(Config{Token: srv.Token, BaseURL: srv.URL, Logger: discardLogger()})
	defer src.Close()
	g := NewSeeded(src, SeededConfig{})
	defer g.Close()
	r := rand.New(g)
	const n = 10_000_000
	sum := 0.0
	for range n {
		sum += r.Float64()
	}
	assert.InDelta(t, 0.5, sum/n, 0.001)
	st := g.Stats()
	assert.EqualValues(t, 8*n, st.Bytes)
	assert.EqualValues(t, (8*n+DefaultReseedBytes-1)/DefaultReseedBytes, st.Reseeds, "one seed per MiB")
	assert.Equal(t, st.Reseeds, st.QuantumReseeds)
	bits := srv.Counters().BitsServed
	assert.Less(t, bits, int64(1_000_000), "bits the service sent")
	assert.Less(t, src.Stats().QuotaBitsUsed, int64(1_000_000), "bits the meter counted")
	t.Logf("%d seeds, %d bits fetched", st.Reseeds, bits)
}

// Issue 16: no call allocates, reseeds and clock checks included.
func TestSeededNoAllocationsPerCall(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, cfg := range []SeededConfig{
		{},                          // the default: a reseed now and then
		{ReseedBytes: 8},            // a reseed on every Uint64
		{ReseedInterval: time.Hour}, // a clock check every 4 KiB
		{ReseedBytes: 4096},         // several reseeds within each Read of 1 MiB
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			// A Source past its slow start with at least 2 MiB ready and
			// no refill to come: the calls below take less than 1 MiB of
			// seeds, and a fetch in the background would count its
			// allocations (its chunk, the replay check's fingerprints),
			// which are not a per-call cost.
			src := seedingSource(t, newStreamUpstream(9), Config{BatchSize: 1 << 19, BufferSize: 8 << 20})
			_, err := src.Read(make([]byte, 4<<20))
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				src.mu.Lock()
				defer src.mu.Unlock()
				src.low = 0
				return src.buf.n >= 2<<20 && src.inflight == 0 && !src.filling
			}, time.Minute, time.Millisecond)
			g := NewSeeded(src, cfg)
			defer g.Close()
			r := rand.New(g)
			var p [32]byte
			big := make([]byte, 1<<20)
			if cfg.ReseedBytes == 8 {
				// 32 seeds a call. The Source itself allocates the header
				// of each 16 KiB window it cuts (one per 512 seeds), which
				// a Read of 4 KiB here (512 seeds) would show as its own.
				big = big[:256]
			}
			assert.Zero(t, testing.AllocsPerRun(1000, func() { g.Uint64() }), "Uint64")
			assert.Zero(t, testing.AllocsPerRun(1000, func() { g.Read(p[:]) }), "Read 32 B")
			assert.Zero(t, testing.AllocsPerRun(10, func() { g.Read(big) }), "Read of %d B", len(big))
			assert.Zero(t, testing.AllocsPerRun(1000, func() { r.IntN(1000) }), "IntN")
			assert.Zero(t, testing.AllocsPerRun(1000, func() { r.Float64() }), "Float64")
			perm := make([]int, 100)
			assert.Zero(t, testing.AllocsPerRun(100, func() { r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] }) }), "Shuffle")
			require.Zero(t, g.Stats().FailedReseeds)
			require.Greater(t, g.Stats().Reseeds, int64(1), "reseeds were measured too")
		})
	}
}

// A SeededConfig that can never work, or no Source, panics naming it.
func TestSeededConfigPanicsNameTheField(t *testing.T) {
	src := seedingSource(t, newStreamUpstream(10), Config{})
	for _, c := range []struct {
		src  *Source
		cfg  SeededConfig
		want string
	}{
		{src, SeededConfig{ReseedBytes: -1}, "qrng: SeededConfig.ReseedBytes -1 is below 8 (one Uint64)"},
		{src, SeededConfig{ReseedBytes: 7}, "qrng: SeededConfig.ReseedBytes 7 is below 8 (one Uint64)"},
		{src, SeededConfig{ReseedInterval: -time.Second}, "qrng: SeededConfig.ReseedInterval -1s is negative"},
		{nil, SeededConfig{}, "qrng: NewSeeded: nil Source"},
	} {
		assert.PanicsWithValue(t, c.want, func() { NewSeeded(c.src, c.cfg) })
	}
	assert.Zero(t, src.Stats().QuantumBytes, "no seed read for a config that panics")
	var zero Seeded
	assert.PanicsWithValue(t, "qrng: Seeded used without NewSeeded", func() { zero.Uint64() })
}

// A Source closed under a generator ends it at its next reseed, with
// ErrClosed.
func TestSeededSourceClosedUnderIt(t *testing.T) {
	src := seedingSource(t, newStreamUpstream(11), Config{})
	g := NewSeeded(src, SeededConfig{ReseedBytes: 64})
	defer g.Close()
	src.Close()
	n, err := g.Read(make([]byte, 100))
	assert.Equal(t, 64, n, "the current key serves its budget")
	assert.True(t, errors.Is(err, ErrClosed), "got %v", err)
}

// Issue 16, "done when": the README's Monte Carlo of 100M points (1.6 GB
// of output) from four workers takes 4 x 382 seeds; with OnDemand, as the
// README's example sets, the Source fetches them as they run out, a
// window (16 seeds) a request: the seeds rounded up to windows, and at
// most a window more for each worker waiting at once. The seeds are
// drawn here with ReseedBytes 8 (382 Uint64 calls per worker), not with
// 400 MB of output each: what the Source fetches depends only on the
// seeds read.
func TestSeededHundredMillionPointsOnDemand(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := NewSource(Config{Token: srv.Token, BaseURL: srv.URL, OnDemand: true, Logger: discardLogger()})
	defer src.Close()
	const workers = 4
	perWorker := (25_000_000*16 + DefaultReseedBytes - 1) / DefaultReseedBytes // 25M points of two Float64s
	require.Equal(t, 382, perWorker)
	var wg sync.WaitGroup
	var seeds atomic.Int64
	for range workers {
		wg.Go(func() {
			g := NewSeeded(src, SeededConfig{ReseedBytes: 8})
			defer g.Close()
			for range perWorker {
				g.Uint64()
			}
			seeds.Add(g.Stats().QuantumReseeds)
		})
	}
	wg.Wait()
	require.EqualValues(t, workers*perWorker, seeds.Load())
	seedBits := int64(256 * workers * perWorker) // 391,168
	bits := srv.Counters().BitsServed
	windows := (seedBits + 4095) / 4096 * 4096 // 393,216: 96 windows
	assert.GreaterOrEqual(t, bits, windows)
	assert.LessOrEqual(t, bits, windows+workers*4096, "the seeds in whole windows, and a window a worker")
}
