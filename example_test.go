package qrng_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
)

// The drop-in idiom: a math/rand/v2 generator fed by the service. Here the
// service is a seeded emulator, so the output is reproducible; with a real
// token, leave out BaseURL and set Token (or $QCI_TOKEN).
func ExampleNewSource() {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: 1})
	defer srv.Close()

	src := qrng.NewSource(qrng.Config{Token: srv.Token, BaseURL: srv.URL, Workers: 1})
	defer src.Close()
	r := rand.New(src)

	fmt.Println(r.IntN(100), r.IntN(100), r.IntN(100))
	fmt.Println(r.Perm(5))
	// Output:
	// 90 72 89
	// [2 1 4 0 3]
}

// A 96-bit AES-GCM nonce and a 256-bit AES key, read with io.ReadFull.
func ExampleSource_Read() {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: 2})
	defer srv.Close()
	src := qrng.NewSource(qrng.Config{Token: srv.Token, BaseURL: srv.URL, Workers: 1})
	defer src.Close()

	key := make([]byte, 32)
	nonce := make([]byte, 12)
	if _, err := io.ReadFull(src, key); err != nil {
		panic(err)
	}
	if _, err := io.ReadFull(src, nonce); err != nil {
		panic(err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	sealed := gcm.Seal(nil, nonce, []byte("attack at dawn"), nil)
	fmt.Printf("nonce %x\n", nonce)
	fmt.Println(len(sealed), "bytes sealed")
	// Output:
	// nonce 8033131fe4907fd4fb8e5804
	// 30 bytes sealed
}

// An Ed25519 key from 32 quantum bytes. ed25519.NewKeyFromSeed uses the
// bytes as they are, whatever the Go version.
func Example_ed25519() {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: 3})
	defer srv.Close()
	src := qrng.NewSource(qrng.Config{Token: srv.Token, BaseURL: srv.URL, Workers: 1})
	defer src.Close()

	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(src, seed); err != nil {
		panic(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	sig := ed25519.Sign(priv, []byte("hello"))
	fmt.Printf("public key %x...\n", priv.Public().(ed25519.PublicKey)[:8])
	fmt.Println("verifies:", ed25519.Verify(priv.Public().(ed25519.PublicKey), []byte("hello"), sig))
	// Output:
	// public key 727faa215d235309...
	// verifies: true
}

// An X25519 key from quantum bytes. Since Go 1.26, ecdh's GenerateKey
// ignores a custom Reader; NewPrivateKey takes the bytes as they are.
func Example_ecdh() {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: 4})
	defer srv.Close()
	src := qrng.NewSource(qrng.Config{Token: srv.Token, BaseURL: srv.URL, Workers: 1})
	defer src.Close()

	raw := make([]byte, 32)
	if _, err := io.ReadFull(src, raw); err != nil {
		panic(err)
	}
	priv, err := ecdh.X25519().NewPrivateKey(raw)
	clear(raw)
	if err != nil {
		panic(err)
	}
	fmt.Printf("public key %x...\n", priv.PublicKey().Bytes()[:8])
	// Output:
	// public key ddc0b792c1abd0e7...
}

// When the monthly quota runs out, FallbackOnQuota serves crypto/rand
// bytes instead, and says so: in Stats, in the log, and to OnFallback.
func ExampleSource_Stats() {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	src := qrng.NewSource(qrng.Config{
		Token: srv.Token, BaseURL: srv.URL, Workers: 1,
		BatchSize: 1024, QuotaBits: 16_384, // one batch of 1024 16-bit values
		Fallback: qrng.FallbackOnQuota,
		Logger:   slog.New(slog.DiscardHandler),
		OnFallback: func(e qrng.FallbackEvent) {
			fmt.Println("fallback active:", e.Active)
		},
	})
	defer src.Close()

	buf := make([]byte, 3000)
	if _, err := src.Read(buf); err != nil {
		panic(err)
	}
	st := src.Stats()
	fmt.Println("quantum bytes:", st.QuantumBytes)
	fmt.Println("fallback bytes:", st.FallbackBytes)
	fmt.Println("quota bits used:", st.QuotaBitsUsed)
	// Output:
	// fallback active: true
	// quantum bytes: 2048
	// fallback bytes: 952
	// quota bits used: 16384
}

// The Client calls the three endpoints directly, with retries and error
// mapping; this is the quickstart's own request.
func ExampleClient_RandomNumbers() {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: 5})
	defer srv.Close()
	c, err := qrng.NewClient(qrng.ClientConfig{Token: srv.Token, BaseURL: srv.URL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	vals, err := c.RandomNumbers(ctx, 5, 16)
	if err != nil {
		panic(err)
	}
	fmt.Println(vals)
	now := time.Now()
	used, err := c.Usage(ctx, now.AddDate(0, 0, -1), now) // UTC days, both included
	if err != nil {
		panic(err)
	}
	fmt.Println(used, "bits used since yesterday")
	// Output:
	// [50715 34385 29539 11524 59424]
	// 80 bits used since yesterday
}

// A Monte Carlo estimate of π from quantum-seeded generators: one Seeded
// per worker goroutine, all seeded from one shared Source (a Seeded, like
// rand.ChaCha8, is not safe for concurrent use). Each generator costs 32
// bytes of the Source to make and 32 more per MiB it generates, so the 8
// million points here (128 MB of output) take 124 seeds, about 4 KB. Here
// the service is the emulator, whose numbers are not quantum; with a real
// token, leave out BaseURL and set Token (or $QCI_TOKEN).
//
// The workers take their seeds in an order that varies from run to run,
// so the estimate's last digits vary too: only what does not depend on
// that is printed, π to two places (the standard error at 8 million
// points is 0.0006) and the seed counts.
func ExampleNewSeeded() {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: 6})
	defer srv.Close()
	src := qrng.NewSource(qrng.Config{Token: srv.Token, BaseURL: srv.URL, OnDemand: true}) // seeds are few
	defer src.Close()

	const workers, points = 4, 2_000_000 // points per worker
	results := make([]struct {
		inside int
		stats  qrng.SeededStats
	}, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			g := qrng.NewSeeded(src, qrng.SeededConfig{}) // reseeded every 1 MiB
			defer g.Close()
			r := rand.New(g)
			for range points {
				x, y := r.Float64(), r.Float64()
				if x*x+y*y < 1 {
					results[w].inside++
				}
			}
			results[w].stats = g.Stats()
		})
	}
	wg.Wait()

	inside, seeds, quantum := 0, int64(0), int64(0)
	for _, res := range results {
		inside += res.inside
		seeds += res.stats.Reseeds
		quantum += res.stats.QuantumReseeds
	}
	fmt.Printf("π ≈ %.2f\n", 4*float64(inside)/(workers*points))
	fmt.Println("seeds:", seeds, "from the service:", quantum)
	// Output:
	// π ≈ 3.14
	// seeds: 124 from the service: 124
}
