package decode

import (
	"encoding/binary"
	"math/bits"
)

// fast parses the run of values that start at s.pos and are each followed
// by a comma (and at most one space), storing them in s.batch from k on,
// for at most room values. It keeps its state in registers and stops
// before the first value it cannot take whole: the last one (followed by
// ']'), one after other white space, a malformed or out-of-range one, one
// with fewer than margin bytes buffered. The general path in values takes
// it from there and reports any error. fast returns how many values it
// took.
func (s *scanner) fast(k, room int) int {
	buf := &s.buf
	batch := &s.batch
	maxValue := s.maxValue
	stop := s.end - margin + 1 // a value starting before stop has margin bytes
	if s.done {
		stop = s.end // the margin after end is zero
	}
	// Unsigned indexes below these bounds let the compiler drop bounds checks.
	p, ustop := uint(s.pos), uint(min(max(stop, 0), bufSize))
	i, end := uint(k), uint(k+room)
	if end > BatchLen {
		end = BatchLen
	}
	for i < end && p < ustop {
		x := binary.LittleEndian.Uint64(buf[p : p+8])
		n, t := digits(x)
		if byte(t)-1 > 8 && (byte(t) != 0 || n != 1) {
			break // not a number, or a leading zero
		}
		var v, after uint64 // the value, and the bytes after it
		if n < 7 {
			v, after = parse8(top(t, n)), x>>(8*uint(n)&63)
		} else {
			var ok bool
			if v, n, after, ok = long((*[24]byte)(buf[p:p+24]), n, t); !ok {
				break
			}
		}
		if byte(after) != ',' || v > maxValue {
			break
		}
		batch[i] = v
		i++
		p += uint(n) + 1
		if byte(after>>8) == ' ' {
			p++
		}
	}
	s.pos = int(p)
	return int(i) - k
}

// long parses a number of seven digits or more at the start of b, whose
// first eight bytes hold n digits with value lanes t. It returns the value,
// its length and the two bytes after it, or false if the number exceeds 64
// bits. The number of digits past the sixteenth varies from value to value
// (2^64-1 has 20 digits, 10^19 19), so that step has no branch.
func long(b *[24]byte, n int, t uint64) (v uint64, length int, after uint64, ok bool) {
	if n == 7 {
		return parse8(top(t, 7)), 7, uint64(b[7]) | uint64(b[8])<<8, true
	}
	hi := parse8(t)
	x := load(b[8:16])
	n, t = digits(x)
	if n < 8 {
		after = x >> (8 * uint(n) & 63)
		if n == 7 {
			after = uint64(b[15]) | uint64(b[16])<<8
		}
		return hi*pow10[n] + parse8(topOrZero(t, n)), 8 + n, after, true
	}
	hi = hi*1e8 + parse8(t) // 16 digits
	x = load(b[16:24])
	n, t = digits(x)
	h, lo := bits.Mul64(hi, pow10[n])
	lo, carry := bits.Add64(lo, parse8(topOrZero(t, n)), 0)
	return lo, 16 + n, x >> (8 * uint(n) & 63), n <= 4 && h|carry == 0
}
