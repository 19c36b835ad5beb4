package qrngtest

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// drawBlock is how many values are drawn from one block of random bytes:
// a multiple of 8, so each block is a whole number of bytes.
const drawBlock = 4096

// fillValues gives each of values bits random bits, read from random in
// blocks of drawBlock values: only the bits needed, packed, so a 16-bit
// value costs two bytes. Widths above 56 bits take 8 bytes a value (a
// value of up to 56 bits at any bit offset fits in one 8-byte load).
func fillValues(values []uint64, bits int, random func([]byte)) {
	width := bits
	if bits > 56 {
		width = 64
	}
	block := make([]byte, drawBlock*width/8+8) // 8 bytes of room for the last load
	mask := uint64(1)<<bits - 1
	for len(values) > 0 {
		vs := values[:min(len(values), drawBlock)]
		values = values[len(vs):]
		raw := block[:(len(vs)*width+7)/8]
		random(raw)
		switch {
		case width == 64:
			for i := range vs {
				vs[i] = binary.LittleEndian.Uint64(raw[8*i:]) >> (64 - bits)
			}
		case bits%8 == 0: // whole bytes, as for the default 16 bits
			stride := bits / 8
			for i := range vs {
				vs[i] = binary.LittleEndian.Uint64(block[i*stride:]) & mask
			}
		default:
			for i := range vs {
				o := i * bits
				vs[i] = binary.LittleEndian.Uint64(block[o>>3:]) >> (o & 7) & mask
			}
		}
	}
	clear(block)
}

// appendValues appends the values in decimal, each after ", " except the
// very first of a body (first set): "5845, 7686, 2788".
func appendValues(out []byte, values []uint64, first bool) []byte {
	// 20 digits and ", " a value, and 8 bytes of room for the last store.
	out = slices.Grow(out, 22*len(values)+8)
	b, pos := out[:cap(out)], len(out)
	if first && len(values) > 0 {
		pos = putDecimal(b, pos, values[0])
		values = values[1:]
	}
	for _, v := range values {
		if v < 1e6 { // ", " and up to 6 digits: one store
			d := digitCount(v)
			binary.LittleEndian.PutUint64(b[pos:], ','|' '<<8|eightDigits(uint32(v))>>(64-8*uint(d))<<16)
			pos += 2 + d
			continue
		}
		b[pos], b[pos+1] = ',', ' '
		pos = putDecimal(b, pos+2, v)
	}
	return b[:pos]
}

// putDecimal writes v in decimal at b[pos:] and returns the position after
// it. It stores 8 bytes at a time, so it may write up to 8 bytes past the
// digits.
func putDecimal(b []byte, pos int, v uint64) int {
	d := digitCount(v)
	switch {
	case d <= 8:
		binary.LittleEndian.PutUint64(b[pos:], eightDigits(uint32(v))>>(64-8*uint(d)))
	case d <= 16:
		binary.LittleEndian.PutUint64(b[pos:], eightDigits(uint32(v/1e8))>>(128-8*uint(d)))
		binary.LittleEndian.PutUint64(b[pos+d-8:], eightDigits(uint32(v%1e8)))
	default:
		binary.LittleEndian.PutUint64(b[pos:], eightDigits(uint32(v/1e16))>>(192-8*uint(d)))
		binary.LittleEndian.PutUint64(b[pos+d-16:], eightDigits(uint32(v/1e8%1e8)))
		binary.LittleEndian.PutUint64(b[pos+d-8:], eightDigits(uint32(v%1e8)))
	}
	return pos + d
}

var powers = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// digitCount is the number of decimal digits of v, 1 for 0: the bit
// length times log10(2) (1233/4096), then one more if v reaches the next
// power of ten.
func digitCount(v uint64) int {
	d := bits.Len64(v|1) * 1233 >> 12
	if v|1 >= powers[d] {
		d++
	}
	return d
}

// eightDigits returns the eight decimal digits of n < 10^8, leading zeros
// included, as ASCII in the bytes of a little-endian word (first digit in
// the lowest byte). It splits n into halves of four digits, each half into
// pairs, each pair into digits, all lanes at once: x*5243>>19 is x/100 for
// x < 10000, x*103>>10 is x/10 for x < 100, and no lane overflows.
func eightDigits(n uint32) uint64 {
	x := uint64(n/10000) | uint64(n%10000)<<32
	q := x * 5243 >> 19 & 0x0000007f0000007f
	x = q | (x-q*100)<<16
	q = x * 103 >> 10 & 0x000f000f000f000f
	x = q | (x-q*10)<<8
	return x | 0x3030303030303030
}
