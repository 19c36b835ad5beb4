package qrng

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/internal/decode"
	"github.com/qrng-go/qrng/qrngtest"
)

// The baselines run in this file so that one `go test -bench` run gives
// every ratio: math/rand/v2's ChaCha8 and PCG, and crypto/rand.

// warmSource returns a Source whose buffer holds at least n bytes and that
// never fetches: the benchmarks below measure serving, not the network.
// Unless distinct is set, one random MiB is pushed again and again: served
// bytes are erased, so later copies read as zeros, which is fine where the
// content does not matter (Uint64, Read) but not for rejection sampling.
func warmSource(b *testing.B, n int64, mix, distinct bool) *Source {
	b.Helper()
	s := NewSource(Config{Token: "unused", BaseURL: "http://127.0.0.1:1", Mix: mix})
	b.Cleanup(func() { s.Close() })
	chunk := make([]byte, 1<<20)
	crand.Read(chunk)
	gen := rand.NewChaCha8([32]byte{7})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.low = 0 // never refill
	for pushed := int64(0); pushed < n+8; pushed += int64(len(chunk)) {
		if distinct {
			chunk = make([]byte, 1<<20)
			gen.Read(chunk)
		}
		s.buf.push(chunk)
	}
	return s
}

// cryptoSource is crypto/rand as a rand.Source, for the same-shape baseline.
type cryptoSource struct{}

func (cryptoSource) Uint64() uint64 {
	var b [8]byte
	crand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// lockedChaCha8 is ChaCha8 made safe for concurrent use, as Source is.
type lockedChaCha8 struct {
	mu sync.Mutex
	c  *rand.ChaCha8
}

func (l *lockedChaCha8) Uint64() uint64 {
	l.mu.Lock()
	v := l.c.Uint64()
	l.mu.Unlock()
	return v
}

func BenchmarkUint64(b *testing.B) {
	b.Run("qrng", func(b *testing.B) {
		s := warmSource(b, int64(b.N)*8, false, false)
		b.ReportAllocs()
		b.ResetTimer()
		var sink uint64
		for range b.N {
			sink += s.Uint64()
		}
		_ = sink
	})
	b.Run("qrngLocal", func(b *testing.B) {
		l := warmSource(b, int64(b.N)*8+512, false, false).Local()
		b.ReportAllocs()
		b.ResetTimer()
		var sink uint64
		for range b.N {
			sink += l.Uint64()
		}
		_ = sink
	})
	for _, bl := range []struct {
		name string
		src  rand.Source
	}{
		{"ChaCha8", rand.NewChaCha8([32]byte{1})},
		{"ChaCha8Locked", &lockedChaCha8{c: rand.NewChaCha8([32]byte{1})}},
		{"PCG", rand.NewPCG(1, 2)},
		{"cryptorand", cryptoSource{}},
	} {
		b.Run(bl.name, func(b *testing.B) {
			b.ReportAllocs()
			var sink uint64
			for b.Loop() {
				sink += bl.src.Uint64()
			}
			_ = sink
		})
	}
}

func BenchmarkUint64Parallel(b *testing.B) {
	b.Run("qrng", func(b *testing.B) {
		s := warmSource(b, int64(b.N)*8, false, false)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Uint64()
			}
		})
	})
	b.Run("ChaCha8Locked", func(b *testing.B) {
		l := &lockedChaCha8{c: rand.NewChaCha8([32]byte{1})}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Uint64()
			}
		})
	})
	b.Run("cryptorand", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				cryptoSource{}.Uint64()
			}
		})
	})
}

func BenchmarkRand(b *testing.B) {
	for _, op := range []struct {
		name string
		f    func(r *rand.Rand)
	}{
		{"IntN", func(r *rand.Rand) { r.IntN(1000) }},
		{"Float64", func(r *rand.Rand) { r.Float64() }},
	} {
		b.Run(op.name+"/qrng", func(b *testing.B) {
			r := rand.New(warmSource(b, int64(b.N)*16, false, true)) // IntN may draw twice
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				op.f(r)
			}
		})
		b.Run(op.name+"/qrngLocal", func(b *testing.B) {
			r := rand.New(warmSource(b, int64(b.N)*16+512, false, true).Local())
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				op.f(r)
			}
		})
		b.Run(op.name+"/ChaCha8", func(b *testing.B) {
			r := rand.New(rand.NewChaCha8([32]byte{1}))
			for b.Loop() {
				op.f(r)
			}
		})
		b.Run(op.name+"/PCG", func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				op.f(r)
			}
		})
	}
}

var readSizes = []struct {
	name string
	n    int
}{{"32B", 32}, {"4KiB", 4 << 10}, {"1MiB", 1 << 20}}

func BenchmarkRead(b *testing.B) {
	for _, sz := range readSizes {
		for _, mix := range []bool{false, true} {
			name := sz.name + "/qrng"
			if mix {
				name += "Mix"
			}
			b.Run(name, func(b *testing.B) {
				s := warmSource(b, int64(b.N)*int64(sz.n), mix, false)
				p := make([]byte, sz.n)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					s.Read(p)
				}
			})
		}
		b.Run(sz.name+"/cryptorand", func(b *testing.B) {
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				crand.Read(p)
			}
		})
		b.Run(sz.name+"/ChaCha8", func(b *testing.B) {
			c := rand.NewChaCha8([32]byte{1})
			p := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				c.Read(p)
			}
		})
	}
}

func BenchmarkReadParallel32B(b *testing.B) {
	b.Run("qrng", func(b *testing.B) {
		s := warmSource(b, int64(b.N)*32, false, false)
		b.SetBytes(32)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			p := make([]byte, 32)
			for pb.Next() {
				s.Read(p)
			}
		})
	})
	b.Run("cryptorand", func(b *testing.B) {
		b.SetBytes(32)
		b.RunParallel(func(pb *testing.PB) {
			p := make([]byte, 32)
			for pb.Next() {
				crand.Read(p)
			}
		})
	})
}

// answer renders n values of bits bits as the service does.
func answer(n, bits int) []byte {
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

func BenchmarkDecode1M(b *testing.B) {
	for _, bits := range []int{16, 64} {
		body := answer(MaxSamples, bits)
		b.Run(strconv.Itoa(bits)+"bit/qrng", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var sum uint64
			for b.Loop() {
				err := decode.Decode(bytes.NewReader(body), MaxSamples, bits, decode.MaxBytes(MaxSamples), func(v uint64) { sum += v })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(strconv.Itoa(bits)+"bit/encoding-json", func(b *testing.B) {
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

// BenchmarkFetch1M fetches 1,000,000 16-bit values over loopback from
// qrngtest, end to end into packed bytes, against a plain client
// (net/http, encoding/json into []uint64, then packing).
func BenchmarkFetch1M(b *testing.B) {
	for _, bits := range []int{16, 64} {
		srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: -1})
		b.Cleanup(srv.Close)
		b.Run(strconv.Itoa(bits)+"bit/qrng", func(b *testing.B) {
			c, err := NewClient(ClientConfig{BaseURL: srv.URL, Token: srv.Token})
			if err != nil {
				b.Fatal(err)
			}
			chunk := make([]byte, MaxSamples*bits/8)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				p := bitpack.New(bits, chunk[:0])
				err := c.fetch(context.Background(), MaxSamples, bits, attemptHooks{before: func() error { p.Reset(chunk[:0]); return nil }}, p.Add)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(strconv.Itoa(bits)+"bit/plain", func(b *testing.B) {
			access := plainToken(b, srv)
			chunk := make([]byte, 0, MaxSamples*bits/8)
			b.SetBytes(int64(cap(chunk)))
			b.ReportAllocs()
			body := []byte(`{"distribution":"uniform_discrete","output_type":"decimal","n_samples":1000000,"n_bits":` + strconv.Itoa(bits) + `}`)
			for b.Loop() {
				req, _ := http.NewRequest("POST", srv.URL+pathRandomNumbers, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+access)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				var vals []uint64
				if err := json.Unmarshal(raw, &vals); err != nil {
					b.Fatal(err)
				}
				p := bitpack.New(bits, chunk[:0])
				for _, v := range vals {
					p.Add(v)
				}
				p.Bytes()
			}
		})
	}
}

func plainToken(b *testing.B, srv *qrngtest.Server) string {
	resp, err := http.Post(srv.URL+pathAccessToken, "application/json", bytes.NewReader([]byte(`{"refresh_token":"`+srv.Token+`"}`)))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		b.Fatal(err)
	}
	return v.AccessToken
}

// BenchmarkFetchMemory1M64 measures what the client allocates to fetch
// 1,000,000 64-bit values into packed bytes (8 MB), from a server that
// answers with a body rendered once, so that B/op is the client's own.
func BenchmarkFetchMemory1M64(b *testing.B) {
	body := answer(MaxSamples, 64)
	token := []byte(`{"access_token":"bench-access-token","expires_in":3600}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathAccessToken {
			w.Write(token)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{BaseURL: srv.URL, Token: "bench-api-token"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(MaxSamples * 8)
	b.ReportAllocs()
	for b.Loop() {
		chunk := make([]byte, 0, MaxSamples*8) // the packed batch itself counts
		p := bitpack.New(64, chunk)
		err := c.fetch(context.Background(), MaxSamples, 64, attemptHooks{before: func() error { p.Reset(chunk); return nil }}, p.Add)
		if err != nil {
			b.Fatal(err)
		}
	}
}
