package health

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// checkByteRuns is the Repetition Count Test on bytes: a run of cutoff
// equal bytes fails. Every cutoff here is at least 7, and any 7
// consecutive bytes hold an aligned group of 4, so only aligned 4-byte
// words whose bytes are all equal (one in 2^24 on random data) need a
// closer look.
func checkByteRuns(b []byte, cutoff int) error {
	if cutoff < 7 {
		return checkByteRunsFrom(b, 0, len(b), cutoff)
	}
	i := 0
	for ; i+8 <= len(b); i += 8 {
		// Both aligned 4-byte groups of the 8 bytes at i at once: y's
		// bytes are each byte xor the next, so a group of equal bytes is
		// three zero bytes of y.
		x := binary.LittleEndian.Uint64(b[i:])
		y := x ^ x>>8
		if y&0x0000_0000_00ff_ffff != 0 && y&0x00ff_ffff_0000_0000 != 0 {
			continue
		}
		if err := byteRunAt(b, i, cutoff); err != nil {
			return err
		}
		if err := byteRunAt(b, i+4, cutoff); err != nil {
			return err
		}
	}
	for ; i+4 <= len(b); i += 4 {
		if err := byteRunAt(b, i, cutoff); err != nil {
			return err
		}
	}
	return nil
}

// byteRunAt fails if the aligned group b[i:i+4] is all one byte and lies
// in a run of at least cutoff bytes.
func byteRunAt(b []byte, i, cutoff int) error {
	v := b[i]
	if b[i+1] != v || b[i+2] != v || b[i+3] != v {
		return nil
	}
	s, e := i, i+4
	for s > 0 && b[s-1] == v {
		s--
	}
	for e < len(b) && b[e] == v {
		e++
	}
	if e-s >= cutoff {
		return runError(v, e-s, s, cutoff)
	}
	return nil
}

// checkByteRunsFrom is the plain form of the test, on b[from:to].
func checkByteRunsFrom(b []byte, from, to, cutoff int) error {
	run := 0
	for i := from; i < to; i++ {
		if i > from && b[i] == b[i-1] {
			run++
		} else {
			run = 1
		}
		if run >= cutoff {
			return runError(b[i], run, i-run+1, cutoff)
		}
	}
	return nil
}

func runError(v byte, run, off, cutoff int) error {
	return fmt.Errorf("repetition count test: byte %#02x repeated %d times at offset %d (cutoff %d)", v, run, off, cutoff)
}

// checkByteAPT is the Adaptive Proportion Test on bytes: in each window
// of Window bytes the window's first byte may occur fewer than cutoff
// times. The windows tile b from its start; a tail shorter than a window
// is tested in the last full window, which ends at len(b) and overlaps
// the one before, so every byte is in a tested window. Nothing is tested
// when b is shorter than a window (cutoff 0).
func checkByteAPT(b []byte, cutoff int) error {
	if cutoff == 0 || len(b) < Window {
		return nil
	}
	for start := 0; start < len(b); start += Window {
		start := min(start, len(b)-Window)
		a := b[start]
		if n := bytes.Count(b[start:start+Window], b[start:start+1]); n >= cutoff {
			return fmt.Errorf("adaptive proportion test: byte %#02x occurs %d times in the %d bytes at offset %d (cutoff %d)",
				a, n, Window, start, cutoff)
		}
	}
	return nil
}

// unpack reads len(out) values of bits bits from b, packed most
// significant bit first, starting with value first.
func unpack(b []byte, first int, bits uint, out []uint64) {
	switch bits {
	case 16:
		b := b[2*first:]
		for i := range out {
			out[i] = uint64(binary.BigEndian.Uint16(b[2*i:]))
		}
		return
	case 32:
		b := b[4*first:]
		for i := range out {
			out[i] = uint64(binary.BigEndian.Uint32(b[4*i:]))
		}
		return
	case 64:
		b := b[8*first:]
		for i := range out {
			out[i] = binary.BigEndian.Uint64(b[8*i:])
		}
		return
	}
	o := uint(first) * bits
	i := 0
	if bits <= 56 { // one load holds the value, whatever its bit shift
		for ; i < len(out) && int(o>>3)+8 <= len(b); i++ {
			out[i] = binary.BigEndian.Uint64(b[o>>3:o>>3+8]) << (o & 7) >> (64 - bits)
			o += bits
		}
	}
	for ; i < len(out) && int(o>>3)+9 <= len(b); i++ {
		j, s := o>>3, o&7
		x := binary.BigEndian.Uint64(b[j:j+8])<<s | uint64(b[j+8])>>(8-s)
		out[i] = x >> (64 - bits)
		o += bits
	}
	for ; i < len(out); i++ { // the last few values: bit by bit
		var v uint64
		for k := range bits {
			bit := o + k
			v = v<<1 | uint64(b[bit>>3]>>(7-bit&7)&1)
		}
		out[i] = v
		o += bits
	}
}

// valueBlock is how many values checkValues unpacks at a time: the
// proportion test's window for values of more than one bit.
const valueBlock = 512

// checkValues runs the Repetition Count Test and the Adaptive Proportion
// Test on the values, at their width, unpacking them a block at a time.
func checkValues(b []byte, c Cutoffs) error {
	n := c.Values
	if n == 0 {
		return nil
	}
	switch c.Bits {
	case 1:
		return checkBitValues(b, c)
	case 16:
		if err := checkValues16(b, c); err != errCloserLook {
			return err
		}
	}
	var buf [valueBlock]uint64
	bits := uint(c.Bits)
	unpack(b, 0, bits, buf[:1])
	prev, run := buf[0], 0
	for start := 0; start < n; start += valueBlock {
		vs := buf[:min(valueBlock, n-start)]
		unpack(b, start, bits, vs)
		a, count := vs[0], 0 // the proportion test, when the block is its window
		for i, v := range vs {
			if v == a {
				count++
			}
			if v != prev {
				prev, run = v, 1
				continue
			}
			if run++; run >= c.ValueRun {
				return fmt.Errorf("repetition count test: %d-bit value %#x repeated %d times from value %d (cutoff %d)",
					c.Bits, v, run, start+i-run+1, c.ValueRun)
			}
		}
		if c.ValueAPT == 0 {
			continue
		}
		if len(vs) == c.ValueWindow {
			if count >= c.ValueAPT {
				return fmt.Errorf("adaptive proportion test: %d-bit value %#x occurs %d times in the %d values from value %d (cutoff %d)",
					c.Bits, a, count, len(vs), start, c.ValueAPT)
			}
			continue
		}
		// The last block, shorter than a window: the last window ends at
		// n, overlapping the one before.
		start = n - c.ValueWindow
		vs = buf[:c.ValueWindow]
		unpack(b, start, bits, vs)
		a, count = vs[0], 0
		for _, v := range vs {
			if v == a {
				count++
			}
		}
		if count >= c.ValueAPT {
			return fmt.Errorf("adaptive proportion test: %d-bit value %#x occurs %d times in the %d values from value %d (cutoff %d)",
				c.Bits, a, count, len(vs), start, c.ValueAPT)
		}
	}
	return nil
}

// errCloserLook: a fast path found something to look at closely; the
// general check then decides.
var errCloserLook = errors.New("health: look closer")

// checkValues16 is checkValues for 16-bit values, four at a time in 64-bit
// words, without unpacking them: a lane of x^y is zero where two values
// are equal. Where two neighbouring values are equal (one pair in 2^16 on
// random data) it measures the run they are in.
func checkValues16(b []byte, c Cutoffs) error {
	const ones, highs = 0x0001_0001_0001_0001, 0x8000_8000_8000_8000
	n := 2 * c.Values
	at := func(i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
	run := func(i int) error { // the run through the equal values at i and i+2
		s, e := i, i+2
		for s >= 2 && at(s-2) == at(i) {
			s -= 2
		}
		for e+2 <= n-2 && at(e+2) == at(i) {
			e += 2
		}
		if k := (e-s)/2 + 1; k >= c.ValueRun {
			return fmt.Errorf("repetition count test: 16-bit value %#x repeated %d times from value %d (cutoff %d)",
				at(i), k, s/2, c.ValueRun)
		}
		return nil
	}
	i := 0
	for ; i+10 <= n; i += 8 { // the pairs of values from i/2 to i/2+4
		d := binary.LittleEndian.Uint64(b[i:]) ^ binary.LittleEndian.Uint64(b[i+2:])
		if (d-ones)&^d&highs == 0 { // no zero lane
			continue
		}
		for k := i; k < i+8; k += 2 {
			if at(k) == at(k+2) {
				if err := run(k); err != nil {
					return err
				}
			}
		}
	}
	for ; i+4 <= n; i += 2 { // the last pairs, one at a time
		if at(i) == at(i+2) {
			if err := run(i); err != nil {
				return err
			}
		}
	}
	if c.ValueAPT == 0 {
		return nil
	}
	if c.ValueWindow != valueBlock {
		return errCloserLook // a batch of fewer than 512 values: one window, in the general check
	}
	// Each window of 512 values is 1024 bytes; count the lanes equal to
	// the first value exactly: a lane of z = x^A is nonzero exactly when
	// its top bit is set in ((z & 0x7fff...) + 0x7fff...) | z.
	const w = 2 * valueBlock
	for start := 0; start < n; start += w {
		start := min(start, n-w)
		a := uint64(binary.LittleEndian.Uint16(b[start:])) * ones
		nonzero := 0
		for k := start; k < start+w; k += 8 {
			z := binary.LittleEndian.Uint64(b[k:]) ^ a
			nonzero += bits.OnesCount64((((z &^ highs) + (highs - ones)) | z) & highs)
		}
		if count := valueBlock - nonzero; count >= c.ValueAPT {
			return fmt.Errorf("adaptive proportion test: 16-bit value %#x occurs %d times in the %d values from value %d (cutoff %d)",
				binary.BigEndian.Uint16(b[start:]), count, valueBlock, start/2, c.ValueAPT)
		}
	}
	return nil
}

// checkBitValues is checkValues for 1-bit values: runs of equal bits, and
// the proportion of the first bit's value in windows of 1024 bits (128
// bytes: every window starts at a byte, since the batch is whole bytes).
func checkBitValues(b []byte, c Cutoffs) error {
	// A run of ValueRun equal bits holds at least (ValueRun-7)/8 whole
	// bytes of 0x00 or 0xff; every cutoff here is at least 57, so the run
	// holds 6 such bytes, and so an aligned pair of them: only aligned
	// 0x0000 and 0xffff pairs (one in 2^15 on random data) need a closer
	// look, at the bits around them.
	for i := 0; i+2 <= len(b); i += 2 {
		if x := binary.BigEndian.Uint16(b[i:]); x != 0 && x != 0xffff {
			continue
		}
		from := max(0, 8*i-c.ValueRun)
		to := min(8*len(b), 8*i+16+c.ValueRun)
		run, prev := 0, -1
		for bit := from; bit < to; bit++ {
			v := int(b[bit>>3] >> (7 - bit&7) & 1)
			if v == prev {
				run++
			} else {
				prev, run = v, 1
			}
			if run >= c.ValueRun {
				return fmt.Errorf("repetition count test: 1-bit value %d repeated %d times from value %d (cutoff %d)",
					v, run, bit-run+1, c.ValueRun)
			}
		}
	}
	if c.ValueAPT == 0 {
		return nil
	}
	w := c.ValueWindow / 8 // 1024 bits, or the whole batch
	for start := 0; start < len(b); start += w {
		start := min(start, len(b)-w)
		ones := 0
		for _, x := range b[start : start+w] {
			ones += bits.OnesCount8(x)
		}
		a := int(b[start] >> 7)
		count := ones
		if a == 0 {
			count = 8*w - ones
		}
		if count >= c.ValueAPT {
			return fmt.Errorf("adaptive proportion test: 1-bit value %d occurs %d times in the %d values from value %d (cutoff %d)",
				a, count, 8*w, 8*start, c.ValueAPT)
		}
	}
	return nil
}

// laneTables holds scratch counts for checkLanes, 256 per lane.
var laneTables = sync.Pool{New: func() any { return new([]uint32) }}

// checkLanes counts each byte value in each byte lane over the whole
// periods of b, and from the same counts the ones at each bit position of
// the values.
func checkLanes(b []byte, c Cutoffs) error {
	lanes := c.Lanes
	whole := c.LaneSamples * lanes
	if whole == 0 {
		return nil
	}
	tp := laneTables.Get().(*[]uint32)
	defer laneTables.Put(tp)
	size := 256 * max(lanes, 4)
	if cap(*tp) < size {
		*tp = make([]uint32, size)
	}
	flat := (*tp)[:size]
	clear(flat)
	var tables [64]*[256]uint32
	t := tables[:max(lanes, 4)]
	for l := range t {
		t[l] = (*[256]uint32)(flat[256*l : 256*l+256])
	}
	countLanes(b[:whole], lanes, t, flat)

	for l := range lanes {
		for v, n := range t[l] {
			if int(n) >= c.LaneMax {
				return fmt.Errorf("byte lanes: byte %#02x occurs %d times in the %d bytes of lane %d of %d (cutoff %d)",
					v, n, c.LaneSamples, l, lanes, c.LaneMax)
			}
		}
	}

	// Ones at each bit position of the values: bit k (0 the most
	// significant) of a byte in lane l is bit 8l+k of the period, which
	// is bit (8l+k) mod Bits of a value.
	// A byte has bit k set when it lies in an odd-numbered block of
	// 128>>k values, so prefix sums of the lane's counts give each bit's
	// count in 255 subtractions.
	var ones [64]int
	var prefix [257]int
	for l := range lanes {
		for v, n := range t[l] {
			prefix[v+1] = prefix[v] + int(n)
		}
		for k := range 8 {
			size, sum := 128>>k, 0
			for start := size; start < 256; start += 2 * size {
				sum += prefix[start+size] - prefix[start]
			}
			ones[(8*l+k)%c.Bits] += sum
		}
	}
	for j := range c.Bits {
		if ones[j] >= c.BitMax || ones[j] <= c.BitSamples-c.BitMax {
			return fmt.Errorf("bit positions: bit %d of %d (0 the most significant) is 1 in %d of %d values (cutoffs: fewer than %d, more than %d)",
				j, c.Bits, ones[j], c.BitSamples, c.BitMax, c.BitSamples-c.BitMax)
		}
	}
	return nil
}

// countLanes adds the count of each byte of b to t[lane][value], the
// tables of flat; b is a whole number of periods of lanes bytes, and t
// has at least 4 tables. With 1, 2 or 4 lanes it counts four bytes at a
// time into four tables (summed into the lanes' own at the end), so that
// equal bytes close together do not wait on each other's increments.
func countLanes(b []byte, lanes int, t []*[256]uint32, flat []uint32) {
	switch lanes {
	case 1, 2, 4:
		t0, t1, t2, t3 := t[0], t[1], t[2], t[3]
		i := 0
		for ; i+4 <= len(b); i += 4 {
			t0[b[i]]++
			t1[b[i+1]]++
			t2[b[i+2]]++
			t3[b[i+3]]++
		}
		for ; i < len(b); i++ { // fewer than 4 bytes, a whole number of periods
			t[i%4][b[i]]++
		}
		for l := lanes; l < 4; l++ { // table l counted lane l mod lanes
			for v, n := range t[l] {
				t[l%lanes][v] += n
			}
			*t[l] = [256]uint32{}
		}
	case 3:
		t0, t1, t2 := t[0], t[1], t[2]
		for p := 0; p+3 <= len(b); p += 3 {
			t0[b[p]]++
			t1[b[p+1]]++
			t2[b[p+2]]++
		}
	case 8:
		t0, t1, t2, t3, t4, t5, t6, t7 := t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]
		for p := 0; p+8 <= len(b); p += 8 {
			t0[b[p]]++
			t1[b[p+1]]++
			t2[b[p+2]]++
			t3[b[p+3]]++
			t4[b[p+4]]++
			t5[b[p+5]]++
			t6[b[p+6]]++
			t7[b[p+7]]++
		}
	default: // the lane's offset in flat kept as a running sum
		end, l := 256*lanes, 0
		flat = flat[:end]
		for _, v := range b {
			flat[l+int(v)]++
			if l += 256; l == end {
				l = 0
			}
		}
	}
}
