package qrng

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/internal/decode"
)

// BenchmarkChecksBesideDecode measures, in one run, what the checks cost
// per batch (the health tests and the replay check: Scan outside the
// lock, Remember under it, against an index that already remembers its
// 16 batches) beside what decoding and packing the same batch costs.
// The checks should cost less than the decode.
func BenchmarkChecksBesideDecode(b *testing.B) {
	for _, c := range []struct{ values, bits int }{
		{MaxSamples, 16}, {100_000, 16}, {MaxSamples, 64}, {MaxSamples, 12},
		{MaxSamples, 7}, {MaxSamples, 1}, {MaxSamples, 63}, {256, 16},
	} {
		body := answer(c.values, c.bits)
		batchBytes := c.values * c.bits / 8
		name := fmt.Sprintf("%dbit/%dvalues/", c.bits, c.values)
		b.Run(name+"decode", func(b *testing.B) {
			b.SetBytes(int64(batchBytes))
			out := make([]byte, 0, batchBytes+8)
			for b.Loop() {
				p := bitpack.New(c.bits, out[:0])
				if err := decode.DecodeTo(bytes.NewReader(body), c.values, c.bits, decode.MaxBytes(c.values), addAll(p)); err != nil {
					b.Fatal(err)
				}
				p.Bytes()
			}
		})
		b.Run(name+"checks", func(b *testing.B) {
			b.SetBytes(int64(batchBytes))
			h := newHealthState(batchBytes, c.bits)
			fresh := rand.NewChaCha8([32]byte{byte(c.bits)})
			// Fresh batches, never a repeat of the last 16: a ring of 20
			// made ahead when small, else one remade outside the timer
			// (stopping the timer costs too much beside a small batch).
			ring := make([][]byte, 1)
			if batchBytes <= 1<<20 {
				ring = make([][]byte, 20)
			}
			for i := range ring {
				ring[i] = make([]byte, batchBytes)
				fresh.Read(ring[i])
			}
			check := func(batch []byte) {
				a, err := h.test(batch)
				if err != nil {
					b.Fatal(err)
				}
				if err := h.remember(a); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 16 { // fill the memory
				if len(ring) == 1 {
					fresh.Read(ring[0])
				}
				check(ring[i%len(ring)])
			}
			b.ResetTimer()
			for i := 16; i < 16+b.N; i++ {
				if len(ring) == 1 {
					b.StopTimer()
					fresh.Read(ring[0])
					b.StartTimer()
				}
				check(ring[i%len(ring)])
			}
		})
	}
}
