package decode

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
