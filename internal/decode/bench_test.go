package decode

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchBody renders n values of bits bits as the service does: "[5845, 7686]".
func benchBody(n, bits int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(bits)))
	out := []byte{'['}
	for i := range n {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = strconv.AppendUint(out, r.Uint64()>>(64-bits), 10)
	}
	return append(out, ']')
}

// BenchmarkDecode1M decodes 1,000,000 values, beside encoding/json in the
// same run.
func BenchmarkDecode1M(b *testing.B) {
	const n = 1_000_000
	for _, bits := range []int{16, 64} {
		body := benchBody(n, bits)
		name := strconv.Itoa(bits) + "bit/"
		b.Run(name+"Decode", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var sum uint64
			for b.Loop() {
				if err := Decode(bytes.NewReader(body), n, bits, MaxBytes(n), func(v uint64) { sum += v }); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"DecodeTo", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var sum uint64
			for b.Loop() {
				err := DecodeTo(bytes.NewReader(body), n, bits, MaxBytes(n), func(vs []uint64) {
					for _, v := range vs {
						sum += v
					}
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var v []uint64
				if err := json.Unmarshal(body, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
