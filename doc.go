// Package qrng makes QCI's uQRNG quantum random number service usable as
// ordinary Go randomness.
//
// A Source fetches large batches of random integers from the service's
// HTTP API, packs their bits into one continuous stream, checks each batch
// (SP 800-90B health tests and a replay check) and serves the bits through
// two interfaces:
//
//   - Uint64, so that rand.New(qrng.NewSource(cfg)) is a math/rand/v2
//     generator for simulations, lotteries and games;
//   - Read, an io.Reader for keys and nonces.
//
// The checks assume, as SP 800-90B's health tests do, a healthy source of
// 7 bits of min-entropy per byte, not a perfect one: a slightly biased
// device is served, a stuck bit, byte lane or cycle and a replay are not
// (see ErrRejectedBatch and README.md, "The checks every batch passes").
//
// A Source is safe for concurrent use. While it has bytes ready, Uint64
// and Reads of up to 256 bytes take no lock: each claims its bytes with one
// atomic add on a published window of up to 16 KiB (at most a quarter of
// the prefetch target), and once concurrent callers collide, each
// goroutine claims from windows of its own. Values
// are the service's stream in order while one goroutine at a time uses the
// Source; after that, each value is still bytes of the stream served once,
// but not in stream order.
//
// A Source spends about what its callers take: its first request asks for
// what the first read needs (rounded up to whole 512-byte health-test
// windows), and each request that succeeds doubles the next, up to
// Config.BatchSize; Stats says what was fetched and what was served.
//
// The numbers are quantum only when they come from the service. They are
// not quantum when a Source falls back to crypto/rand (see FallbackPolicy;
// every fallback byte is counted in Stats, logged and reported to
// Config.OnFallback), nor when they come from the qrngtest emulator.
//
// # Keys and nonces under Go 1.26
//
// In a main module whose go.mod says go 1.26 or later, ecdsa, rsa, ecdh's
// GenerateKey and crypto/rand.Prime ignore the io.Reader passed to them
// (unless GODEBUG=cryptocustomrand=1) and use the system's generator.
// ed25519.GenerateKey still reads it. To make keys from quantum bytes, read
// the bytes yourself with io.ReadFull and build the key from them:
// ed25519.NewKeyFromSeed, ecdh.Curve.NewPrivateKey, an AES key, a GCM
// nonce. Never install a Source as crypto/rand.Reader: Go crashes the
// process if that reader ever fails.
//
// A Client gives direct access to the three endpoints (access tokens,
// random numbers, usage) with retries and error mapping; package qrngtest
// emulates the service for tests.
package qrng
