package qrng

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/qrng-go/qrng/qrngtest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer speaks just enough of the API to hand out access tokens, then
// answers with bodies that echo a secret in the shape a test asks for.
type echoServer struct {
	*httptest.Server

	mu     sync.Mutex
	issued map[string][]string // API token -> access tokens handed out, in order
	owner  map[string]string   // access token -> API token
	answer func(secret string) (status int, body string)
	secret func(api string, issued []string) string // which of the caller's secrets to echo
}

// An API token with characters that JSON and URLs escape differently.
const oddToken = `api/Tok+en=with&odd<chars>"and\slash-0123456789`

func newEchoServer(t *testing.T) *echoServer {
	e := &echoServer{issued: map[string][]string{}, owner: map[string]string{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if r.URL.Path == pathAccessToken {
			var req struct {
				Refresh string `json:"refresh_token"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			tok := fmt.Sprintf("access-%03d-9f8e7d6c5b4a39281706f5e4d3c2b1a0", len(e.owner))
			e.issued[req.Refresh] = append(e.issued[req.Refresh], tok)
			e.owner[tok] = req.Refresh
			// Already expired: the client exchanges again before every call.
			fmt.Fprintf(w, `{"access_token":%q,"expires_at_rfc3339":"2000-01-01T00:00:00Z"}`, tok)
			return
		}
		api := e.owner[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		status, body := e.answer(e.secret(api, e.issued[api]))
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(e.Close)
	return e
}

// secrets lists every token the server has seen or issued.
func (e *echoServer) secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for api, issued := range e.issued {
		out = append(append(out, api), issued...)
	}
	return out
}

// assertNoSecret checks that text holds no 8-byte piece of any secret, in
// any of the forms a server might use.
func assertNoSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), jsonForm(s)} {
			for i := 0; i+8 <= len(form); i++ {
				if strings.Contains(text, form[i:i+8]) {
					t.Errorf("%s holds %q, a piece of a secret: %s", what, form[i:i+8], text)
					return
				}
			}
		}
	}
}

func jsonForm(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }

// Issue 9.1: a server that echoes a token, in any shape, never gets it
// into an error, Stats().LastError, a log line, an OnFallback reason or a
// panic.
func TestTokensNeverLeakFromAnEchoingServer(t *testing.T) {
	api := func(api string, _ []string) string { return api }
	firstAccess := func(_ string, issued []string) string { return issued[0] }
	padding := strings.Repeat("x", 290)
	shapes := []struct {
		name   string
		secret func(string, []string) string
		answer func(secret string) (int, string)
	}{
		{"usage n_bits as a string", api, func(s string) (int, string) { return 200, fmt.Sprintf(`{"n_bits":%s}`, mustJSON(s)) }},
		{"numbers member name", firstAccess, func(s string) (int, string) { return 200, fmt.Sprintf(`{%s:[1]}`, mustJSON(s)) }},
		{"numbers string value", api, func(s string) (int, string) { return 200, fmt.Sprintf(`[1,%s]`, mustJSON(s)) }},
		{"long detail then the token", api, func(s string) (int, string) {
			return 400, fmt.Sprintf(`{"detail":%s}`, mustJSON(padding+s))
		}},
		{"token cut by the message limit", api, func(s string) (int, string) {
			return 400, fmt.Sprintf(`{"detail":%s}`, mustJSON(padding[:285]+s))
		}},
		{"detail object with \\u escapes", api, func(s string) (int, string) {
			var b strings.Builder
			for _, r := range s {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
			return 400, `{"detail":{"token":"` + b.String() + `"}}`
		}},
		{"percent-encoded in plain text", api, func(s string) (int, string) {
			return 503, "upstream said: https://auth.example/?t=" + url.QueryEscape(s)
		}},
		{"percent-encoded, every byte", api, func(s string) (int, string) {
			var b strings.Builder
			for i := range len(s) {
				fmt.Fprintf(&b, "%%%02x", s[i])
			}
			return 422, fmt.Sprintf(`{"detail":[{"loc":["body",%q],"msg":"bad"}]}`, b.String())
		}},
		{"an early access token, after many", firstAccess, func(s string) (int, string) {
			return 400, fmt.Sprintf(`{"detail":"token %s is stale"}`, s)
		}},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEchoServer(t)
			e.secret = func(string, []string) string { return "" }
			e.answer = func(string) (int, string) { return 200, "[1,2,3,4,5,6,7,8]" }
			var logs bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, err := NewClient(ClientConfig{Token: oddToken, BaseURL: e.URL, MaxRetries: 1, Logger: logger})
			require.NoError(t, err)
			c.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
			for range 10 { // ten access tokens held, one per call
				_, err := c.RandomNumbers(context.Background(), 8, 4)
				require.NoError(t, err)
			}
			e.secret, e.answer = sh.secret, sh.answer
			var texts []string
			if _, err := c.Usage(context.Background(), time.Now(), time.Now()); err != nil {
				texts = append(texts, err.Error())
			}
			if _, err := c.RandomNumbers(context.Background(), 8, 16); err != nil {
				texts = append(texts, err.Error())
			}
			require.NotEmpty(t, texts, "the echoing answers are refused")

			// The same through a Source: stats, log, fallback reason, panic.
			var reasons []string
			src := NewSource(Config{Token: oddToken + "-source", BaseURL: e.URL, BatchSize: 256, Workers: 1, MaxRetries: 1,
				Logger: logger, WaitTimeout: time.Second,
				OnFallback: func(ev FallbackEvent) {
					if ev.Reason != nil {
						reasons = append(reasons, ev.Reason.Error())
					}
				}})
			src.client.sleep = c.sleep
			_, err = src.Read(make([]byte, 8))
			require.NoError(t, err)
			if le := src.Stats().LastError; le != nil {
				texts = append(texts, le.Error())
			}
			never := NewSource(Config{Token: oddToken + "-never", BaseURL: e.URL, BatchSize: 256, Workers: 1, MaxRetries: -1,
				Logger: logger, Fallback: FallbackNever})
			func() {
				defer func() { texts = append(texts, fmt.Sprint(recover())) }()
				never.Uint64()
			}()
			src.Close()
			never.Close()
			texts = append(texts, reasons...)
			mu.Lock()
			texts = append(texts, logs.String())
			mu.Unlock()
			for i, text := range texts {
				assertNoSecret(t, fmt.Sprintf("output %d", i), text, e.secrets())
			}
		})
	}
}

func mustJSON(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestRedactForms(t *testing.T) {
	var k secrets
	k.add("shrt")           // short, and still a secret
	k.add("Secret/Value+1") // escapes differently in each form
	for in, want := range map[string]string{
		"a Secret/Value+1 b":           "a [REDACTED] b",
		"q=Secret%2FValue%2B1":         "q=[REDACTED]",
		"p/Secret%2FValue+1":           "p/[REDACTED]",
		`"Secret\/Value+1"`:            `"[REDACTED]"`,
		`\u0053ecret/Value\u002b1 x`:   "[REDACTED] x",
		"%53%65cret/Value%2b1":         "[REDACTED]",
		"a shrt word":                  "a [REDACTED] word",
		"100% sure, \\n is a newline":  "100% sure, \\n is a newline",
		"Secret/Value+Secret/Value+1x": "Secret/Value+[REDACTED]x",
	} {
		assert.Equal(t, want, k.redact(in), in)
	}
}

// Issue 15.13: redaction rewrote its own marker. With the token T (as in
// a quick test against `qrng serve -token T`) "429 Too Many Requests"
// became "429 [REDAC[REDAC[REDAC[REDAC[REDACTED]ED]ED]ED]ED]oo Many
// Requests". Now text is redacted in one pass, a short token only where
// it stands alone, and a marker is never rewritten.
func TestRedactionNeverRewritesItsMarker(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Token: "T"})
	c, _ := newTestClient(t, srv, ClientConfig{MaxRetries: -1})
	srv.Inject(qrngtest.Fault{Status: 429, Body: `{"detail":"Too Many Requests, try again (T)"}`, RetryAfter: "1"})
	_, err := c.RandomNumbers(context.Background(), 5, 8)
	require.Error(t, err)
	require.Equal(t, "qrng: /qrng/random_numbers: 429 Too Many Requests: Too Many Requests, try again ([REDACTED]) (retry after 1s)", err.Error())

	var k secrets
	for _, s := range []string{"T", "E", "RED", "AC", "[", "]"} {
		k.add(s)
	}
	for in, want := range map[string]string{
		"429 Too Many Requests":     "429 Too Many Requests",
		"token T, key E, RED":       "token [REDACTED], key [REDACTED], [REDACTED]",
		"T E":                       "[REDACTED] [REDACTED]",
		"a [REDACTED] b":            "a [REDACTED] b",
		"[x]":                       "[x]",
		"( [ )":                     "( [REDACTED] )",
		"RED-AC":                    "[REDACTED]-[REDACTED]",
		"Retry-After: T\nREDACTED:": "Retry-After: [REDACTED]\nREDACTED:",
	} {
		out := k.redact(in)
		assert.Equal(t, want, out, "%q", in)
		assert.Equal(t, out, k.redact(out), "redacting again changes nothing: %q", in)
	}
}

// A secret of at least shortSecret bytes is redacted wherever it occurs,
// inside words too; a shorter one only where it stands alone.
func TestShortSecretsOnlyWhereTheyStandAlone(t *testing.T) {
	var k secrets
	k.add("Zq9x5")    // short: a server may choose it, still a secret
	k.add("abcd1234") // long enough to be real
	for in, want := range map[string]string{
		"token Zq9x5 refused":      "token [REDACTED] refused",
		"token=Zq9x5&x":            "token=[REDACTED]&x",
		"xZq9x5 and Zq9x5y":        "xZq9x5 and Zq9x5y",
		"(Zq9x5)":                  "([REDACTED])",
		"keyabcd1234x":             "key[REDACTED]x",
		"abcd1234abcd1234":         "[REDACTED][REDACTED]",
		"%5A%71%39%78%35 was sent": "[REDACTED] was sent",
	} {
		assert.Equal(t, want, k.redact(in), "%q", in)
	}
}

// Issue 15.7: the message was cleaned after redaction, and cleaning
// dropped invalid UTF-8, so a token split by a 0xFF byte was joined
// again, within the first 300 bytes of a longer message. Now invalid
// bytes become U+FFFD before the last redaction, and nothing is dropped.
func TestTokenSplitByInvalidUTF8StaysSplit(t *testing.T) {
	const tok = "qci_live_4f7c2a9e81b34d6fa0c5e2b7d9183a64"
	var k secrets
	k.add(tok)
	for _, body := range []string{
		strings.Repeat("x", 100) + tok[:10] + "\xff" + tok[10:] + strings.Repeat("y", 400),
		`{"detail":"` + strings.Repeat("x", 100) + tok[:10] + `\u0000` + tok[10:] + strings.Repeat("y", 400) + `"}`,
		strings.Repeat("x", 280) + tok[:10] + "\xff\xfe" + tok[10:],
	} {
		resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
		err := responseError(resp, pathRandomNumbers, time.Now(), k.redact)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.NotContains(t, ae.Message, tok)
		assert.NotContains(t, err.Error(), tok)
		assert.True(t, utf8.ValidString(ae.Message))
		assert.LessOrEqual(t, len(ae.Message), 303)
	}
}

// Issue 15.7: redactedError.As handed out the original error, token and
// all. An error rebuilt by safe keeps its kinds (errors.Is) but holds
// nothing of the original: errors.As cannot find the original's type,
// and no field reachable from it names the token.
func TestRebuiltErrorsHoldNothingOfTheOriginal(t *testing.T) {
	const tok = "qci_live_4f7c2a9e81b34d6fa0c5e2b7d9183a64"
	var k secrets
	k.add(tok)
	orig := fmt.Errorf("wrapped: %w", &leakyError{Header: "Bearer " + tok, URL: &url.URL{Scheme: "https", Host: "h", RawQuery: "t=" + tok}})
	got := k.safe(errors.Join(orig, context.DeadlineExceeded, io.ErrUnexpectedEOF))
	var le *leakyError
	assert.False(t, errors.As(got, &le))
	assert.ErrorIs(t, got, context.DeadlineExceeded)
	assert.ErrorIs(t, got, io.ErrUnexpectedEOF)
	assert.Contains(t, got.Error(), "wrapped: refused Bearer [REDACTED] for https://h?t=[REDACTED]")
	assertNoTokenReachable(t, "rebuilt", []string{tok}, got)

	ue := &url.Error{Op: "Post", URL: "https://u:" + tok + "@h/p?rt=" + tok + "#" + tok, Err: fmt.Errorf("dial %s: %w", tok, syscall.ECONNREFUSED)}
	got = k.safe(ue)
	var gotURL *url.Error
	require.ErrorAs(t, got, &gotURL)
	assert.Equal(t, "https://h/p", gotURL.URL)
	assert.ErrorIs(t, got, syscall.ECONNREFUSED)
	assertNoTokenReachable(t, "rebuilt url.Error", []string{tok}, got)
}

// Issue 15.9, the client's side: a usage answer outside 0..2^62 is an
// error that matches ErrInvalidResponse (2^63-1 wrapped the meter
// negative and disabled it); 0 and 2^62 are answers.
func TestUsageAnswerOutsideItsRangeIsInvalid(t *testing.T) {
	for answer, ok := range map[string]bool{
		"0": true, "4611686018427387904": true, "123456": true,
		"-1": false, "9223372036854775807": false, "4611686018427387905": false,
		"9223372036854775808": false, "1e3": false, "12.5": false, `"x"`: false,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == pathAccessToken {
				io.WriteString(w, `{"access_token":"usage-access-token-0001","expires_in":3600}`)
				return
			}
			fmt.Fprintf(w, `{"n_bits":%s}`, answer)
		}))
		c, err := NewClient(ClientConfig{Token: "usage-api-token-000001", BaseURL: srv.URL, MaxRetries: -1})
		require.NoError(t, err)
		n, err := c.Usage(context.Background(), time.Now(), time.Now())
		srv.Close()
		if ok {
			assert.NoError(t, err, answer)
			assert.Equal(t, answer, fmt.Sprint(n))
			continue
		}
		assert.ErrorIs(t, err, ErrInvalidResponse, answer)
		assert.Zero(t, n, answer)
	}
}

// Redaction looks through up to maxUnescapes layers of escapes (%2541 is
// two), and no further: a text of many layers costs it a bounded number
// of passes, not one per layer.
func TestRedactLooksThroughLayersOfEscapes(t *testing.T) {
	const tok = "layered-token-0123456789"
	var k secrets
	k.add(tok)
	layered := func(n int) string {
		s := tok
		for range n {
			var b strings.Builder
			for i := range len(s) {
				fmt.Fprintf(&b, "%%%02X", s[i])
			}
			s = b.String()
		}
		return s
	}
	for n := 1; n <= maxUnescapes; n++ {
		out := k.redact("x " + layered(n) + " y")
		assert.Equal(t, "x [REDACTED] y", out, "%d layers", n)
	}
	deep := "x " + layered(2) + strings.Repeat("%25", 20000) + "41 " + tok
	assert.NotContains(t, k.redact(deep), tok)
}
