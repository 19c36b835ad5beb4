package health

import "math"

// How the cutoffs are derived.
//
// The null hypothesis is a healthy source of a stated min-entropy, as in
// NIST SP 800-90B's health tests (section 4.4), not a perfect one: a real
// physical noise source has small biases, and a check that rejects them
// fails users for no reason. The cutoffs assume MinEntropy bits per byte
// (7 of 8), spread over the bits: every piece of k bits of the stream
// (k = 1, 8, or the value width), whatever the bits before it, takes any
// one of its values with probability at most 2^(-k*MinEntropy/8). So a
// bit may be 1 (or 0) with probability up to 2^(-7/8), about 0.545; a
// byte, in any lane, may take one value with probability up to 1/128
// (twice the uniform 1/256); a 16-bit value one with up to 2^-14. This
// holds, for instance, for independent bits each 1 with any probability
// from 0.455 to 0.545, and for bits that repeat the bit before with such
// a probability. Genuine uniform bits are a special case.
//
// Every check is a count of events, each of which has probability at
// most p whatever came before (p from the assumption above), so the count
// exceeds k no more often than a Binomial(places, p) count does. Each
// cutoff is the least value whose probability of being reached, anywhere
// in a batch of the given size, is at most 2^-CheckAlphaLog2 (2^-44) for
// every source the assumption admits. There are six checks here and two
// in package replay, so a batch from such a source fails one of them
// with probability at most 8 * 2^-44 = 2^-41, below the 2^-40 that
// AlphaLog2 promises. (The replay check's bound on anchors is derived
// for uniform content; for the biased sources it is measured: see
// package replay's anchorBound.)
//
// Where a check looks at many places in a batch (every offset, every
// window, every byte lane), the bound is a union bound: the number of
// places times the probability at one place. Tails of binomial counts are
// bounded by binomTailLog2, never approximated from below, so each cutoff
// is at least as strict about false alarms as the exact one.
//
// What the assumption costs: a source worse than it may fail at large
// batches, and a failure is caught only when it is far from what a
// healthy source may do. At 1,000,000 16-bit values, one bit position set
// 56% of the time fails, and a byte value at 3/256 in a lane
// (TestSourcesPastTheAssumptionFailLargeBatches); at the default batch
// (100,096 values) a bit position must be set 55.8% of the time, a byte
// value have 2.6 times its uniform share; at the smallest (256 values)
// 78.5% and 23 times over (TestDocumentedCutoffs). A stuck bit, a lane
// stuck at one byte, a stuck run are far past every cutoff
// (TestEveryStuckBitPositionFound, TestFailureModes).

// AlphaLog2 bounds the false alarms of all the checks together: on a
// batch from a source that meets the assumption, of any size, at most one
// in 2^AlphaLog2 fails.
const AlphaLog2 = 40

// CheckAlphaLog2 is each check's share of AlphaLog2: a false alarm
// probability of at most 2^-CheckAlphaLog2 per batch.
const CheckAlphaLog2 = 44

// MinEntropy is the min-entropy, in bits per byte, that the cutoffs
// assume of a healthy source (see the derivation notes above).
const MinEntropy = 7

// entropyPerBit is MinEntropy spread over the 8 bits of a byte.
const entropyPerBit = MinEntropy / 8.0

// maxProb is the most probable any one value of k bits may be under the
// assumption: 2^(-k*MinEntropy/8).
func maxProb(k int) float64 { return math.Exp2(-entropyPerBit * float64(k)) }

// runCutoff is the Repetition Count Test's cutoff for n samples of h bits
// of min-entropy each: the least c such that a run of c equal samples
// starting anywhere has probability at most 2^-alphaLog2.
//
// A run of c equal samples starting at sample i has probability at most
// 2^(-h*(c-1)) (sample i may be anything; each of the c-1 after it equals
// it with probability at most 2^-h, whatever came before);
// there are at most n-c+1 such i. So c is the least value with
// log2(n-c+1) - h*(c-1) <= -alphaLog2.
func runCutoff(n int, h, alphaLog2 float64) int {
	for c := 2; ; c++ {
		places := float64(max(n-c+1, 1))
		if math.Log2(places)-h*float64(c-1) <= -alphaLog2 {
			return c
		}
	}
}

// countCutoff is the least k (above the mean) such that a count
// distributed as Binomial(n, p) reaches k with probability at most
// 2^-alphaLog2; n+1 if even k = n is more likely than that (the count
// can then never fail).
func countCutoff(n int, p, alphaLog2 float64) int {
	lo := int(math.Floor(float64(n)*p)) + 1 // binomTailLog2 needs k above the mean
	if lo > n || binomTailLog2(n, n, p) > -alphaLog2 {
		return n + 1
	}
	hi := n // binomTailLog2(n, hi, p) <= -alphaLog2 holds here
	for lo < hi {
		mid := lo + (hi-lo)/2
		if binomTailLog2(n, mid, p) <= -alphaLog2 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// binomTailLog2 is an upper bound on log2 P[X >= k] for X distributed as
// Binomial(n, p), for k above the mean n*p (0, the trivial bound,
// otherwise). The terms P[X = i] fall for i >= k by the ratio
// r_i = (n-i)p / ((i+1)(1-p)), which itself falls as i grows, so the tail
// is at most P[X = k] * (1 + r_k + r_k^2 + ...) = P[X = k] / (1 - r_k).
// The bound is within a factor 1/(1-r_k) of the exact tail: a few percent
// for the far tails the cutoffs sit in, a factor of ten at most for the
// largest counts here.
func binomTailLog2(n, k int, p float64) float64 {
	if k > n {
		return math.Inf(-1)
	}
	if float64(k) <= float64(n)*p {
		return 0
	}
	r := float64(n-k) * p / (float64(k+1) * (1 - p))
	if r >= 1 {
		return 0
	}
	return binomLog2PMF(n, k, p) - math.Log2(1-r)
}

// binomLog2PMF is log2 P[X = k] for X distributed as Binomial(n, p).
func binomLog2PMF(n, k int, p float64) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	var ln float64
	if k > 0 {
		ln += float64(k) * math.Log(p)
	}
	if n > k {
		ln += float64(n-k) * math.Log1p(-p)
	}
	return (lg(n) - lg(k) - lg(n-k) + ln) / math.Ln2
}

// Cutoffs are the limits a batch of one size and width is held to. A
// check fails when its count reaches its cutoff. Derived by derive; see
// the derivation notes above.
type Cutoffs struct {
	Bytes  int // batch length the cutoffs are for
	Bits   int // value width
	Values int // whole values in the batch

	// Repetition Count Test (SP 800-90B 4.4.1) on bytes: ByteRun equal
	// bytes in a row fail. On values (Bits other than 8): ValueRun equal
	// values in a row fail (0: no value-level test).
	ByteRun, ValueRun int

	// Adaptive Proportion Test (SP 800-90B 4.4.2) on bytes: in each
	// window of Window bytes (the last one ending at the batch's end), the
	// window's first byte seen ByteAPT times fails. On values (Bits other
	// than 8): the same in windows of ValueWindow values (1024 for 1-bit
	// values, 512 otherwise, as the standard has it; the whole batch if it
	// is shorter) with ValueAPT (0: no value-level test).
	ByteAPT, ValueAPT, ValueWindow int

	// Byte lanes: the stream repeats its layout of value boundaries every
	// Lanes bytes (lcm(Bits, 8)/8), so byte i is in lane i mod Lanes.
	// Each of the 256 byte values seen LaneMax times in one lane fails.
	// Only whole periods of Lanes bytes are counted: LaneSamples bytes per
	// lane.
	Lanes, LaneSamples, LaneMax int

	// Bit positions: each of the Bits bit positions of the values counted
	// over the BitSamples values in the lanes' whole periods; BitMax or
	// more ones, or BitSamples-BitMax or fewer, fail.
	BitSamples, BitMax int
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// derive works out the cutoffs for a batch of n bytes of bits-wide values.
func derive(n, bits int) Cutoffs {
	a := float64(CheckAlphaLog2)
	c := Cutoffs{Bytes: n, Bits: bits, Values: n * 8 / bits}

	// RCT on bytes: n bytes of MinEntropy bits each.
	c.ByteRun = runCutoff(n, MinEntropy, a)

	// APT on bytes: the first byte of a window is whatever it is; each of
	// the other Window-1 bytes equals it with probability at most
	// maxProb(8) = 1/128, so the window's count is at most
	// 1 + Binomial(Window-1, 1/128). There are ceil(n/Window) windows:
	// each gets its share of the 2^-44.
	if n >= Window {
		windows := (n + Window - 1) / Window
		c.ByteAPT = 1 + countCutoff(Window-1, maxProb(8), a+math.Log2(float64(windows)))
	}

	if bits != 8 {
		// RCT on values: Values values of bits*MinEntropy/8 bits each.
		c.ValueRun = runCutoff(c.Values, entropyPerBit*float64(bits), a)
		// APT on values, as on bytes, with p = maxProb(bits).
		// A batch of fewer values than a window is tested as one window.
		c.ValueWindow = 512
		if bits == 1 {
			c.ValueWindow = 1024
		}
		c.ValueWindow = min(c.ValueWindow, c.Values)
		if c.ValueWindow >= 2 {
			windows := (c.Values + c.ValueWindow - 1) / c.ValueWindow
			c.ValueAPT = 1 + countCutoff(c.ValueWindow-1, maxProb(bits), a+math.Log2(float64(windows)))
		}
	}

	// Byte lanes: each of the 256*Lanes (lane, value) counts is at most
	// Binomial(LaneSamples, 1/128); the union bound spreads the 2^-44
	// over all of them.
	c.Lanes = bits / gcd(bits, 8)
	c.LaneSamples = n / c.Lanes
	c.LaneMax = countCutoff(c.LaneSamples, maxProb(8), a+math.Log2(256*float64(c.Lanes)))

	// Bit positions: a period of Lanes bytes holds 8*Lanes/bits values, so
	// each bit position is counted once per value in the whole periods.
	// Its ones, and its zeros, are each at most Binomial(BitSamples,
	// maxProb(1)): two tails for each of the bits positions.
	c.BitSamples = c.LaneSamples * c.Lanes * 8 / bits
	c.BitMax = countCutoff(c.BitSamples, maxProb(1), a+math.Log2(2*float64(bits)))
	return c
}
