package qrng

import (
	"math"
	"sync/atomic"
	"unsafe"
)

// Lock-free serving. Under the Source's mutex, up to windowSize bytes (16
// KiB; at most a quarter of the prefetch target, so that refills start in
// time though the fast paths never look at the level) are cut from the
// buffer's head into a window and published with an atomic store. A
// caller claims n bytes with end := w.off.Add(n): the claim is
// [end-n, end). Offsets only grow, so claims are disjoint and each byte has
// exactly one owner, who copies it out and erases it. A claim that runs
// past the end owns the part before the end, if any, and takes the rest
// on the slow path under the lock, which publishes the next window.
//
// A window's bytes are a slice of a buffer chunk. Chunks that windows were
// cut from are never recycled (the buffer drops exhausted chunks), so a
// claimer that is slow to copy still reads its own bytes, never a later
// batch's.
//
// One cursor shared by two cores bounces its cache line between them, so
// once two callers are seen to collide (on the lock, or on a window's end)
// the Source switches, for good, to stripes: 64 slots, each with windows of
// its own, chosen by a hint that differs between goroutines (see
// stripeHint). Within one slot values keep stream order; across slots they
// do not, so once striped a goroutine's values are no longer the stream in
// order (each value is still bytes of the stream served once).
//
// Close takes every slot's window (Swap to nil) and moves its offset past
// any claim (Swap to closedOff), so that it owns every unclaimed byte; it
// erases those and uncounts them. A claim made before that Swap owns its
// bytes: its claimer copies and erases them a few instructions later,
// without the lock, possibly just after Close returns.

const (
	windowSize = 16 << 10 // most bytes cut from the buffer per window
	minWindow  = 64       // least, while the prefetch target is small (a window is at most a quarter of it)
	numStripes = 64       // slots once contention is seen, a power of two
	maxClaim   = 256      // Reads up to this size are served from windows
	closedOff  = math.MaxInt64 / 2
)

// window is a run of bytes open to lock-free claims.
type window struct {
	off  atomic.Int64 // next unclaimed byte; only grows; may pass len(b)
	_    [56]byte     // off alone on its cache line
	b    []byte       // b[i] belongs to whoever claims offset i
	base int64        // stream offset of b[0] (for the test trace)
	_    [32]byte
}

// unclaimed reports how many bytes no one has claimed yet.
func (w *window) unclaimed() int {
	return len(w.b) - int(min(w.off.Load(), int64(len(w.b))))
}

// slot holds the window one or more callers claim from, alone on its
// cache line.
type slot struct {
	w atomic.Pointer[window]
	_ [56]byte
}

// stripeHint returns a number that differs between goroutines running
// concurrently, at no cost but a multiply: the address of a variable on
// the caller's stack. Goroutines have separate stacks, at least 2 KiB
// apart, so bits 10 and up differ between them. The hint may change when
// a goroutine's stack grows and moves; that only moves it to another slot.
// Two goroutines may share a slot (they then share its cursor, correctly,
// at the cost of a bouncing cache line); with 64 slots that is rare.
//
//go:nosplit
func stripeHint() uint {
	var x byte
	h := uint64(uintptr(unsafe.Pointer(&x))>>10) * 0x9E3779B97F4A7C15
	return uint(h >> (64 - 6))
}

// slotFor returns the slot a caller claims from.
func (s *Source) slotFor() *slot {
	if st := s.stripes.Load(); st != nil {
		return &st[stripeHint()&(numStripes-1)]
	}
	return &s.win
}

// claim takes len(p) bytes of the slot's window into p and erases them.
// It returns how many bytes it owned: len(p), or fewer (possibly 0) when
// the claim ran past the window's end or there is no window.
func (s *Source) claim(sl *slot, p []byte) int {
	w := sl.w.Load()
	if w == nil {
		return 0
	}
	return s.settle(sl, w, w.off.Add(int64(len(p))), p)
}

// settle serves what the claim [end-len(p), end) of sl's window w owns
// into p, erases it, and returns how many bytes that was.
//
// A claim that reaches or passes the window's end withdraws the window
// (if still published), so that its claimer's next claim finds no window
// rather than this spent one. Hence a claim that starts at or past the
// end was made by another caller that loaded the window before it was
// withdrawn: the Source has concurrent callers, and switches to stripes.
func (s *Source) settle(sl *slot, w *window, end int64, p []byte) int {
	size := int64(len(w.b))
	start := end - int64(len(p))
	if end >= size {
		sl.w.CompareAndSwap(w, nil)
	}
	if start >= size {
		if start < closedOff {
			s.collided()
		}
		return 0
	}
	src := w.b[start:min(end, size)]
	if s.trace != nil {
		s.trace(w.base+start, src)
	}
	k := copy(p, src)
	clear(src)
	return k
}

// collided switches the Source to stripes, once.
func (s *Source) collided() {
	if s.stripes.Load() == nil {
		s.mu.Lock()
		s.stripeLocked()
		s.mu.Unlock()
	}
}

func (s *Source) stripeLocked() {
	if s.stripes.Load() == nil && !s.closed && !s.oneWindow {
		s.stripes.Store(new([numStripes]slot))
	}
}

// windowsOKLocked reports whether windows may be published now: not
// closed, not mixing, not in fallback (its end must be reported by the
// general path), no test tap.
func (s *Source) windowsOKLocked() bool {
	return !s.closed && !s.mix && !s.fallback && s.tap == nil
}

// publishLocked gives sl a fresh window if its window is spent and the
// buffer has bytes, and reports whether sl has unclaimed bytes now. A
// spent window that cannot be replaced is withdrawn, so that the next
// claim does not run past its end (which would look like a collision).
func (s *Source) publishLocked(sl *slot) bool {
	w := sl.w.Load()
	if w != nil && w.unclaimed() > 0 {
		return true // another caller published one already
	}
	if !s.windowsOKLocked() || s.buf.n == 0 {
		if w != nil {
			sl.w.Store(nil)
		}
		return false
	}
	b := s.buf.carve(min(windowSize, max(minWindow, s.target/4)))
	w = &window{b: b, base: s.served}
	s.served += int64(len(b))
	s.stats.QuantumBytes += int64(len(b)) // counted when cut; Stats subtracts what is unclaimed
	sl.w.Store(w)
	s.kickLocked(false) // if the bytes ready are below the mark
	return true
}

// serveWindows fills p from windows without waiting: it publishes a fresh
// window in the caller's slot sl, if the slot's is spent and the buffer
// has bytes, then claims from it, and so on. It returns how many bytes it
// served; fewer than len(p) means the general path must finish (buffer
// empty, or windows not allowed now). Publishing before claiming matters:
// a caller whose claim ran past a window's end would, by claiming from it
// again, look like a second caller (and switch the Source to stripes).
// The caller computes its slot once per serve; it is computed again only
// if the Source switched to stripes since.
func (s *Source) serveWindows(sl *slot, p []byte) int {
	n := 0
	for n < len(p) {
		// Only callers take pubMu (workers never do): a caller that finds
		// it held has met another caller.
		if !s.pubMu.TryLock() {
			s.pubMu.Lock()
			s.collided()
		}
		s.mu.Lock()
		if sl == &s.win && s.stripes.Load() != nil {
			sl = s.slotFor() // striped since the caller looked: the one window is retired
		}
		ok := s.publishLocked(sl)
		s.mu.Unlock()
		s.pubMu.Unlock()
		if !ok {
			break
		}
		n += s.claim(sl, p[n:])
	}
	return n
}

// eachSlot calls f with the one window's slot, then each stripe's, until f
// returns false.
func (s *Source) eachSlot(f func(*slot) bool) {
	if !f(&s.win) {
		return
	}
	if st := s.stripes.Load(); st != nil {
		for i := range st {
			if !f(&st[i]) {
				return
			}
		}
	}
}

// drainWindowsLocked moves every unclaimed byte of the windows into p, in
// slot order, taking them as a claimer would. The general path calls it
// before it serves from the buffer, so that a caller using the Source
// alone gets the stream in order, and before it finds the buffer empty,
// so that no bytes are stranded in other slots.
func (s *Source) drainWindowsLocked(p []byte) int {
	n := 0
	s.eachSlot(func(sl *slot) bool {
		n += s.drainSlot(sl, p[n:])
		return n < len(p)
	})
	return n
}

// drainSlot claims up to len(p) unclaimed bytes of sl's window exactly
// (a compare-and-swap, so that it never runs past the end), serves them
// into p and erases them.
func (s *Source) drainSlot(sl *slot, p []byte) int {
	w := sl.w.Load()
	if w == nil || len(p) == 0 {
		return 0
	}
	size := int64(len(w.b))
	for {
		old := w.off.Load()
		if old >= size {
			return 0
		}
		end := min(size, old+int64(len(p)))
		if w.off.CompareAndSwap(old, end) {
			return s.settle(sl, w, end, p[:end-old])
		}
	}
}

// unclaimedLocked counts the bytes in windows that no one has claimed.
func (s *Source) unclaimedLocked() int {
	n := 0
	s.eachSlot(func(sl *slot) bool {
		if w := sl.w.Load(); w != nil {
			n += w.unclaimed()
		}
		return true
	})
	return n
}

// reclaimLocked takes back every window: it owns their unclaimed bytes,
// erases them and uncounts them. Close calls it with the mutex held, once
// closed is set, so that no window is published again.
func (s *Source) reclaimLocked() {
	s.eachSlot(func(sl *slot) bool {
		if w := sl.w.Swap(nil); w != nil {
			old := w.off.Swap(closedOff)
			if size := int64(len(w.b)); old < size {
				clear(w.b[old:])
				s.stats.QuantumBytes -= size - old
			}
		}
		return true
	})
}
