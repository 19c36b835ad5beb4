package redispool

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/qrng-go/qrng/internal/replay"
)

// The pool's shared replay memory: each push records a sample of its
// batch's anchors (the replay check's fingerprints of runs of bytes,
// chosen by content; see internal/replay) in a sorted set in Redis, each
// until it expires, and refuses a batch any of whose sampled anchors the
// set holds. So a batch the service sends to two fillers, or again to a
// filler restarted since (whose own memory is gone), enters the pool once.
//
// Only a one-way digest of each anchor is stored (8 bytes of SHA-256 of
// it), never the bytes or the anchor itself, which is a linear function
// of the bytes it covers. The sample is chosen by the digest, so two
// fillers keep the same anchors of the same bytes; a larger batch keeps
// a sparser sample, and a sparser sample is a subset of a denser one, so
// fillers with other batch sizes still meet on the bytes they share.
const (
	seenTTL      = 24 * time.Hour // how long a batch's digests are remembered
	seenCap      = 8192           // digests kept at most (the oldest go first): about 256 batches
	seenPerBatch = 32             // digests sampled per batch, about
)

// fingerprints returns the digests of a sample of anchors, about
// seenPerBatch of them (all of them for a batch with fewer), as push
// arguments.
func fingerprints(anchors []replay.Fingerprint) []any {
	if len(anchors) == 0 {
		return nil
	}
	threshold := uint64(1) << 32 // keep all
	if len(anchors) > seenPerBatch {
		threshold = (uint64(1) << 32) * seenPerBatch / uint64(len(anchors))
	}
	out := make([]any, 0, min(len(anchors), 2*seenPerBatch))
	have := map[[8]byte]bool{}
	var in [len("qrng/redispool seen v1") + 16]byte
	copy(in[:], "qrng/redispool seen v1")
	for _, a := range anchors {
		binary.LittleEndian.PutUint64(in[len(in)-16:], a[0])
		binary.LittleEndian.PutUint64(in[len(in)-8:], a[1])
		h := sha256.Sum256(in[:])
		if uint64(binary.BigEndian.Uint32(h[8:12])) >= threshold {
			continue
		}
		d := [8]byte(h[:8])
		if !have[d] {
			have[d] = true
			out = append(out, d[:])
		}
	}
	return out
}
