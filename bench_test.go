package qrng

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/internal/decode"
	"github.com/qrng-go/qrng/qrngtest"
)

// The baselines run in this file so that one `go test -bench` run gives
// every ratio: math/rand/v2's ChaCha8 and PCG, and crypto/rand.

// warmSource returns a Source whose buffer holds at least n bytes and that
// never fetches: the benchmarks below measure serving, not the network.
// Every byte pushed lies in memory of its own (copies of one random MiB),
// so that served, erased bytes are never served again as zeros (which
// would make IntN's rejection sampling loop) and large reads are not all
// from a hot cache.
func warmSource(b *testing.B, n int64, mix bool) *Source {
	b.Helper()
	s := NewSource(Config{Token: "unused", BaseURL: "http://127.0.0.1:1", Mix: mix})
	b.Cleanup(func() { s.Close() })
	seed := make([]byte, 1<<20)
	crand.Read(seed)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target, s.low = s.capacity, 0 // past the slow start (windows of 16 KiB), and never refill
	for pushed := int64(0); pushed < n+8; pushed += int64(len(seed)) {
		s.buf.push(bytes.Clone(seed))
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

// goroutineCounts are the parallelisms of BenchmarkServe. Each figure is
// the time per operation of all goroutines together (as RunParallel
// reports), so on 2 cores more goroutines cannot go below half the time.
var goroutineCounts = []int{1, 2, 4, 8}

// serveOps are the calls BenchmarkServe times, with the bytes of the
// stream each may use (a bound, for warmSource).
var serveOps = []struct {
	name  string
	bytes int64
	f     func(r *rand.Rand, p []byte)
}{
	{"Uint64", 8, func(r *rand.Rand, _ []byte) { r.Uint64() }},
	{"IntN1000", 16, func(r *rand.Rand, _ []byte) { r.IntN(1000) }},
	{"Float64", 8, func(r *rand.Rand, _ []byte) { r.Float64() }},
	{"Perm100", 1600, func(r *rand.Rand, _ []byte) { r.Perm(100) }},
}

// BenchmarkServe times the drop-in idiom, rand.New(src), and Read of 32
// bytes at 1, 2, 4 and 8 goroutines sharing one Source, beside ChaCha8 and
// PCG (one per goroutine), ChaCha8 behind a mutex (shared, as a Source
// is) and crypto/rand, all in the same run.
func BenchmarkServe(b *testing.B) {
	for _, op := range serveOps {
		for _, g := range goroutineCounts {
			name := fmt.Sprintf("%s/g=%d/", op.name, g)
			b.Run(name+"qrng", func(b *testing.B) {
				src := warmSource(b, int64(b.N)*op.bytes, false)
				runGoroutines(b, g, func() func() {
					r := rand.New(src)
					return func() { op.f(r, nil) }
				})
			})
			b.Run(name+"ChaCha8", func(b *testing.B) {
				runGoroutines(b, g, func() func() {
					r := rand.New(rand.NewChaCha8([32]byte{byte(g)}))
					return func() { op.f(r, nil) }
				})
			})
			b.Run(name+"PCG", func(b *testing.B) {
				runGoroutines(b, g, func() func() {
					r := rand.New(rand.NewPCG(1, uint64(g)))
					return func() { op.f(r, nil) }
				})
			})
			b.Run(name+"ChaCha8Locked", func(b *testing.B) {
				shared := &lockedChaCha8{c: rand.NewChaCha8([32]byte{1})}
				runGoroutines(b, g, func() func() {
					r := rand.New(shared)
					return func() { op.f(r, nil) }
				})
			})
			b.Run(name+"cryptorand", func(b *testing.B) {
				runGoroutines(b, g, func() func() {
					r := rand.New(cryptoSource{})
					return func() { op.f(r, nil) }
				})
			})
		}
	}
	for _, g := range goroutineCounts {
		name := fmt.Sprintf("Read32B/g=%d/", g)
		b.Run(name+"qrng", func(b *testing.B) {
			src := warmSource(b, int64(b.N)*32, false)
			b.SetBytes(32)
			runGoroutines(b, g, func() func() {
				p := make([]byte, 32, 256) // a cache line of its own: no false sharing between goroutines
				return func() { src.Read(p) }
			})
		})
		b.Run(name+"cryptorand", func(b *testing.B) {
			b.SetBytes(32)
			runGoroutines(b, g, func() func() {
				p := make([]byte, 32, 256) // a cache line of its own: no false sharing between goroutines
				return func() { crand.Read(p) }
			})
		})
		b.Run(name+"ChaCha8", func(b *testing.B) {
			b.SetBytes(32)
			runGoroutines(b, g, func() func() {
				c := rand.NewChaCha8([32]byte{byte(g)})
				p := make([]byte, 32, 256) // a cache line of its own: no false sharing between goroutines
				return func() { c.Read(p) }
			})
		})
	}
}

// runGoroutines runs b.N calls spread over g goroutines, each with its
// own state from setup, and reports allocations.
func runGoroutines(b *testing.B, g int, setup func() func()) {
	calls := make([]func(), g)
	for i := range calls {
		calls[i] = setup()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, call := range calls {
		n := b.N / g
		if i == 0 {
			n += b.N % g
		}
		wg.Go(func() {
			for range n {
				call()
			}
		})
	}
	wg.Wait()
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
				s := warmSource(b, int64(b.N)*int64(sz.n), mix)
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
				err := c.fetch(context.Background(), MaxSamples, bits, attemptHooks{before: func() error { p.Reset(chunk[:0]); return nil }}, addAll(p))
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
		err := c.fetch(context.Background(), MaxSamples, 64, attemptHooks{before: func() error { p.Reset(chunk); return nil }}, addAll(p))
		if err != nil {
			b.Fatal(err)
		}
	}
}

var sinkClaim uint64

// BenchmarkClaimCost explains Source.Uint64's time at one goroutine: the
// atomic add that claims its bytes, beside a plain add, a whole ChaCha8
// call and Source.Uint64 itself, called directly (no rand.Rand), in one run.
func BenchmarkClaimCost(b *testing.B) {
	b.Run("atomicAdd", func(b *testing.B) {
		var x atomic.Int64
		for b.Loop() {
			sinkClaim += uint64(x.Add(8))
		}
	})
	b.Run("plainAdd", func(b *testing.B) {
		var x int64
		for b.Loop() {
			x += 8
			sinkClaim += uint64(x)
		}
	})
	b.Run("ChaCha8Uint64", func(b *testing.B) {
		c := rand.NewChaCha8([32]byte{1})
		for b.Loop() {
			sinkClaim += c.Uint64()
		}
	})
	b.Run("SourceUint64", func(b *testing.B) {
		s := warmSource(b, int64(b.N)*8, false)
		b.ResetTimer()
		for range b.N {
			sinkClaim += s.Uint64()
		}
	})
}
