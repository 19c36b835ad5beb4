package qrng

// buffer is a FIFO of packed random bytes waiting to be served. Bytes are
// erased (set to zero) as they are served. A chunk that bytes were served
// from, or windows cut from, is dropped when exhausted, never reused: a
// window's claimer may still be copying from it. Only chunks that were
// never pushed (a failed fetch's) are recycled. A buffer is not safe for
// concurrent use; Source guards it with its mutex.
type buffer struct {
	chunks [][]byte // chunks[0][off:] is served next; every chunk is non-empty
	off    int      // 0 <= off < len(chunks[0]) when chunks is not empty
	n      int      // unread bytes in all chunks
	spare  [][]byte // erased, never-pushed chunks kept for reuse, at most maxSpare
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
// returns how many it copied. It copies and erases in pieces of eraseStep,
// so that each piece is still in cache when it is erased.
func (b *buffer) take(dst []byte) int {
	total := 0
	for len(dst) > 0 && b.n > 0 {
		head := b.chunks[0][b.off:]
		m := min(len(dst), len(head), eraseStep)
		copy(dst, head[:m])
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

const eraseStep = 16 << 10

// carve hands over up to n unread bytes of the head chunk, without copying
// or erasing them: whoever receives them serves and erases them.
func (b *buffer) carve(n int) []byte {
	if b.n == 0 {
		return nil
	}
	head := b.chunks[0]
	m := min(n, len(head)-b.off)
	p := head[b.off : b.off+m : b.off+m]
	b.off += m
	b.n -= m
	if b.off == len(head) {
		b.retire()
	}
	return p
}

// retire drops the exhausted (already erased or handed over) head chunk.
func (b *buffer) retire() {
	b.chunks[0] = nil
	b.chunks = b.chunks[1:]
	b.off = 0
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

// erase clears every unread byte and drops all chunks. Bytes before the
// head's offset are not touched: they were served, or handed to a window
// whose claimers may still be copying them.
func (b *buffer) erase() {
	for i, c := range b.chunks {
		if i == 0 {
			c = c[b.off:]
		}
		clear(c)
		b.chunks[i] = nil
	}
	b.chunks, b.off, b.n, b.spare = nil, 0, 0, nil
}
