// Package health tests batches of random bytes before they are served,
// for the failures a broken random source really has: stuck output, a
// value or byte repeated too often, a byte value over-represented in some
// byte lane, a bit position of the values stuck or biased.
//
// It runs NIST SP 800-90B's continuous health tests (section 4.4: the
// Repetition Count Test and the Adaptive Proportion Test) on the bytes of
// a batch and on its values at their native width, and two tests over
// the whole batch: a count of each byte value in each byte lane, and a
// count of the ones at each bit position of the values. Every cutoff is
// derived for the batch's size and width so that a batch from a healthy
// source fails with probability at most 2^-44 per check (see cutoff.go):
// false alarms do not grow with the batch. Healthy, as in SP 800-90B, is
// a stated min-entropy, not perfection: MinEntropy, 7 bits per byte,
// spread over the bits, so that a bit may be 1 (or 0) with probability up
// to 0.545 and a byte value (in any lane) may have probability up to
// 1/128 (TestCutoffsMeetTheirBudget, TestSourcesAtTheAssumedMinEntropyPass).
// What fails is far from that: a stuck bit position, a lane stuck at one
// byte, runs and repeats.
//
// Repeats further apart than a few bytes (a stuck cycle, a replayed
// batch) are package replay's business.
package health

import (
	"fmt"
	"sync"
)

// Window is the Adaptive Proportion Test window for bytes (and values of
// more than one bit), and the smallest batch a Source serves from.
const Window = 512

// Tester runs the checks on batches of values of one width. A Tester is
// safe for concurrent use; its zero value tests bytes (width 8), as
// Default does, without caching its cutoffs.
type Tester struct {
	bits  int
	cache *cutoffCache
}

// Default returns the Tester for a stream of bytes: values of 8 bits.
// Prefer ForBits with the values' real width, which also tests the values.
func Default() Tester { return ForBits(8) }

// ForBits returns the Tester for a stream of bits-wide values, packed
// most significant bit first (as package bitpack packs them). It panics if
// bits is outside 1..64.
func ForBits(bits int) Tester {
	if bits < 1 || bits > 64 {
		panic(fmt.Sprintf("health: value width %d outside 1..64", bits))
	}
	return Tester{bits: bits, cache: &cutoffCache{m: map[int]Cutoffs{}}}
}

// Bits is the value width the Tester tests.
func (t Tester) Bits() int {
	if t.bits == 0 {
		return 8
	}
	return t.bits
}

// Cutoffs returns the limits a batch of n bytes is held to.
func (t Tester) Cutoffs(n int) Cutoffs {
	if t.cache == nil {
		return derive(n, t.Bits())
	}
	return t.cache.get(n, t.Bits())
}

// cutoffCache keeps the cutoffs of the batch sizes seen, since deriving
// them costs more than checking a small batch.
type cutoffCache struct {
	mu sync.Mutex
	m  map[int]Cutoffs
}

// cacheSizes bounds how many batch sizes a cache keeps: an upstream that
// returns batches of ever new lengths costs derivations, not memory.
const cacheSizes = 16

func (c *cutoffCache) get(n, bits int) Cutoffs {
	c.mu.Lock()
	v, ok := c.m[n]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = derive(n, bits) // outside the lock: it takes a while
	c.mu.Lock()
	if len(c.m) >= cacheSizes {
		clear(c.m)
	}
	c.m[n] = v
	c.mu.Unlock()
	return v
}

// Check returns an error describing the first failure in b, or nil.
// Every byte of b is tested; b may be of any length, but the proportion
// tests need at least Window bytes (Window values) to run, and the lane
// and bit counts only count whole periods of the lanes: serve batches of
// at least Window bytes.
func (t Tester) Check(b []byte) error {
	c := t.Cutoffs(len(b))
	if err := checkByteRuns(b, c.ByteRun); err != nil {
		return err
	}
	if err := checkByteAPT(b, c.ByteAPT); err != nil {
		return err
	}
	if c.Bits != 8 {
		if err := checkValues(b, c); err != nil {
			return err
		}
	}
	return checkLanes(b, c)
}
