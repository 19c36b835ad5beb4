package decode

import (
	"errors"
	"fmt"
	"io"
)

// errEnd marks a clean end of the body inside peek.
var errEnd = errors.New("end of body")

// errBadCount is the error for a reader that claims more bytes than it was given room for.
var errBadCount = errors.New("reader returned an impossible byte count")

// fill moves the unread bytes to the front of buf and reads until margin
// bytes are buffered or r has no more to give (then done is set and the
// margin after end is zeroed). It reads at most one byte past the limit.
func (s *scanner) fill() {
	if s.done {
		return
	}
	s.base += int64(s.pos)
	s.end = copy(s.buf[:], s.buf[s.pos:s.end])
	s.pos = 0
	for empty := 0; s.end < margin && !s.done; {
		room := s.limit - s.base - int64(s.end) + 1 // one byte past the limit, to detect it
		b := s.buf[s.end:bufSize]
		if room < int64(len(b)) {
			b = b[:max(room, 1)]
		}
		m, err := s.r.Read(b)
		if m < 0 || m > len(b) {
			m, err = 0, errBadCount
		}
		s.end += m
		switch {
		case s.base+int64(s.end) > s.limit:
			s.end, err = s.pos, ErrTooLarge
		case m == 0 && err == nil:
			if empty++; empty == 100 {
				err = io.ErrNoProgress
			}
		}
		if err != nil {
			s.done, s.readErr = true, err
		}
	}
	if s.done {
		clear(s.buf[s.end : s.end+margin])
	}
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

// peek skips JSON white space and returns the next byte without consuming
// it, with margin bytes buffered from it unless the body has ended. At the
// end of input it returns errEnd if the body ended cleanly there.
func (s *scanner) peek() (byte, error) {
	for {
		if s.end-s.pos < margin {
			s.fill()
		}
		for s.pos < s.end && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		switch {
		case s.pos < s.end && (s.end-s.pos >= margin || s.done):
			return s.buf[s.pos], nil
		case s.pos >= s.end && s.done: // never beyond end, but never spin either
			if s.readErr == io.EOF {
				return 0, errEnd
			}
			return 0, s.endErr()
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// next is peek for places where the body must go on.
func (s *scanner) next() (byte, error) {
	c, err := s.peek()
	if err == errEnd {
		return 0, s.endErr()
	}
	return c, err
}

// byte consumes one byte.
func (s *scanner) byte() (byte, error) {
	if s.pos == s.end {
		s.fill()
		if s.pos == s.end {
			return 0, s.endErr()
		}
	}
	c := s.buf[s.pos]
	s.pos++
	return c, nil
}
