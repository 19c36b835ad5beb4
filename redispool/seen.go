package redispool

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// The pool's shared replay memory: each push records digests of a sample
// of its batch's chunks in a sorted set in Redis, each until it expires,
// and refuses a batch any of whose sampled digests the set holds. So a
// batch the service sends to two fillers, or again to a filler restarted
// since (whose own memory is gone), enters the pool once.
//
// The digests are of whole chunks, as every filler of the pool cuts them
// (one chunk size per pool, each batch cut from its first byte), and the
// sample is chosen by the digest itself: two fillers given the same batch
// keep the same digests, whatever their batch sizes, with no secret to
// share. Each filler's own replay check (internal/replay) also finds
// shifted and partial repeats, but its anchors are keyed by a secret of
// its own, so they cannot be compared across fillers: across fillers a
// repeat is found chunk for chunk (a batch sent again whole, or any run of
// whole chunks of it that holds a sampled one), not shifted.
//
// Only a one-way digest is stored (8 bytes of SHA-256 of the chunk under
// a domain string), never the bytes.
const (
	seenTTL      = 24 * time.Hour // how long a batch's digests are remembered
	seenCap      = 8192           // digests kept at most (the oldest go first): about 256 batches
	seenPerBatch = 32             // digests sampled per batch, about
)

// seenDomain starts every digest of the shared replay memory.
var seenDomain = []byte("qrng/redispool seen v2")

// fingerprints returns the digests of a sample of b's chunks of chunk
// bytes, about seenPerBatch of them (all of them for a batch with fewer
// chunks), as push arguments.
func fingerprints(b []byte, chunk int) []any {
	n := len(b) / chunk
	if n == 0 {
		return nil
	}
	threshold := uint64(1) << 32 // keep all
	if n > seenPerBatch {
		threshold = (uint64(1) << 32) * seenPerBatch / uint64(n)
	}
	out := make([]any, 0, min(n, 2*seenPerBatch))
	have := map[[8]byte]bool{}
	h := sha256.New()
	var sum [sha256.Size]byte
	for i := range n {
		h.Reset()
		h.Write(seenDomain)
		h.Write(b[i*chunk : (i+1)*chunk])
		h.Sum(sum[:0])
		if uint64(binary.BigEndian.Uint32(sum[8:12])) >= threshold {
			continue
		}
		d := [8]byte(sum[:8])
		if !have[d] {
			have[d] = true
			out = append(out, d[:])
		}
	}
	clear(sum[:])
	return out
}
