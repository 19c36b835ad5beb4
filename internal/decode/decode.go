// Package decode reads the uQRNG random-number answer, a JSON array of
// unsigned integers, while it streams in.
//
// It never holds the body as text: it scans a fixed buffer and hands each
// value to a callback as soon as it is read. Numbers are parsed as uint64
// digit by digit, never through float64, so every value up to 2^64-1 is
// exact. It accepts exactly the inputs that encoding/json would decode into
// n integers below 2^bits: a bare array, or an object whose only member is
// "data" holding the array (a shape the live API is tolerated to send).
package decode

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
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

const bufSize = 32 << 10

type scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64 // body offset of buf[0]
	limit    int64
	readErr  error // sticky error from r (io.EOF at the end)
	index    int   // index of the value being read
	n        int
	maxValue uint64
}

// Decode reads from r a JSON array of exactly n integers, each below
// 2^bits, calling emit with each value in order, and checks that nothing
// but white space follows. It reads at most limit bytes of r. A read error
// from r is returned wrapped as it is; a malformed body yields an *Error.
// emit may have been called for some values before an error is returned.
//
// Whatever the outcome, the buffer that r was given to fill is cleared
// before Decode returns, so no value read from the body stays there.
func Decode(r io.Reader, n, bits int, limit int64, emit func(uint64)) error {
	if bits < 1 || bits > 64 {
		return fmt.Errorf("decode: bits %d outside 1..64", bits)
	}
	s := &scanner{r: r, buf: make([]byte, bufSize), limit: limit, n: n, index: -1,
		maxValue: math.MaxUint64 >> (64 - bits)}
	defer clear(s.buf)
	return s.decode(emit)
}

func (s *scanner) decode(emit func(uint64)) error {
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
	if err := s.values(emit); err != nil {
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
	switch c, err := s.nonSpace(); {
	case err == nil:
		return s.fail("trailing data after the answer" + kind(c))
	case errors.Is(err, errEnd):
		return nil
	default:
		return err
	}
}

// errEnd marks a clean end of the body inside nonSpace.
var errEnd = errors.New("end of body")

// fill reads more input into buf. It returns false at the end of input or on error.
func (s *scanner) fill() bool {
	if s.readErr != nil {
		return false
	}
	s.base += int64(s.end)
	s.pos, s.end = 0, 0
	room := s.limit - s.base + 1 // read one byte past the limit to detect it
	b := s.buf
	if room < int64(len(b)) {
		b = b[:max(room, 1)]
	}
	for s.end == 0 && s.readErr == nil {
		m, err := s.r.Read(b)
		s.end = m
		if err != nil {
			s.readErr = err
		}
	}
	if s.base+int64(s.end) > s.limit {
		s.readErr = ErrTooLarge
		s.end = 0
		return false
	}
	return s.end > 0
}

// endErr turns the end of input into the error to report.
func (s *scanner) endErr() error {
	switch {
	case s.readErr == io.EOF:
		return &Error{Offset: s.offset(), Index: s.index, Truncated: true,
			Msg: fmt.Sprintf("body ended early, after %d of %d values", max(s.index, 0), s.n)}
	case s.readErr == ErrTooLarge:
		return &Error{Offset: s.offset(), Index: -1, Msg: fmt.Sprintf("%s of %d bytes", ErrTooLarge, s.limit)}
	default:
		return fmt.Errorf("reading body: %w", s.readErr)
	}
}

func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

func (s *scanner) fail(msg string) error {
	return &Error{Offset: s.offset(), Index: -1, Msg: msg}
}

func (s *scanner) failValue(msg string) error {
	return &Error{Offset: s.offset(), Index: s.index, Msg: msg}
}

// unexpected reports the byte c where want was expected. The message shows
// that one byte and what it starts, never more of the body: a 200 body
// could echo a token, and errors end up in logs.
func (s *scanner) unexpected(c byte, want string) error {
	return s.fail("unexpected " + quoteByte(c) + ", want " + want + kind(c))
}

// quoteByte shows one byte of the body: quoted if printable ASCII, else in hex.
func quoteByte(c byte) string {
	if c < 0x20 || c > 0x7e {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", c)
}

// kind names the JSON value that starts with c, as a suffix to a message.
func kind(c byte) string {
	switch c {
	case '"':
		return " (found a string)"
	case '{':
		return " (found an object)"
	case '[':
		return " (found an array)"
	case 't', 'f', 'n':
		return " (found a literal or a word)"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return " (found a number)"
	}
	return ""
}

// outOfRange describes a value above max; a value of more than 16 digits
// is described by its length rather than shown.
func outOfRange(v, max uint64) string {
	if v >= 1e16 {
		return fmt.Sprintf("a %d-digit number is out of range (at most %d)", len(strconv.FormatUint(v, 10)), max)
	}
	return fmt.Sprintf("%d is out of range (at most %d)", v, max)
}

// nonSpace skips JSON white space and returns the next byte without consuming it.
// At the end of input it returns errEnd if the body ended cleanly there.
func (s *scanner) nonSpace() (byte, error) {
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if !s.fill() {
			if s.readErr == io.EOF {
				return 0, errEnd
			}
			return 0, s.endErr()
		}
	}
}

// next is nonSpace for places where the body must go on.
func (s *scanner) next() (byte, error) {
	c, err := s.nonSpace()
	if errors.Is(err, errEnd) {
		return 0, s.endErr()
	}
	return c, err
}

// values reads array elements after '[' up to and including ']'.
func (s *scanner) values(emit func(uint64)) error {
	c, err := s.next()
	if err != nil {
		return err
	}
	if c == ']' {
		s.pos++
		return s.countErr(0)
	}
	for i := 0; ; i++ {
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
		emit(v)
		// Fast path for the usual ", " between values.
		if s.pos+2 < s.end && s.buf[s.pos] == ',' {
			p := s.pos + 1
			if s.buf[p] == ' ' {
				p++
			}
			if s.buf[p]-'0' <= 9 {
				s.pos = p
				continue
			}
		}
		if c, err = s.next(); err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
			if _, err = s.next(); err != nil { // make sure the next value's first byte is buffered
				return err
			}
		case ']':
			return s.countErr(i + 1)
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

// number parses an unsigned decimal integer at the current position.
func (s *scanner) number() (uint64, error) {
	c := s.buf[s.pos] // the caller has peeked a byte
	switch {
	case c == '-':
		return 0, s.failValue("negative number")
	case c < '0' || c > '9':
		return 0, s.failValue("unexpected " + quoteByte(c) + ", want a number" + kind(c))
	}
	// Fast path: the number ends inside the buffer. Up to 19 digits cannot
	// overflow (10^19 - 1 < 2^64); a 20th digit is checked against 2^64 - 1.
	start, i := s.pos, s.pos
	var v uint64
	for i < s.end && i-start < 19 {
		d := s.buf[i] - '0'
		if d > 9 {
			break
		}
		v = v*10 + uint64(d)
		i++
	}
	if i-start == 19 && i < s.end {
		if d := s.buf[i] - '0'; d <= 9 {
			if v > math.MaxUint64/10 || (v == math.MaxUint64/10 && uint64(d) > math.MaxUint64%10) {
				return 0, s.failValue("number exceeds 64 bits")
			}
			v = v*10 + uint64(d)
			i++
			if i < s.end && s.buf[i]-'0' <= 9 {
				return 0, s.failValue("number exceeds 64 bits")
			}
		}
	}
	if i < s.end {
		if c == '0' && i-start > 1 {
			return 0, s.failValue("number with a leading zero")
		}
		s.pos = i
		return v, s.afterNumber()
	}
	return s.slowNumber()
}

// slowNumber parses a number that may cross the buffer's end or overflow.
func (s *scanner) slowNumber() (uint64, error) {
	var v uint64
	digits := 0
	first := s.buf[s.pos]
	for {
		for s.pos < s.end {
			d := s.buf[s.pos] - '0'
			if d > 9 {
				return v, s.afterNumber()
			}
			if digits == 1 && first == '0' {
				return 0, s.failValue("number with a leading zero")
			}
			hi, lo := bits.Mul64(v, 10)
			lo, carry := bits.Add64(lo, uint64(d), 0)
			if hi != 0 || carry != 0 {
				return 0, s.failValue("number exceeds 64 bits")
			}
			v = lo
			digits++
			s.pos++
		}
		if !s.fill() {
			return 0, s.endErr() // a number cannot end the body
		}
	}
}

// afterNumber rejects a fraction or an exponent after the digits.
func (s *scanner) afterNumber() error {
	if s.pos == s.end && !s.fill() {
		return s.endErr()
	}
	switch s.buf[s.pos] {
	case '.', 'e', 'E':
		return s.failValue("not an integer (fraction or exponent)")
	}
	return nil
}

// objectStart reads `{ "data" :` of the tolerated wrapper, key escapes allowed.
func (s *scanner) objectStart() error {
	s.pos++ // '{'
	c, err := s.next()
	if err != nil {
		return err
	}
	if c != '"' {
		return s.unexpected(c, "the member \"data\"")
	}
	start := s.offset()
	s.pos++
	key, err := s.key()
	if err != nil {
		return err
	}
	if key != "data" {
		return &Error{Offset: start, Index: -1, Msg: "unexpected object member, want only \"data\""}
	}
	if c, err = s.next(); err != nil {
		return err
	}
	if c != ':' {
		return s.unexpected(c, "':'")
	}
	s.pos++
	return nil
}

// key reads a JSON string after its opening quote. It decodes escapes
// enough to compare with an ASCII name; anything else is kept as is.
func (s *scanner) key() (string, error) {
	var b []byte
	for len(b) <= 64 {
		c, err := s.byte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '"':
			return string(b), nil
		case c < 0x20:
			return "", s.fail("control character in a string")
		case c != '\\':
			b = append(b, c)
			continue
		}
		if c, err = s.byte(); err != nil {
			return "", err
		}
		switch c {
		case '"', '\\', '/':
			b = append(b, c)
		case 'b', 'f', 'n', 'r', 't':
			b = append(b, 0x7f) // a stand-in that never matches a name
		case 'u':
			var r rune
			for range 4 {
				h, err := s.byte()
				if err != nil {
					return "", err
				}
				switch {
				case h >= '0' && h <= '9':
					r = r<<4 | rune(h-'0')
				case h|0x20 >= 'a' && h|0x20 <= 'f':
					r = r<<4 | rune(h|0x20-'a'+10)
				default:
					return "", s.fail("bad \\u escape in a string")
				}
			}
			if r < 0x80 {
				b = append(b, byte(r))
			} else {
				b = append(b, 0x7f)
			}
		default:
			return "", s.fail("bad escape in a string")
		}
	}
	return "", s.fail("unexpected object member (a long name), want only \"data\"")
}

// byte consumes one byte.
func (s *scanner) byte() (byte, error) {
	if s.pos == s.end && !s.fill() {
		return 0, s.endErr()
	}
	c := s.buf[s.pos]
	s.pos++
	return c, nil
}
