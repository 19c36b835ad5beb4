// Package decode reads the uQRNG random-number answer, a JSON array of
// unsigned integers, while it streams in.
//
// It never holds the body as text: it scans a fixed buffer and hands the
// values over in batches as soon as they are read. Numbers are parsed as
// uint64, up to eight digits at a time, never through float64, so every
// value up to 2^64-1 is exact. It accepts exactly the inputs that
// encoding/json would decode into n integers below 2^bits: a bare array, or
// an object whose only member is "data" holding the array (a shape the live
// API is tolerated to send).
//
// Errors show at most one byte of the body: a 200 body could echo a token,
// and errors end up in logs.
package decode

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// Error describes a body that is not a valid answer. Index is the position
// of the value concerned (-1 when none) and Offset the byte offset in the
// body. Truncated is set when the body ended early, which is usually a
// transport fault rather than a server bug.
type Error struct {
	Offset    int64
	Index     int
	Truncated bool
	Msg       string
}

func (e *Error) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("value %d (byte %d): %s", e.Index, e.Offset, e.Msg)
	}
	return fmt.Sprintf("byte %d: %s", e.Offset, e.Msg)
}

// ErrTooLarge is returned when the body exceeds the byte limit.
var ErrTooLarge = errors.New("body exceeds the size limit")

// MaxBytes is a generous upper bound on a well-formed answer of n values:
// 20 digits, a comma and a space each, plus room for a wrapper and padding.
func MaxBytes(n int) int64 { return int64(n)*24 + 64<<10 }

// BatchLen is the largest number of values DecodeTo hands to its sink at once.
const BatchLen = 512

// DecodeTo reads from r a JSON array of exactly n integers, each below
// 2^bits, and checks that nothing but white space follows. It reads at most
// limit bytes of r. It hands the values to sink in order, in slices of at
// most BatchLen values; the slice is reused once sink returns, so sink must
// copy what it keeps. A read error from r is returned wrapped as it is; a
// malformed body yields an *Error. sink may have been called for some
// values before an error is returned.
//
// Whatever the outcome, the buffer that r was given to fill and the slice
// given to sink are cleared before DecodeTo returns, so no value read from
// the body stays there.
func DecodeTo(r io.Reader, n, bits int, limit int64, sink func([]uint64)) error {
	if bits < 1 || bits > 64 {
		return fmt.Errorf("decode: bits %d outside 1..64", bits)
	}
	s := &scanner{r: r, limit: limit, n: n, index: -1, maxValue: math.MaxUint64 >> (64 - bits)}
	defer s.erase()
	return s.decode(sink)
}

// Decode is DecodeTo calling emit with each value in turn.
func Decode(r io.Reader, n, bits int, limit int64, emit func(uint64)) error {
	return DecodeTo(r, n, bits, limit, func(vs []uint64) {
		for _, v := range vs {
			emit(v)
		}
	})
}

const (
	bufSize = 32 << 10
	// margin is how many bytes are buffered from the start of each value,
	// unless the body has ended: enough for the number parser's three 8-byte
	// loads and a separator.
	margin = 32
)

type scanner struct {
	r io.Reader
	// buf[pos:end] are the unread bytes, at body offset base+pos. Reads
	// fill buf[:bufSize]; the margin after it is room for loads past end.
	// Unless done, end-pos >= margin whenever a value is parsed; once done,
	// buf[end:end+margin] is zero, so a load past end sees no digit.
	buf      [bufSize + margin]byte
	pos, end int
	base     int64
	limit    int64
	done     bool  // r has no more to give; readErr says why
	readErr  error // io.EOF at the end of the body
	index    int   // index of the value being read, -1 before the first
	n        int
	maxValue uint64
	batch    [BatchLen]uint64 // values not yet handed to the sink
}

// erase clears everything the body passed through.
func (s *scanner) erase() {
	clear(s.buf[:])
	clear(s.batch[:])
}

func (s *scanner) decode(sink func([]uint64)) error {
	c, err := s.next()
	if err != nil {
		return err
	}
	wrapped := c == '{'
	if wrapped {
		if err := s.objectStart(); err != nil {
			return err
		}
		if c, err = s.next(); err != nil {
			return err
		}
	}
	if c != '[' {
		return s.unexpected(c, "'['")
	}
	s.pos++
	if err := s.values(sink); err != nil {
		return err
	}
	if wrapped {
		if c, err = s.next(); err != nil {
			return err
		}
		if c != '}' {
			if c == ',' {
				return s.fail("the wrapper object has more than one member")
			}
			return s.unexpected(c, "'}'")
		}
		s.pos++
	}
	switch c, err := s.peek(); {
	case err == nil:
		return s.fail("trailing data after the answer" + kind(c))
	case errors.Is(err, errEnd):
		return nil
	default:
		return err
	}
}

// values reads array elements after '[' up to and including ']'. The run
// of values followed by commas goes through fast; the general path here
// takes each value fast leaves: the last, one after unusual white space,
// one near the buffer's end, and any malformed one, which it reports.
func (s *scanner) values(sink func([]uint64)) error {
	c, err := s.next()
	if err != nil {
		return err
	}
	if c == ']' {
		s.pos++
		return s.countErr(0)
	}
	i, k := 0, 0 // values read, values in s.batch
	for {
		if k == BatchLen {
			sink(s.batch[:])
			k = 0
		}
		took := s.fast(k, min(BatchLen-k, s.n-i))
		i, k = i+took, k+took
		if k == BatchLen {
			continue
		}
		// s.buf[s.pos] is the first byte of value i, or white space before it.
		if _, err := s.next(); err != nil {
			return err
		}
		s.index = i
		if i >= s.n {
			return s.failValue(fmt.Sprintf("more than the %d values asked for", s.n))
		}
		v, err := s.number()
		if err != nil {
			return err
		}
		if v > s.maxValue {
			return s.failValue(outOfRange(v, s.maxValue))
		}
		s.batch[k] = v
		i, k = i+1, k+1
		switch s.buf[s.pos] {
		case '.', 'e', 'E':
			return s.failValue("not an integer (fraction or exponent)")
		}
		if c, err = s.next(); err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
			if _, err = s.next(); err != nil { // the next value must follow
				return err
			}
		case ']':
			if err := s.countErr(i); err != nil {
				return err
			}
			if k > 0 {
				sink(s.batch[:k])
			}
			return nil
		default:
			s.pos--
			return s.unexpected(c, "',' or ']'")
		}
	}
}

func (s *scanner) countErr(got int) error {
	if got != s.n {
		s.index = -1
		return s.fail(fmt.Sprintf("got %d values, want %d", got, s.n))
	}
	return nil
}
