// Package bitpack packs unsigned values of a fixed width (1..64 bits) into
// one continuous, most-significant-bit-first bit stream, and unpacks it.
//
// No bit is wasted and nothing is padded: n values of w bits take exactly
// n*w bits. When n*w is not a multiple of 8, the last partial byte is held
// back until more values arrive (see Packer.Pending).
package bitpack

import (
	"encoding/binary"
	"fmt"
)

// Packer appends w-bit values to a byte slice. The zero value is not usable;
// call New. A Packer is not safe for concurrent use.
type Packer struct {
	w   uint   // value width, 1 <= w <= 64
	acc uint64 // pending bits, right-aligned
	n   uint   // number of pending bits in acc, 0 <= n < 64
	out []byte // packed, whole bytes
}

// New returns a Packer for values of width bits, appending to dst.
// It panics if width is outside 1..64.
func New(width int, dst []byte) *Packer {
	if width < 1 || width > 64 {
		panic(fmt.Sprintf("bitpack: width %d outside 1..64", width))
	}
	return &Packer{w: uint(width), out: dst}
}

// Add appends v, which must be below 2^w (higher bits are dropped).
func (p *Packer) Add(v uint64) {
	if p.w < 64 {
		v &= 1<<p.w - 1
	}
	free := 64 - p.n
	if p.w < free {
		p.acc = p.acc<<p.w | v
		p.n += p.w
		return
	}
	rem := p.w - free            // bits of v that do not fit, 0 <= rem < 64
	p.acc = p.acc<<free | v>>rem // a shift by 64 yields 0 in Go
	p.out = binary.BigEndian.AppendUint64(p.out, p.acc)
	p.acc = v & (1<<rem - 1)
	p.n = rem
}

// Bytes flushes every whole pending byte and returns the packed bytes.
// Fewer than 8 pending bits (an incomplete byte) stay pending.
func (p *Packer) Bytes() []byte {
	for p.n >= 8 {
		p.n -= 8
		p.out = append(p.out, byte(p.acc>>p.n))
	}
	p.acc &= 1<<p.n - 1
	return p.out
}

// Pending reports how many bits are held back because they do not yet
// fill a byte. It is only meaningful after Bytes.
func (p *Packer) Pending() int { return int(p.n) }

// Reset drops pending bits and starts appending to dst.
func (p *Packer) Reset(dst []byte) {
	p.acc, p.n, p.out = 0, 0, dst
}

// Unpack reads count values of width bits from the MSB-first bit stream b.
// It is the inverse of Packer and is used by tests and callers that want
// the server's values back from packed bytes. It panics if b is too short.
func Unpack(b []byte, width, count int) []uint64 {
	if width < 1 || width > 64 {
		panic(fmt.Sprintf("bitpack: width %d outside 1..64", width))
	}
	if need := (count*width + 7) / 8; len(b) < need {
		panic(fmt.Sprintf("bitpack: %d bytes hold fewer than %d values of %d bits", len(b), count, width))
	}
	out := make([]uint64, count)
	bit := 0
	for i := range out {
		var v uint64
		for j := 0; j < width; j++ {
			v = v<<1 | uint64(b[bit>>3]>>(7-bit&7)&1)
			bit++
		}
		out[i] = v
	}
	return out
}
