package qrng

import (
	"errors"
	"fmt"

	"github.com/qrng-go/qrng/internal/health"
	"github.com/qrng-go/qrng/internal/replay"
)

// ErrRejectedBatch: a batch failed a health test or repeated a recent
// batch. It was erased, never served. The health tests' cutoffs assume 7
// bits of min-entropy per byte (a bit 1 or 0 with probability up to
// 0.545, a byte value up to 1/128), so a healthy but slightly biased
// device is not rejected (TestBiasedButHealthySourceIsServed); a batch
// from such a device fails with probability at most 2^-40.
var ErrRejectedBatch = errors.New("qrng: batch rejected")

// Every batch is checked twice before any byte of it is served: the
// health tests (health.ForBits at the batch's width: SP 800-90B's
// Repetition Count and Adaptive Proportion tests on bytes and on values,
// byte lanes and bit positions) and the replay check against itself and
// the last 16 batches (replay.ForBatch). Their cutoffs are derived for
// the batch's size and width and assume a healthy source of 7 bits of
// min-entropy per byte (health.MinEntropy: a bit 1 or 0 with probability
// up to 0.545, a byte value with probability up to 1/128), not a perfect
// one: a batch from such a source fails with probability at most 2^-40,
// all checks together.

// healthState checks each batch before it may be served. Source guards
// its replay memory with its mutex.
type healthState struct {
	tester health.Tester
	replay *replay.Index
}

// newHealthState returns the checks for batches of batchBytes bytes of
// bits-wide values.
func newHealthState(batchBytes, bits int) healthState {
	return healthState{tester: health.ForBits(bits), replay: replay.ForBatch(batchBytes, bits)}
}

// test runs the health tests on b and returns its replay anchors. It reads
// only immutable state, so it runs without the Source's lock.
func (h *healthState) test(b []byte) ([]replay.Fingerprint, error) {
	if err := h.tester.Check(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejectedBatch, err)
	}
	anchors, err := h.replay.Scan(b)
	if err != nil {
		return nil, fmt.Errorf("%w: replay check: %v", ErrRejectedBatch, err)
	}
	return anchors, nil
}

// remember rejects a batch that repeats, anywhere in it, a run of bytes of
// itself or of one of the recent batches (whole, shifted or in part), else
// records its anchors. The caller holds the Source's lock.
func (h *healthState) remember(anchors []replay.Fingerprint) error {
	if i := h.replay.Remember(anchors); i >= 0 {
		return fmt.Errorf("%w: replay check: it repeats bytes of itself or of one of the last %d batches (anchor %d)",
			ErrRejectedBatch, replay.Memory, i)
	}
	return nil
}

func isRejected(err error) bool { return errors.Is(err, ErrRejectedBatch) }

// isBadAnswer: the service answered, but with data that cannot be used.
func isBadAnswer(err error) bool { return isRejected(err) || errors.Is(err, ErrInvalidResponse) }
