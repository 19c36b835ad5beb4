package qrng

import (
	"errors"
	"fmt"

	"github.com/qrng-go/qrng/internal/health"
	"github.com/qrng-go/qrng/internal/replay"
)

// ErrRejectedBatch: a batch failed a health test or repeated a recent
// batch. It was erased, never served.
var ErrRejectedBatch = errors.New("qrng: batch rejected")

// The health tests assume at least 7 bits of min-entropy per packed byte
// (a full-entropy source has 8) and allow a false-alarm probability of
// 2^-40 per test (SP 800-90B section 4.4): the Repetition Count Test fails
// a run of 7 equal bytes and the Adaptive Proportion Test a byte seen too
// often in a 512-byte window (health.Default). The replay check remembers
// the last 16 batches (replay.ForBatches).

// healthState checks each batch before it may be served. Source guards it
// with its mutex.
type healthState struct {
	tester health.Tester
	replay *replay.Index
}

// newHealthState returns the checks for batches of batchBytes.
func newHealthState(batchBytes int) healthState {
	return healthState{tester: health.Default(), replay: replay.ForBatches(batchBytes)}
}

// test runs the health tests on b and returns its replay anchors. It reads
// only immutable state, so it runs without the Source's lock.
func (h *healthState) test(b []byte) ([]replay.Fingerprint, error) {
	if err := h.tester.Check(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejectedBatch, err)
	}
	return h.replay.Anchors(b), nil
}

// remember rejects a batch that repeats, anywhere in it, a run of bytes of
// itself or of one of the recent batches (whole, shifted or in part), else
// records its anchors. The caller holds the Source's lock.
func (h *healthState) remember(anchors []replay.Fingerprint) error {
	if i := h.replay.Remember(anchors); i >= 0 {
		return fmt.Errorf("%w: it repeats bytes of a recent batch (replay, anchor %d)", ErrRejectedBatch, i)
	}
	return nil
}

func isRejected(err error) bool { return errors.Is(err, ErrRejectedBatch) }

// isBadAnswer: the service answered, but with data that cannot be used.
func isBadAnswer(err error) bool { return isRejected(err) || errors.Is(err, ErrInvalidResponse) }
