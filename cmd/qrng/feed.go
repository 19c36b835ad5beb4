package main

import (
	"context"
	"encoding/binary"
	"math/bits"

	"github.com/qrng-go/qrng"
)

// feed reads a Source for a command that knows how many bytes it still
// needs: it asks for no more than that, so an on-demand Source fetches
// nothing ahead, and it stops when ctx ends.
type feed struct {
	ctx   context.Context
	src   *qrng.Source
	left  int64  // bytes the command still expects to need (a hint)
	store []byte // unread bytes are store[pos:end]; see newFeed
	step  int    // the next read's size: doubles up to len(store)
	pos   int
	end   int
	err   error // the read's error, returned once store is used up
}

// firstRead is a feed's first read: what a command that stops early (a
// pipe closed after a few lines) spends at most beyond what it wrote.
const firstRead = 4096

// newFeed returns a feed for a command that expects to need need bytes,
// fetched in batches of batch bytes. Its reads start at 4 KiB (or the
// need, if less) and double up to a batch: an on-demand Source asks for
// each read's bytes, in whole windows, so the command spends what it
// needs, and a command stopped early (a closed pipe, a signal) has spent
// at most about what it wrote, or 4 KiB.
func newFeed(ctx context.Context, src *qrng.Source, need, batch int64) *feed {
	size := max(512, min(need, batch))
	return &feed{ctx: ctx, src: src, left: need, store: make([]byte, size), step: int(min(size, firstRead))}
}

func (f *feed) byte() (byte, error) {
	if f.pos == f.end {
		if f.err != nil {
			return 0, f.err
		}
		k := int(min(int64(f.step), max(f.left, 1)))
		f.step = min(2*f.step, len(f.store))
		n, err := f.src.ReadContext(f.ctx, f.store[:k])
		if err != nil {
			// Bytes served before the failure are used first: they were
			// fetched, and are nobody else's now. The error comes after.
			clear(f.store[n:k])
			if f.err = err; n == 0 {
				return 0, err
			}
		}
		f.pos, f.end = 0, n
	}
	b := f.store[f.pos]
	f.store[f.pos] = 0
	f.pos++
	f.left--
	return b, nil
}

// erase clears the bytes not used.
func (f *feed) erase() { clear(f.store) }

// uint64 reads 8 bytes, big-endian.
func (f *feed) uint64() (uint64, error) {
	var b [8]byte
	defer clear(b[:])
	for i := range b {
		var err error
		if b[i], err = f.byte(); err != nil {
			return 0, err
		}
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// bits reads a value of width bits (1..64) from the stream, most
// significant bit first: the service's values come back exactly, since
// the Source packs them back to back.
func (f *feed) bits(width int, r *bitReader) (uint64, error) {
	var v uint64
	for need := width; need > 0; {
		if r.n == 0 {
			b, err := f.byte()
			if err != nil {
				return 0, err
			}
			r.acc, r.n = uint64(b), 8
		}
		take := min(need, r.n)
		v = v<<take | (r.acc>>(r.n-take))&(1<<take-1)
		r.n -= take
		need -= take
	}
	return v, nil
}

// bitReader holds the bits of a byte not yet returned by feed.bits.
type bitReader struct {
	acc uint64 // pending bits, right-aligned
	n   int    // pending bit count, 0..7
}

// uint64n returns a number uniform in [0, n), n > 0, by Lemire's
// multiply-and-reject method: no modulo bias.
func (f *feed) uint64n(n uint64) (uint64, error) {
	if n&(n-1) == 0 {
		v, err := f.uint64()
		return v & (n - 1), err
	}
	for {
		v, err := f.uint64()
		if err != nil {
			return 0, err
		}
		hi, lo := bits.Mul64(v, n)
		if lo >= n || lo >= -n%n { // -n%n is 2^64 mod n: the biased low products
			return hi, nil
		}
	}
}
