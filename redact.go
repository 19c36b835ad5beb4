package qrng

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"
)

// redacted replaces a secret wherever one would appear in text.
const redacted = "[REDACTED]"

// shortSecret is the length below which a secret is too short to be a
// real credential (QCI's tokens are far longer; a test's "T" is not). A
// secret of at least this many bytes is redacted wherever it occurs; a
// shorter one only where it stands on its own, not flanked by a letter or
// a digit, so that the token T leaves "429 Too Many Requests" alone but
// not "bad token T". Either way a marker is never rewritten: text is
// redacted in one pass over the original, never over the output, and a
// marker already in the text is left alone. (So a secret that is itself a
// piece of the marker, such as "ACT", still shows inside markers.)
const shortSecret = 8

// secrets holds every token a Client has held: the API token and each
// access token ever received. Every error and log line that leaves a
// Client passes through redact. It is safe for concurrent use.
type secrets struct {
	mu   sync.Mutex
	list []string // deduplicated, longest first
}

// add records s as a secret, whatever its length: a server chooses an
// access token's length, so a short one is no less secret (see
// shortSecret for how a short one is redacted).
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
	slices.SortFunc(k.list, func(a, b string) int { return len(b) - len(a) })
}

func (k *secrets) snapshot() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.list[:len(k.list):len(k.list)]
}

// redact removes every secret from text: as it is, JSON-escaped and
// percent-encoded. Text that hides a secret behind other escapes (\u00xx,
// %xx in any case) is unescaped and redacted in that form. Every
// occurrence of every form is found in the text as given, and each run of
// them (overlapping ones merged) becomes one marker. Redact before
// shortening text, never after, or a cut secret leaves its prefix.
func (k *secrets) redact(text string) string {
	list := k.snapshot()
	if len(list) == 0 || text == "" {
		return text
	}
	return redactWith(list, text)
}

// maxUnescapes bounds how many layers of escapes redact looks through
// (%2541 is two layers): a hostile text of many layers would otherwise
// cost time in its length squared.
const maxUnescapes = 8

func redactWith(list []string, text string) string {
	// The text as given, then unescaped layer by layer: the deepest layer
	// that shows a secret is the one redacted (unescaping leaves a secret
	// without escapes as it is, so it shows every secret the layers above
	// show, and those they hide).
	spans := find(list, text)
	for cur, layer := text, 0; layer < maxUnescapes && strings.ContainsAny(cur, `%\`); layer++ {
		plain := unescape(cur)
		if plain == cur {
			break
		}
		cur = plain
		if s := find(list, cur); len(s) > 0 {
			text, spans = cur, s
		}
	}
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(text[last:sp[0]])
		b.WriteString(redacted)
		last = sp[1]
	}
	b.WriteString(text[last:])
	return b.String()
}

// find returns the byte ranges of text that hold a form of a secret,
// sorted and merged where they overlap. An occurrence inside a marker
// already in text is no occurrence: redacting twice changes nothing.
func find(list []string, text string) [][2]int {
	var markers [][2]int
	for i := 0; ; {
		j := strings.Index(text[i:], redacted)
		if j < 0 {
			break
		}
		markers = append(markers, [2]int{i + j, i + j + len(redacted)})
		i += j + len(redacted)
	}
	inMarker := func(start, end int) bool { // markers are sorted and apart
		i := sort.Search(len(markers), func(i int) bool { return markers[i][1] >= end })
		return i < len(markers) && markers[i][0] <= start
	}
	var spans [][2]int
	for _, s := range list {
		for _, form := range encodings(s) {
			for i := 0; ; {
				j := strings.Index(text[i:], form)
				if j < 0 {
					break
				}
				start, end := i+j, i+j+len(form)
				if (len(s) >= shortSecret || standsAlone(text, start, end)) && !inMarker(start, end) {
					spans = append(spans, [2]int{start, end})
				}
				i = start + 1
			}
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	merged := spans[:0]
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp[0] < merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], sp[1])
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// standsAlone reports whether text[start:end] is not flanked by an ASCII
// letter or digit.
func standsAlone(text string, start, end int) bool {
	alnum := func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	return (start == 0 || !alnum(text[start-1])) && (end == len(text) || !alnum(text[end]))
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
	slices.Sort(forms)
	return slices.Compact(forms)
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

// sentinels are the errors callers test for with errors.Is that a
// rebuilt error keeps matching: this package's, the context's, and the
// common ones below HTTP.
var sentinels = []error{
	ErrQuotaExceeded, ErrUnauthorized, ErrRateLimited, ErrServer, ErrBadRequest,
	ErrInvalidResponse, ErrNoToken, ErrRejectedBatch, ErrClosed, errRedirect,
	context.Canceled, context.DeadlineExceeded, os.ErrDeadlineExceeded,
	io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
}

// safeError is an error rebuilt from another so that nothing of the
// original is left to reach: its text is the original's with every secret
// removed; it matches (errors.Is) the sentinels the original matched,
// reports a timeout if the original did (net.Error), and unwraps to one
// error that is safe in turn (an *APIError, an *invalidResponse, a
// rebuilt *url.Error) when the original's chain held one. No field holds
// the original, so neither errors.As nor reflection can hand it out.
type safeError struct {
	msg     string
	is      []error
	timeout bool
	inner   error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() error   { return e.inner }
func (e *safeError) Timeout() bool   { return e.timeout }
func (e *safeError) Temporary() bool { return e.timeout }
func (e *safeError) Is(target error) bool {
	for _, s := range e.is {
		if s == target {
			return true
		}
	}
	return false
}

// safe returns err if it is safe to hand out as it is (an error of this
// package built from redacted parts, or a bare sentinel), else err
// rebuilt as a safeError. Every error a Client returns has passed through
// safe.
func (k *secrets) safe(err error) error {
	switch err.(type) {
	case nil, *APIError, *invalidResponse, *transportError, *safeError:
		return err
	}
	for _, s := range sentinels {
		if err == s {
			return err
		}
	}
	return k.rebuild(err)
}

// rebuild returns err as a safeError.
func (k *secrets) rebuild(err error) *safeError {
	e := &safeError{msg: k.redact(err.Error()), is: matched(err), timeout: isTimeout(err)}
	var ae *APIError
	var ir *invalidResponse
	var ue *url.Error
	switch {
	case errors.As(err, &ae):
		e.inner = ae
	case errors.As(err, &ir):
		e.inner = ir
	case errors.As(err, &ue):
		e.inner = k.safeURLError(ue)
		e.msg = k.redact(strings.Replace(err.Error(), ue.Error(), e.inner.Error(), 1))
	}
	return e
}

// safeURLError rebuilds a *url.Error: its URL without query, fragment or
// user information and redacted, its Err a safeError without an inner
// error. Its text is made from these, so it names no secret either.
func (k *secrets) safeURLError(ue *url.Error) *url.Error {
	inner := &safeError{is: matched(ue.Err), timeout: isTimeout(ue.Err)}
	if ue.Err != nil {
		inner.msg = k.redact(strings.ReplaceAll(ue.Err.Error(), ue.URL, ""))
	}
	return &url.Error{Op: ue.Op, URL: k.safeURL(ue.URL), Err: inner}
}

// safeURL is raw without its query, fragment and user information (which
// may hold secrets other than the tokens this Client knows), redacted.
func (k *secrets) safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		raw, _, _ = strings.Cut(raw, "?")
		raw, _, _ = strings.Cut(raw, "#")
		return k.redact(raw)
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return k.redact(u.String())
}

func matched(err error) []error {
	var is []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			is = append(is, s)
		}
	}
	return is
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
