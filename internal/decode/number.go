package decode

import (
	"encoding/binary"
	"math/bits"
)

// Numbers are read eight bytes at a time: one little-endian load puts the
// first byte in the lowest lane. Subtracting '0' from every lane (an XOR,
// since '0' is 0x30 and digits are 0x30..0x39) leaves 0..9 in digit lanes
// and something above 9 elsewhere.

// digits returns how many of the eight bytes of x, from the first, are
// ASCII digits, and x with each digit lane turned into its value.
func digits(x uint64) (int, uint64) {
	t := x ^ 0x3030303030303030
	// A lane's top bit is set if the lane was above 9 before adding 0x76,
	// or after. A lane may carry into the next, but only from a lane that is
	// not a digit, so the lowest flagged lane is the first non-digit.
	m := (t + 0x7676767676767676 | t) & 0x8080808080808080
	return bits.TrailingZeros64(m) >> 3, t
}

// parse8 returns the number written by eight digit lanes of t, first lane
// most significant: pairs of lanes, then pairs of pairs, then the halves.
// No lane ever exceeds its width (99, 9999, 99999999).
func parse8(t uint64) uint64 {
	t = (t*10 + t>>8) & 0x00ff00ff00ff00ff
	t = (t*100 + t>>16) & 0x0000ffff0000ffff
	return uint64(uint32(t*10000 + t>>32))
}

// top keeps the first k lanes of t (k in 1..8) as the last k of eight, so
// that parse8 reads them with leading zeros.
func top(t uint64, k int) uint64 { return t << ((64 - 8*uint(k)) & 63) }

// topOrZero is top for k in 0..8, without a branch: 0 for k = 0.
func topOrZero(t uint64, k int) uint64 { return t << (64 - 8*uint(k)) }

var pow10 = [...]uint64{1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8}

func load(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// number parses an unsigned decimal integer at s.pos and moves past it. It
// loads at most 24 bytes from s.pos, within the margin.
func (s *scanner) number() (uint64, error) {
	p := s.pos
	n, t := digits(load(s.buf[p:]))
	switch {
	case n == 0:
		return 0, s.notNumber()
	case n > 1 && t&0xff == 0:
		return 0, s.failValue("number with a leading zero")
	case n < 7:
		s.pos = p + n
		return parse8(top(t, n)), nil
	}
	v, n, _, ok := long((*[24]byte)(s.buf[p:p+24]), n, t)
	if !ok {
		return 0, s.failValue("number exceeds 64 bits")
	}
	s.pos = p + n
	return v, nil
}

// notNumber reports a value that does not start with a digit.
func (s *scanner) notNumber() error {
	c := s.buf[s.pos]
	if c == '-' {
		return s.failValue("negative number")
	}
	return s.failValue("unexpected " + quoteByte(c) + ", want a number" + kind(c))
}
