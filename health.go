package qrng

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/qrng-go/qrng/internal/health"
)

// ErrRejectedBatch: a batch failed a health test or repeated a recent
// batch. It was erased, never served.
var ErrRejectedBatch = errors.New("qrng: batch rejected")

// Entropy assumption for the health tests: at least 7 bits of min-entropy
// per packed byte (a full-entropy source has 8), with a false-alarm
// probability of 2^-40 per test (SP 800-90B section 4.4). With it the
// Repetition Count Test fails a run of 7 equal bytes and the Adaptive
// Proportion Test a byte seen too often in a 512-byte window.
const (
	healthAlphaLog2  = 40
	healthMinEntropy = 7
	replayMemory     = 16 // recent batches remembered for the replay check
)

// healthState checks each batch before it may be served. Source guards it
// with its mutex.
type healthState struct {
	tester health.Tester
	recent [replayMemory][sha256.Size]byte
	next   int
	seen   int
}

func newHealthState() healthState {
	return healthState{tester: health.New(healthAlphaLog2, healthMinEntropy)}
}

// test runs the health tests on b and returns its digest for the replay
// check. It reads only immutable state, so it runs without the Source's
// lock.
func (h *healthState) test(b []byte) ([sha256.Size]byte, error) {
	if err := h.tester.Check(b); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("%w: %v", ErrRejectedBatch, err)
	}
	return sha256.Sum256(b), nil
}

// remember rejects a digest seen among the recent batches, else records
// it. The caller holds the Source's lock.
func (h *healthState) remember(sum [sha256.Size]byte) error {
	for i := range min(h.seen, replayMemory) {
		if h.recent[i] == sum {
			return fmt.Errorf("%w: it repeats a recent batch (replay)", ErrRejectedBatch)
		}
	}
	h.recent[h.next] = sum
	h.next = (h.next + 1) % replayMemory
	h.seen++
	return nil
}

func isRejected(err error) bool { return errors.Is(err, ErrRejectedBatch) }

// isBadAnswer: the service answered, but with data that cannot be used.
func isBadAnswer(err error) bool { return isRejected(err) || errors.Is(err, ErrInvalidResponse) }
