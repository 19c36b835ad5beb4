package qrng

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// redacted replaces a secret wherever one would appear in text.
const redacted = "[REDACTED]"

// secrets holds every token a Client has held: the API token and each
// access token ever received. Every error and log line that leaves a
// Client passes through redact. It is safe for concurrent use.
type secrets struct {
	mu   sync.Mutex
	list []string // deduplicated, longest first
}

// add records s as a secret, whatever its length: a server chooses an
// access token's length, so a short one is no less secret (a very short
// one blanks out ordinary text too, which is the lesser harm).
func (k *secrets) add(s string) {
	if s == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, old := range k.list {
		if old == s {
			return
		}
	}
	k.list = append(k.list, s)
	// Longest first, so that a secret inside another is not replaced
	// first, leaving the rest of the longer one.
	slices.SortFunc(k.list, func(a, b string) int { return len(b) - len(a) })
}

func (k *secrets) snapshot() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.list[:len(k.list):len(k.list)]
}

// redact removes every secret from text: as it is, JSON-escaped and
// percent-encoded. Text that hides a secret behind other escapes (\u00xx,
// %xx in any case) is unescaped first and redacted in that form. Redact
// before shortening text, never after, or a cut secret leaves its prefix.
func (k *secrets) redact(text string) string {
	list := k.snapshot()
	if len(list) == 0 || text == "" {
		return text
	}
	for _, s := range list {
		for _, form := range encodings(s) {
			text = strings.ReplaceAll(text, form, redacted)
		}
	}
	if strings.ContainsAny(text, `%\`) {
		if plain := unescape(text); plain != text {
			for _, s := range list {
				if strings.Contains(plain, s) {
					return k.redact(plain)
				}
			}
		}
	}
	return text
}

// encodings lists the forms in which s may appear in a server's text.
func encodings(s string) []string {
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if b, err := json.Marshal(s); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		q := strings.TrimSpace(sb.String())
		forms = append(forms, q[1:len(q)-1])
	}
	return forms
}

// unescape decodes %xx and JSON backslash escapes wherever they occur,
// leaving everything else as it is.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 3
		case c == '\\' && i+5 < len(s) && s[i+1] == 'u' && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]):
			v, _ := strconv.ParseUint(s[i+2:i+6], 16, 16)
			b.WriteRune(rune(v))
			i += 6
		case c == '\\' && i+1 < len(s) && strings.IndexByte(`"\\/bfnrt`, s[i+1]) >= 0:
			b.WriteByte(jsonEscape(s[i+1]))
			i += 2
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return b.String()
}

// jsonEscape is the byte a JSON backslash escape stands for.
func jsonEscape(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\' and '/' stand for themselves
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// redactedError is an error whose text had secrets removed. It matches
// what the original matched (errors.Is, errors.As) without exposing the
// original's text through Unwrap.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
func (e *redactedError) As(target any) bool   { return errors.As(e.err, target) }

// scrub returns err, or an error of the same kinds with secrets removed
// from its text.
func (k *secrets) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := k.redact(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}
