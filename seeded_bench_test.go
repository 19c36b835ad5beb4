package qrng

import (
	crand "crypto/rand"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkSeeded times a quantum-seeded generator beside ChaCha8 (which
// it wraps) and crypto/rand, at one goroutine, in one run: Uint64 called
// directly and through the rand.Source interface (as rand.Rand calls it;
// beside it, ChaCha8 behind a wrapper that counts nothing), the rand.Rand
// methods over each, and Reads of 32 B and 1 MiB. The Seeded draws
// its seeds from a Source whose buffer was filled beforehand (warmSource),
// so reseeds (one per MiB, as by default) cost what serving 32 bytes costs.
func BenchmarkSeeded(b *testing.B) {
	newSeeded := func(b *testing.B, perOp int64, cfg SeededConfig) *Seeded {
		seeds := int64(b.N)*perOp/cmp(cfg.ReseedBytes, DefaultReseedBytes) + 2
		g := NewSeeded(warmSource(b, 32*seeds, false), cfg)
		b.Cleanup(func() { g.Close() })
		return g
	}
	b.Run("Uint64/Seeded", func(b *testing.B) {
		g := newSeeded(b, 8, SeededConfig{})
		for b.Loop() {
			sinkSeeded += g.Uint64()
		}
	})
	b.Run("Uint64/ChaCha8", func(b *testing.B) {
		c := rand.NewChaCha8([32]byte{1})
		for b.Loop() {
			sinkSeeded += c.Uint64()
		}
	})
	b.Run("Uint64/SeededInterval", func(b *testing.B) { // a clock check every 4 KiB
		g := newSeeded(b, 8, SeededConfig{ReseedInterval: time.Minute})
		for b.Loop() {
			sinkSeeded += g.Uint64()
		}
	})
	b.Run("Uint64Source/Seeded", func(b *testing.B) {
		var s rand.Source = newSeeded(b, 8, SeededConfig{})
		for b.Loop() {
			sinkSeeded += s.Uint64()
		}
	})
	b.Run("Uint64Source/ChaCha8", func(b *testing.B) {
		var s rand.Source = rand.NewChaCha8([32]byte{1})
		for b.Loop() {
			sinkSeeded += s.Uint64()
		}
	})
	b.Run("Uint64Source/ChaCha8Wrapped", func(b *testing.B) { // a wrapper that counts nothing
		var s rand.Source = &wrappedChaCha8{c: rand.NewChaCha8([32]byte{1})}
		for b.Loop() {
			sinkSeeded += s.Uint64()
		}
	})
	for _, op := range serveOps {
		b.Run("Rand"+op.name+"/Seeded", func(b *testing.B) {
			r := rand.New(newSeeded(b, op.bytes, SeededConfig{}))
			b.ReportAllocs()
			for b.Loop() {
				op.f(r, nil)
			}
		})
		b.Run("Rand"+op.name+"/ChaCha8", func(b *testing.B) {
			r := rand.New(rand.NewChaCha8([32]byte{1}))
			b.ReportAllocs()
			for b.Loop() {
				op.f(r, nil)
			}
		})
	}
	for _, sz := range []struct {
		name string
		n    int
	}{{"Read32B", 32}, {"Read1MiB", 1 << 20}} {
		b.Run(sz.name+"/Seeded", func(b *testing.B) {
			g := newSeeded(b, int64(sz.n), SeededConfig{})
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				g.Read(p)
			}
		})
		b.Run(sz.name+"/ChaCha8", func(b *testing.B) {
			c := rand.NewChaCha8([32]byte{1})
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				c.Read(p)
			}
		})
		b.Run(sz.name+"/cryptorand", func(b *testing.B) {
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				crand.Read(p)
			}
		})
	}
}

var sinkSeeded uint64

// wrappedChaCha8 is ChaCha8 behind a method of another type and nothing
// else: the price of one more call, which any wrapper pays, since
// ChaCha8.Uint64 is too large for Go's inliner.
type wrappedChaCha8 struct{ c *rand.ChaCha8 }

func (w *wrappedChaCha8) Uint64() uint64 { return w.c.Uint64() }
