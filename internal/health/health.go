// Package health implements the continuous health tests of NIST SP 800-90B,
// section 4.4, on bytes: the Repetition Count Test and the Adaptive
// Proportion Test, with cutoffs computed from a false-alarm probability and
// an assumed min-entropy per byte.
package health

import (
	"fmt"
	"math"
)

// Window is the Adaptive Proportion Test window for non-binary samples.
const Window = 512

// RCTCutoff is the Repetition Count Test cutoff: a run of this many
// identical samples fails. alphaLog2 is -log2 of the false-alarm
// probability (40 for 2^-40); h is the assumed min-entropy per sample.
// C = 1 + ceil(alphaLog2 / h).
func RCTCutoff(alphaLog2, h float64) int {
	return 1 + int(math.Ceil(alphaLog2/h))
}

// APTCutoff is the Adaptive Proportion Test cutoff for a window of w
// samples: a window in which its first sample occurs this many times fails.
// C = 1 + CRITBINOM(w, 2^-h, 1 - 2^-alphaLog2), where CRITBINOM(n, p, q)
// is the least k with P[Binomial(n, p) <= k] >= q.
func APTCutoff(w int, alphaLog2, h float64) int {
	p := math.Exp2(-h)
	alpha := math.Exp2(-alphaLog2)
	// Sum the upper tail from the top down until it exceeds alpha; the
	// tail is summed in that order to keep its small terms exact.
	tail := 0.0
	for k := w; k >= 0; k-- {
		tail += binomPMF(w, k, p)
		if tail > alpha {
			// P[X >= k] > alpha, so P[X <= k] >= 1-alpha fails below k:
			// the least k with P[X <= k] >= 1 - alpha is k itself.
			return 1 + k
		}
	}
	return 1
}

func binomPMF(n, k int, p float64) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// The parameters every batch in this module is tested with, by a Source
// and by a pool's filler alike: false alarms 2^-AlphaLog2 per test, at
// least MinEntropy bits of min-entropy per byte assumed.
const (
	AlphaLog2  = 40
	MinEntropy = 7
)

// Default returns the Tester with AlphaLog2 and MinEntropy.
func Default() Tester { return New(AlphaLog2, MinEntropy) }

// Tester runs both tests over a batch of bytes, each batch on its own.
type Tester struct {
	RCT int // Repetition Count Test cutoff
	APT int // Adaptive Proportion Test cutoff, per Window bytes
}

// New returns a Tester for a false-alarm probability of 2^-alphaLog2 and
// an assumed min-entropy of h bits per byte.
func New(alphaLog2, h float64) Tester {
	return Tester{RCT: RCTCutoff(alphaLog2, h), APT: APTCutoff(Window, alphaLog2, h)}
}

// Check returns an error describing the first failure in b, or nil. The
// Adaptive Proportion Test covers b in windows of Window bytes, the last
// one ending at len(b); b shorter than Window gets only the Repetition
// Count Test, so callers should not serve fewer than Window tested bytes.
func (t Tester) Check(b []byte) error {
	run := 0
	for i := range b {
		if i > 0 && b[i] == b[i-1] {
			run++
		} else {
			run = 1
		}
		if run >= t.RCT {
			return fmt.Errorf("repetition count test: byte %#02x repeated %d times at offset %d (cutoff %d)",
				b[i], run, i-run+1, t.RCT)
		}
	}
	for start := 0; start < len(b); start += Window {
		if start+Window > len(b) {
			// A tail shorter than a window is tested in the last full
			// window, which overlaps the one before: every byte is tested.
			if len(b) < Window {
				break
			}
			start = len(b) - Window
		}
		a := b[start]
		count := 0
		for _, c := range b[start : start+Window] {
			if c == a {
				count++
			}
		}
		if count >= t.APT {
			return fmt.Errorf("adaptive proportion test: byte %#02x occurs %d times in the %d bytes at offset %d (cutoff %d)",
				a, count, Window, start, t.APT)
		}
	}
	return nil
}
