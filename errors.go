package qrng

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors callers may branch on with errors.Is. An *APIError matches the
// sentinel of its kind, so errors.Is(err, ErrQuotaExceeded) and
// errors.As(err, &apiErr) both work on the same error.
var (
	// ErrQuotaExceeded: the monthly quota is spent, as the server said or the
	// local meter counted. Not retried.
	ErrQuotaExceeded = errors.New("qrng: monthly quota exceeded")
	// ErrUnauthorized: the API token was refused, or a fresh access token was
	// refused a second time.
	ErrUnauthorized = errors.New("qrng: unauthorized")
	// ErrRateLimited: the server asked to slow down (429 that is not about the quota).
	ErrRateLimited = errors.New("qrng: rate limited")
	// ErrServer: the server failed (500, 502, 503 or 504).
	ErrServer = errors.New("qrng: server error")
	// ErrBadRequest: the server refused the request (another 4xx, such as 422).
	ErrBadRequest = errors.New("qrng: request refused")
	// ErrInvalidResponse: a 200 answer that is not what was asked for.
	ErrInvalidResponse = errors.New("qrng: invalid response")
	// ErrNoToken: no API token in the configuration nor in $QCI_TOKEN.
	ErrNoToken = errors.New("qrng: no API token (set the Token field or $QCI_TOKEN)")
	// ErrClosed: the Source was closed.
	ErrClosed = errors.New("qrng: source closed")
)

// APIError is an error answer from the service.
type APIError struct {
	Endpoint   string        // the path called, e.g. "/qrng/random_numbers"
	StatusCode int           // HTTP status
	Message    string        // the server's message, shortened, tokens removed
	RetryAfter time.Duration // from Retry-After; 0 when absent
	kind       error         // the sentinel it matches
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "qrng: %s: %d %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is reports whether target is the sentinel for this kind of answer.
func (e *APIError) Is(target error) bool { return target != nil && target == e.kind }

const maxErrorBody = 64 << 10

// cutSlack is read past maxErrorBody so that a token straddling the cut is
// whole when redacted (no token is this long).
const cutSlack = 4 << 10

// responseError maps a non-2xx response to an *APIError (nil for 2xx).
// It is the one place where status codes become errors. It reads at most
// maxErrorBody bytes of the body.
func responseError(resp *http.Response, endpoint string, now time.Time, redact func(string) string) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	// Read a little past the limit and redact before cutting there: a
	// token cut at the limit would leave its prefix, unrecognised.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+cutSlack))
	text := redact(string(body))
	if len(text) > maxErrorBody {
		text = text[:maxErrorBody]
	}
	e := &APIError{
		Endpoint:   endpoint,
		StatusCode: resp.StatusCode,
		// Fold, redact again (JSON unescaping or folding may reveal a
		// token), and only then shorten.
		Message:    shorten(redact(fold(serverMessage([]byte(text)))), 300),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	status := resp.StatusCode
	switch {
	case isQuotaStatus(status) && strings.Contains(strings.ToLower(e.Message), "quota"):
		e.kind = ErrQuotaExceeded
	case status == http.StatusUnauthorized:
		e.kind = ErrUnauthorized
	case status == http.StatusTooManyRequests:
		e.kind = ErrRateLimited
	case status == 500 || status == 502 || status == 503 || status == 504:
		e.kind = ErrServer
	default:
		e.kind = ErrBadRequest
	}
	return e
}

// serverMessage extracts the message from an error body, whole: FastAPI's
// {"detail": "..."} or {"detail": [{"loc": [...], "msg": "..."}]}, or the
// text itself when the body is not JSON.
func serverMessage(body []byte) string {
	var v struct {
		Detail json.RawMessage `json:"detail"`
	}
	msg := string(body)
	if json.Unmarshal(body, &v) == nil && len(v.Detail) > 0 {
		var s string
		var items []struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		}
		switch {
		case json.Unmarshal(v.Detail, &s) == nil:
			msg = s
		case json.Unmarshal(v.Detail, &items) == nil:
			parts := make([]string, 0, len(items))
			for _, it := range items {
				loc := make([]string, len(it.Loc))
				for i, l := range it.Loc {
					loc[i] = fmt.Sprint(l)
				}
				if len(loc) > 0 {
					parts = append(parts, strings.Join(loc, ".")+": "+it.Msg)
				} else {
					parts = append(parts, it.Msg)
				}
			}
			msg = strings.Join(parts, "; ")
		default:
			msg = string(v.Detail)
		}
	}
	return msg
}

// fold turns each run of white space and control characters into one
// space and each invalid UTF-8 sequence into U+FFFD: nothing is dropped,
// so two parts of a token that something separated stay apart.
func fold(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "\uFFFD"), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

// shorten cuts s to at most n bytes, at a rune boundary, marking the cut.
// Cut only redacted text: a cut token would leave its prefix unrecognised.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const most = 365 * 24 * time.Hour
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(most/time.Second))) * time.Second
	} else if errors.Is(err, strconv.ErrRange) && v[0] != '-' {
		return most // more seconds than int64 holds: as long as anything may be
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
