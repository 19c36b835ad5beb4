package qrng

import "encoding/binary"

// localBlock is how many bytes a Local takes from its Source at a time.
const localBlock = 512

// A Local serves a Source's bytes to one goroutine without taking the
// Source's lock on every call: it takes them from the Source 512 bytes at
// a time and serves them from its own block, erasing each byte as it goes.
// A rand.Rand is not safe for concurrent use either, so
// rand.New(src.Local()) loses nothing and skips a lock per value.
//
// A Local is not safe for concurrent use by multiple goroutines: make one
// per goroutine. Bytes it has taken are served by it alone, at most once;
// call Close to erase those it has not served. Fallback, mixing and
// accounting are the Source's: the Local reads through Source.Read.
type Local struct {
	src *Source
	buf [localBlock]byte
	pos int // buf[:pos] is served and erased; 0 <= pos <= localBlock
}

// Local returns a new Local that takes its bytes from s.
func (s *Source) Local() *Local {
	return &Local{src: s, pos: localBlock}
}

// Uint64 returns the next 8 bytes of the Local's stream, big-endian. It
// panics where Source.Uint64 would.
func (l *Local) Uint64() uint64 {
	if l.pos > localBlock-8 {
		l.refill()
	}
	p := l.buf[l.pos : l.pos+8]
	v := binary.BigEndian.Uint64(p)
	clear(p)
	l.pos += 8
	return v
}

// refill takes a new block; the old one is fully served (whole 8-byte
// steps from 0 end exactly at localBlock, and Read serves the rest first).
func (l *Local) refill() {
	if l.pos < localBlock {
		// Read left a tail shorter than 8 bytes: serve it first, keep order.
		var b [8]byte
		n := copy(b[:], l.buf[l.pos:])
		clear(l.buf[l.pos:])
		if _, err := l.src.Read(b[n:]); err != nil {
			clear(b[:])
			panic(err)
		}
		copy(l.buf[localBlock-8:], b[:])
		clear(b[:])
		l.pos = localBlock - 8
		return
	}
	if _, err := l.src.Read(l.buf[:]); err != nil {
		clear(l.buf[:]) // what did arrive is never served
		panic(err)
	}
	l.pos = 0
}

// Read fills p from the Local's block, then from the Source. It returns
// what Source.Read would.
func (l *Local) Read(p []byte) (int, error) {
	n := copy(p, l.buf[l.pos:])
	clear(l.buf[l.pos : l.pos+n])
	l.pos += n
	if n == len(p) {
		return n, nil
	}
	m, err := l.src.Read(p[n:])
	return n + m, err
}

// Close erases the bytes the Local has taken and not served. The Local
// may be used again afterwards; it then takes new bytes.
func (l *Local) Close() error {
	clear(l.buf[:])
	l.pos = localBlock
	return nil
}
