package decode

import (
	"fmt"
	"strconv"
)

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
