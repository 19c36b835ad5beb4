package qrng

import (
	crand "crypto/rand"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// BenchmarkSeeded times a quantum-seeded generator beside ChaCha8 (which
// it wraps) and crypto/rand, at one goroutine, in one run: Uint64 called
// directly and through a rand.Source interface value (beside it, ChaCha8
// behind a wrapper that counts nothing), the rand.Rand methods over each,
// and Reads of 32 B and 1 MiB. Each reports its CPU time per call
// (cpu-ns/op) beside the wall-clock time. The Seeded draws its seeds from
// a Source whose buffer was filled beforehand (warmSource), so reseeds
// (one per MiB, as by default) cost what serving 32 bytes costs.
func BenchmarkSeeded(b *testing.B) {
	newSeeded := func(b *testing.B, cfg SeededConfig) *Seeded {
		// 1 MiB of seeds: 32,768 keys, 32 GiB of output at 1 MiB a key.
		g := NewSeeded(warmSource(b, 1<<20, false), cfg)
		b.Cleanup(func() {
			if st := g.Stats(); st.QuantumReseeds != st.Reseeds || st.FailedReseeds > 0 {
				b.Errorf("the warm Source ran out of seeds: %+v", st)
			}
			g.Close()
		})
		return g
	}
	b.Run("Uint64/Seeded", func(b *testing.B) {
		g := newSeeded(b, SeededConfig{})
		cpu := startCPU()
		for b.Loop() {
			sinkSeeded += g.Uint64()
		}
		cpu.report(b)
	})
	b.Run("Uint64/ChaCha8", func(b *testing.B) {
		c := rand.NewChaCha8([32]byte{1})
		cpu := startCPU()
		for b.Loop() {
			sinkSeeded += c.Uint64()
		}
		cpu.report(b)
	})
	b.Run("Uint64/SeededInterval", func(b *testing.B) { // a clock check every 4 KiB
		g := newSeeded(b, SeededConfig{ReseedInterval: time.Minute})
		cpu := startCPU()
		for b.Loop() {
			sinkSeeded += g.Uint64()
		}
		cpu.report(b)
	})
	b.Run("Uint64Source/Seeded", func(b *testing.B) {
		s := hideType(newSeeded(b, SeededConfig{}))
		cpu := startCPU()
		for b.Loop() {
			sinkSeeded += s.Uint64()
		}
		cpu.report(b)
	})
	b.Run("Uint64Source/ChaCha8", func(b *testing.B) {
		s := hideType(rand.NewChaCha8([32]byte{1}))
		cpu := startCPU()
		for b.Loop() {
			sinkSeeded += s.Uint64()
		}
		cpu.report(b)
	})
	b.Run("Uint64Source/ChaCha8Wrapped", func(b *testing.B) { // a wrapper that counts nothing
		s := hideType(&wrappedChaCha8{c: rand.NewChaCha8([32]byte{1})})
		cpu := startCPU()
		for b.Loop() {
			sinkSeeded += s.Uint64()
		}
		cpu.report(b)
	})
	for _, op := range serveOps {
		b.Run("Rand"+op.name+"/Seeded", func(b *testing.B) {
			r := rand.New(newSeeded(b, SeededConfig{}))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				op.f(r, nil)
			}
			cpu.report(b)
		})
		b.Run("Rand"+op.name+"/ChaCha8", func(b *testing.B) {
			r := rand.New(rand.NewChaCha8([32]byte{1}))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				op.f(r, nil)
			}
			cpu.report(b)
		})
	}
	for _, sz := range []struct {
		name string
		n    int
	}{{"Read32B", 32}, {"Read1MiB", 1 << 20}} {
		b.Run(sz.name+"/Seeded", func(b *testing.B) {
			g := newSeeded(b, SeededConfig{})
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				g.Read(p)
			}
			cpu.report(b)
		})
		b.Run(sz.name+"/ChaCha8", func(b *testing.B) {
			c := rand.NewChaCha8([32]byte{1})
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				c.Read(p)
			}
			cpu.report(b)
		})
		b.Run(sz.name+"/cryptorand", func(b *testing.B) {
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				crand.Read(p)
			}
			cpu.report(b)
		})
	}
}

var sinkSeeded uint64

// cpuClock measures a benchmark's CPU time per call beside its wall time
// (ns/op): on a shared machine, time spent waiting for a CPU inflates
// ns/op but not cpu-ns/op. The benchmark's goroutine is locked to its
// thread while measured, so the thread's time is the goroutine's.
type cpuClock struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuClock {
	runtime.LockOSThread()
	t, ok := threadCPU()
	return cpuClock{t, ok}
}

// report adds cpu-ns/op, for the b.N calls made since startCPU.
func (c cpuClock) report(b *testing.B) {
	t, ok := threadCPU()
	runtime.UnlockOSThread()
	if c.ok && ok && b.N > 0 {
		b.ReportMetric(float64(t-c.start)/float64(b.N), "cpu-ns/op")
	}
}

// hideType returns s as an interface value whose dynamic type the
// compiler cannot see, so that calls through it stay interface calls (as
// rand.Rand's are) instead of being devirtualized.
//
//go:noinline
func hideType(s rand.Source) rand.Source { return s }

// wrappedChaCha8 is ChaCha8 behind a method of another type and nothing
// else: the price of one more call, which any wrapper pays, since
// ChaCha8.Uint64 is too large for Go's inliner.
type wrappedChaCha8 struct{ c *rand.ChaCha8 }

func (w *wrappedChaCha8) Uint64() uint64 { return w.c.Uint64() }

// interleaveBatch is how many calls BenchmarkSeededInterleaved makes of
// one generator before it switches to the other.
const interleaveBatch = 1024

// BenchmarkSeededInterleaved times Seeded and ChaCha8 in alternating
// batches of 1024 calls within one loop, so that both see the same load:
// on a shared machine the ratio of the two is steadier than that of two
// benchmarks run a second apart. It reports seeded-ns/call,
// chacha8-ns/call and their ratio (ns/op is the time of one pair of
// batches).
func BenchmarkSeededInterleaved(b *testing.B) {
	newSeeded := func(b *testing.B) *Seeded {
		g := NewSeeded(warmSource(b, 1<<20, false), SeededConfig{})
		b.Cleanup(func() { g.Close() })
		return g
	}
	b.Run("Uint64", func(b *testing.B) {
		g, c := newSeeded(b), rand.NewChaCha8([32]byte{1})
		var ts, tc time.Duration
		for b.Loop() {
			t0 := time.Now()
			for range interleaveBatch {
				sinkSeeded += g.Uint64()
			}
			t1 := time.Now()
			for range interleaveBatch {
				sinkSeeded += c.Uint64()
			}
			ts, tc = ts+t1.Sub(t0), tc+time.Since(t1)
		}
		reportInterleaved(b, ts, tc)
	})
	b.Run("Uint64Source", func(b *testing.B) {
		g, c := hideType(newSeeded(b)), hideType(rand.NewChaCha8([32]byte{1}))
		var ts, tc time.Duration
		for b.Loop() {
			t0 := time.Now()
			for range interleaveBatch {
				sinkSeeded += g.Uint64()
			}
			t1 := time.Now()
			for range interleaveBatch {
				sinkSeeded += c.Uint64()
			}
			ts, tc = ts+t1.Sub(t0), tc+time.Since(t1)
		}
		reportInterleaved(b, ts, tc)
	})
	for _, op := range serveOps {
		b.Run("Rand"+op.name, func(b *testing.B) {
			g, c := rand.New(newSeeded(b)), rand.New(rand.NewChaCha8([32]byte{1}))
			var ts, tc time.Duration
			for b.Loop() {
				t0 := time.Now()
				for range interleaveBatch {
					op.f(g, nil)
				}
				t1 := time.Now()
				for range interleaveBatch {
					op.f(c, nil)
				}
				ts, tc = ts+t1.Sub(t0), tc+time.Since(t1)
			}
			reportInterleaved(b, ts, tc)
		})
	}
	b.Run("Read32B", func(b *testing.B) {
		g, c := newSeeded(b), rand.NewChaCha8([32]byte{1})
		p := make([]byte, 32)
		var ts, tc time.Duration
		for b.Loop() {
			t0 := time.Now()
			for range interleaveBatch {
				g.Read(p)
			}
			t1 := time.Now()
			for range interleaveBatch {
				c.Read(p)
			}
			ts, tc = ts+t1.Sub(t0), tc+time.Since(t1)
		}
		reportInterleaved(b, ts, tc)
	})
}

func reportInterleaved(b *testing.B, seeded, chacha8 time.Duration) {
	calls := float64(b.N) * interleaveBatch
	b.ReportMetric(float64(seeded)/calls, "seeded-ns/call")
	b.ReportMetric(float64(chacha8)/calls, "chacha8-ns/call")
	b.ReportMetric(float64(seeded)/float64(chacha8), "seeded/chacha8")
}
