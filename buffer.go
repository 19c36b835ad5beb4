package qrng

import "encoding/binary"

// buffer is a FIFO of packed random bytes waiting to be served. Bytes are
// erased (set to zero) as they are served, and chunks are recycled only
// after erasing. A buffer is not safe for concurrent use; Source guards it
// with its mutex.
type buffer struct {
	chunks [][]byte // chunks[0][off:] is served next; every chunk is non-empty
	off    int      // 0 <= off < len(chunks[0]) when chunks is not empty
	n      int      // unread bytes in all chunks
	spare  [][]byte // erased chunks kept for reuse, at most maxSpare
}

const maxSpare = 4

// push appends a batch; the buffer takes ownership of p.
func (b *buffer) push(p []byte) {
	if len(p) == 0 {
		return
	}
	b.chunks = append(b.chunks, p)
	b.n += len(p)
}

// len reports the unread bytes.
func (b *buffer) len() int { return b.n }

// take copies up to len(dst) unread bytes into dst, erases them, and
// returns how many it copied.
func (b *buffer) take(dst []byte) int {
	if len(b.chunks) > 0 {
		if head := b.chunks[0]; len(dst) < len(head)-b.off {
			// The common case: the head chunk holds all of dst and more.
			src := head[b.off : b.off+len(dst)]
			copy(dst, src)
			clear(src)
			b.off += len(dst)
			b.n -= len(dst)
			return len(dst)
		}
	}
	total := 0
	for len(dst) > 0 && b.n > 0 {
		head := b.chunks[0][b.off:]
		m := copy(dst, head)
		clear(head[:m])
		dst = dst[m:]
		total += m
		b.n -= m
		b.off += m
		if b.off == len(b.chunks[0]) {
			b.retire()
		}
	}
	return total
}

// uint64 serves the next 8 bytes as a big-endian value, if there are 8.
func (b *buffer) uint64() (uint64, bool) {
	if b.n < 8 {
		return 0, false
	}
	head := b.chunks[0]
	if b.off+8 <= len(head) {
		p := head[b.off : b.off+8]
		v := binary.BigEndian.Uint64(p)
		clear(p)
		b.off += 8
		b.n -= 8
		if b.off == len(head) {
			b.retire()
		}
		return v, true
	}
	var tmp [8]byte
	b.take(tmp[:])
	v := binary.BigEndian.Uint64(tmp[:])
	clear(tmp[:])
	return v, true
}

// retire drops the exhausted (already erased) head chunk.
func (b *buffer) retire() {
	c := b.chunks[0]
	b.chunks[0] = nil
	b.chunks = b.chunks[1:]
	b.off = 0
	if len(b.spare) < maxSpare {
		b.spare = append(b.spare, c[:cap(c)])
	}
}

// chunk returns an erased slice of length n for a new batch.
func (b *buffer) chunk(n int) []byte {
	for len(b.spare) > 0 {
		c := b.spare[len(b.spare)-1]
		b.spare = b.spare[:len(b.spare)-1]
		if cap(c) >= n {
			return c[:n]
		}
	}
	return make([]byte, n)
}

// recycle erases p and keeps it for reuse.
func (b *buffer) recycle(p []byte) {
	p = p[:cap(p)]
	clear(p)
	if len(b.spare) < maxSpare {
		b.spare = append(b.spare, p)
	}
}

// erase clears every unread byte and drops all chunks.
func (b *buffer) erase() {
	for i, c := range b.chunks {
		clear(c)
		b.chunks[i] = nil
	}
	b.chunks, b.off, b.n, b.spare = nil, 0, 0, nil
}
