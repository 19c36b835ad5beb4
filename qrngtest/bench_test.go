package qrngtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// discard is a ResponseWriter that counts and drops the body.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// BenchmarkHandler1M measures the emulator's handler answering 1,000,000
// values, in process, without a network: request parsing, drawing and
// formatting the body.
func BenchmarkHandler1M(b *testing.B) {
	for _, bits := range []int{16, 64} {
		for _, seeded := range []bool{false, true} {
			name := strconv.Itoa(bits) + "bit/cryptorand"
			var seed uint64
			if seeded {
				name, seed = strconv.Itoa(bits)+"bit/seeded", 1
			}
			b.Run(name, func(b *testing.B) {
				e := New(Options{Seed: seed, QuotaBits: -1})
				tok := benchAccessToken(b, e)
				body := `{"distribution":"uniform_discrete","output_type":"decimal","n_samples":1000000,"n_bits":` + strconv.Itoa(bits) + `}`
				b.ReportAllocs()
				var total int64
				for b.Loop() {
					req := httptest.NewRequest("POST", PathRandomNumbers, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+tok)
					d := &discard{h: http.Header{}}
					e.ServeHTTP(d, req)
					if d.n < 1_000_000 {
						b.Fatalf("short answer: %d bytes", d.n)
					}
					total += d.n
				}
				b.SetBytes(total / int64(b.N))
			})
		}
	}
}

func benchAccessToken(b *testing.B, e *Emulator) string {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("POST", PathAccessToken, strings.NewReader(`{"refresh_token":"`+e.Token()+`"}`)))
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.AccessToken == "" {
		b.Fatalf("no access token: %v %s", err, rec.Body)
	}
	return v.AccessToken
}
