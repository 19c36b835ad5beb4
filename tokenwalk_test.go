package qrng

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/qrng-go/qrng/internal/decode"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 15, items 7, 8 and 13, and "Tokens out of every error value": no
// error the library returns, logs, panics with or keeps in Stats carries
// a token, however deep one looks: its text, its Unwrap chain (single and
// multiple), errors.As into every error type a caller might ask for, and
// every field, exported or not, of everything reachable from it by
// reflection.

// asTargets are the error types a caller might ask errors.As for.
func asTargets() []any {
	return []any{
		new(*APIError), new(*url.Error), new(*net.OpError), new(*net.DNSError), new(*net.AddrError),
		new(*os.SyscallError), new(*os.PathError), new(*tls.CertificateVerificationError),
		new(*x509.UnknownAuthorityError), new(x509.HostnameError), new(x509.CertificateInvalidError),
		new(*json.SyntaxError), new(*json.UnmarshalTypeError), new(*decode.Error), new(net.Error),
		new(interface{ Timeout() bool }),
	}
}

// reachable collects every string reachable from v: by reflection through
// pointers, interfaces, structs (every field), slices, arrays and maps;
// for each error met, also its text in every fmt form, what Unwrap (either
// form) returns and what errors.As finds for every target.
type reachable struct {
	seen  map[visit]bool
	errs  map[error]bool
	texts []string
	nodes int
}

type visit struct {
	p uintptr
	t reflect.Type
}

func reachableTexts(vs ...any) []string {
	r := &reachable{seen: map[visit]bool{}, errs: map[error]bool{}}
	for _, v := range vs {
		r.value(reflect.ValueOf(v))
	}
	return r.texts
}

func (r *reachable) error(err error) {
	if err == nil {
		return
	}
	if reflect.TypeOf(err).Comparable() { // a value error (syscall.Errno) is met again through errors.As
		if r.errs[err] {
			return
		}
		r.errs[err] = true
	}
	r.texts = append(r.texts, err.Error(), fmt.Sprintf("%v|%+v|%#v|%q", err, err, err, err))
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		r.value(reflect.ValueOf(u.Unwrap()))
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			r.value(reflect.ValueOf(e))
		}
	}
	for _, target := range asTargets() {
		if errors.As(err, target) {
			r.value(reflect.ValueOf(target).Elem())
		}
	}
}

func (r *reachable) value(v reflect.Value) {
	if !v.IsValid() || r.nodes > 200_000 {
		return
	}
	r.nodes++
	if v.Kind() == reflect.Interface {
		if !v.IsNil() {
			r.value(v.Elem())
		}
		return
	}
	if v.CanAddr() && !v.CanInterface() {
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem() // an unexported field, made readable
	}
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		key := visit{v.Pointer(), v.Type()}
		if r.seen[key] {
			return
		}
		r.seen[key] = true
	}
	if v.CanInterface() {
		if err, ok := v.Interface().(error); ok && !(v.Kind() == reflect.Pointer && v.IsNil()) {
			r.error(err)
		}
	}
	switch v.Kind() {
	case reflect.String:
		r.texts = append(r.texts, v.String())
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		r.value(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			r.value(v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			r.texts = append(r.texts, string(v.Bytes()))
			return
		}
		for i := range v.Len() {
			r.value(v.Index(i))
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			r.value(it.Key())
			r.value(it.Value())
		}
	}
}

// forms are the encodings the redactor knows, for the check.
func forms(s string) []string {
	return []string{s, url.QueryEscape(s), url.PathEscape(s), jsonForm(s), strings.ReplaceAll(jsonForm(s), `\u0026`, "&")}
}

// assertNoTokenReachable checks every text reachable from vs, and its
// unescaped form, for any 8-byte piece of a secret in any form the
// redactor knows.
func assertNoTokenReachable(t *testing.T, what string, secrets []string, vs ...any) {
	t.Helper()
	assertNoPieceReachable(t, what, secrets, 8, vs...)
}

// assertNoTokenFormReachable checks for whole secrets only: for a server
// that splits a token with other bytes, whose pieces it may then show.
func assertNoTokenFormReachable(t *testing.T, what string, secrets []string, vs ...any) {
	t.Helper()
	assertNoPieceReachable(t, what, secrets, 0, vs...)
}

func assertNoPieceReachable(t *testing.T, what string, secrets []string, piece int, vs ...any) {
	t.Helper()
	pieces := map[string]bool{}
	for _, s := range secrets {
		for _, f := range forms(s) {
			n := piece
			if n == 0 || n > len(f) {
				n = len(f)
			}
			for i := 0; i+n <= len(f); i++ {
				pieces[f[i:i+n]] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, text := range reachableTexts(vs...) {
		if seen[text] {
			continue
		}
		seen[text] = true
		for _, x := range []string{text, unescape(text)} {
			for p := range pieces {
				if strings.Contains(x, p) {
					t.Errorf("%s: a token (or a piece of one: %q) is reachable in %q", what, p, x)
					return
				}
			}
		}
	}
}

// The API token of the hostile servers below: long, and with characters
// that each encoding changes.
const hostileToken = "qci/live+Tok=en&9f8e7d6c5b4a"

// hostile is a server that exchanges tokens and then answers every other
// request as answer says, given the secrets it has seen.
type hostile struct {
	*httptest.Server
	mu     sync.Mutex
	access []string
	answer func(w http.ResponseWriter, r *http.Request, api, access string)
}

func newHostile(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, api, access string)) *hostile {
	h := &hostile{answer: answer}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathAccessToken {
			h.mu.Lock()
			tok := fmt.Sprintf("acc-%d-%s", len(h.access), "71c3d09e5a8b4f26")
			h.access = append(h.access, tok)
			h.mu.Unlock()
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600}`, tok)
			return
		}
		h.answer(w, r, hostileToken, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostile) secrets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{hostileToken}, h.access...)
}

// tlsURL is a loopback TLS server's address: its certificate is not
// trusted, so a redirect there fails TLS verification.
func tlsURL(t *testing.T) string {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(s.Close)
	return s.URL
}

// stall is a loopback server that never answers until the test ends.
func stallURL(t *testing.T) string {
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); s.Close() })
	return s.URL
}

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hostileAnswers are the ways a server or a redirect gets a token into an
// error. Each answers with the secrets it is given.
func hostileAnswers(t *testing.T) map[string]func(w http.ResponseWriter, r *http.Request, api, access string) {
	status := func(code int, body func(api, access string) string) func(w http.ResponseWriter, r *http.Request, api, access string) {
		return func(w http.ResponseWriter, r *http.Request, api, access string) {
			w.WriteHeader(code)
			io.WriteString(w, body(api, access))
		}
	}
	redirect := func(code int, to func(api, access string) string) func(w http.ResponseWriter, r *http.Request, api, access string) {
		return func(w http.ResponseWriter, r *http.Request, api, access string) {
			http.Redirect(w, r, to(api, access), code)
		}
	}
	closed, tlsAddr, stall := closedURL(t), tlsURL(t), stallURL(t)
	long := strings.Repeat("x", 320)
	return map[string]func(w http.ResponseWriter, r *http.Request, api, access string){
		"400 echoing both":     status(400, func(a, c string) string { return fmt.Sprintf(`{"detail":"key %s token %s"}`, a, c) }),
		"401 echoing, as JSON": status(401, func(a, c string) string { return fmt.Sprintf(`{"detail":%s}`, mustJSON(a+" "+c)) }),
		"422 percent-encoded":  status(422, func(a, c string) string { return "bad ?k=" + url.QueryEscape(a) + "&t=" + url.PathEscape(c) }),
		"503 with \\u escapes": status(503, func(a, c string) string { return `{"detail":"` + uEscape(a) + " " + uEscape(c) + `"}` }),
		"429 quota echoing":    status(429, func(a, c string) string { return fmt.Sprintf(`{"detail":"monthly quota of %s spent by %s"}`, a, c) }),
		"split by 0xFF, cut at 300": status(400, func(a, c string) string {
			return long[:100] + a[:9] + "\xff" + a[9:] + " " + c[:5] + "\xff" + c[5:] + long
		}),
		"split by a control":     status(400, func(a, c string) string { return a[:9] + "\x00" + a[9:] + " " + c[:5] + "\x7f" + c[5:] }),
		"cut at the body limit":  status(400, func(a, c string) string { return strings.Repeat(" ", maxErrorBody-12) + a + c }),
		"200 malformed, echoing": status(200, func(a, c string) string { return fmt.Sprintf(`[1,%s,%s]`, mustJSON(a), mustJSON(c)) }),
		"200 object, echoing":    status(200, func(a, c string) string { return fmt.Sprintf(`{%s:[1], %s:2}`, mustJSON(a), mustJSON(c)) }),
		"redirect to a closed port, token in the query": redirect(307, func(a, c string) string {
			return closed + "/?rt=" + url.QueryEscape(a) + "&at=" + c
		}),
		"redirect to plain http elsewhere, token in the path": redirect(307, func(a, c string) string {
			return "http://evil.example/" + url.PathEscape(a) + "/" + c
		}),
		"redirect to an untrusted TLS server": redirect(308, func(a, c string) string {
			return tlsAddr + "/?rt=" + url.QueryEscape(a) + "#" + c
		}),
		"redirect with the token as user info": redirect(307, func(a, c string) string {
			return strings.Replace(closed, "http://", "http://"+url.QueryEscape(c)+":"+url.QueryEscape(a)+"@", 1) + "/"
		}),
		"redirect loop": redirect(302, func(a, c string) string { return "/loop?rt=" + url.QueryEscape(a) + "&at=" + c }),
		"redirect to a stall, attempt times out": redirect(307, func(a, c string) string {
			return stall + "/?rt=" + url.QueryEscape(a) + "&at=" + c
		}),
	}
}

func uEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// leakyTransport fails every request with an error of its own that
// carries the request's Authorization header and URL in its fields and
// text: a user's transport the library cannot vet.
type leakyTransport struct{ next http.RoundTripper }

type leakyError struct {
	Header string
	URL    *url.URL
}

func (e *leakyError) Error() string { return "refused " + e.Header + " for " + e.URL.String() }

func (l leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == pathAccessToken {
		return l.next.RoundTrip(r)
	}
	return nil, &leakyError{Header: r.Header.Get("Authorization"), URL: r.URL}
}

// Every error a Client returns, for every hostile answer, from every
// endpoint.
func TestNoTokenReachableFromClientErrors(t *testing.T) {
	for what, answer := range hostileAnswers(t) {
		t.Run(what, func(t *testing.T) {
			h := newHostile(t, answer)
			var logs logRecorder
			c, err := NewClient(ClientConfig{Token: hostileToken, BaseURL: h.URL, MaxRetries: 1,
				AttemptTimeout: 300 * time.Millisecond, Logger: slog.New(&logs)})
			require.NoError(t, err)
			c.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
			var errs []any
			_, err = c.RandomNumbers(context.Background(), 8, 16)
			require.Error(t, err)
			errs = append(errs, err)
			_, err = c.Usage(context.Background(), time.Now(), time.Now())
			require.Error(t, err)
			errs = append(errs, err)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err = c.RandomNumbers(ctx, 8, 16)
			cancel()
			errs = append(errs, err)
			check := assertNoTokenReachable
			if strings.HasPrefix(what, "split") {
				check = assertNoTokenFormReachable // it shows the pieces it was sent, apart
			}
			check(t, what, h.secrets(), append(errs, logs.values()...)...)
		})
	}
	t.Run("a user's transport that echoes the header", func(t *testing.T) {
		h := newHostile(t, func(w http.ResponseWriter, r *http.Request, api, access string) {})
		c, err := NewClient(ClientConfig{Token: hostileToken, BaseURL: h.URL, MaxRetries: -1,
			HTTPClient: &http.Client{Transport: leakyTransport{http.DefaultTransport}}})
		require.NoError(t, err)
		_, err = c.RandomNumbers(context.Background(), 8, 16)
		require.Error(t, err)
		var le *leakyError
		assert.False(t, errors.As(err, &le), "the transport's own error, token and all, is handed out")
		assertNoTokenReachable(t, "leaky transport", h.secrets(), err)
	})
	t.Run("the token pasted into the address", func(t *testing.T) {
		_, err := NewClient(ClientConfig{Token: hostileToken, BaseURL: "https://host:" + hostileToken + "/"})
		require.Error(t, err)
		assertNoTokenReachable(t, "bad address", []string{hostileToken}, err)
	})
}

// Item 8: a redirect to ?rt=<token> put the token in the *url.Error that
// errors.As found, and in its text. Now errors.As still finds a *url.Error
// (and net.Error for timeouts), rebuilt: its URL has no query and no
// token.
func TestRedirectErrorsKeepTheirKindsButNotTheToken(t *testing.T) {
	closed := closedURL(t)
	h := newHostile(t, func(w http.ResponseWriter, r *http.Request, api, access string) {
		http.Redirect(w, r, closed+"/x?rt="+url.QueryEscape(api), http.StatusTemporaryRedirect)
	})
	c, err := NewClient(ClientConfig{Token: hostileToken, BaseURL: h.URL, MaxRetries: -1})
	require.NoError(t, err)
	_, err = c.RandomNumbers(context.Background(), 8, 16)
	require.Error(t, err)
	var ue *url.Error
	require.True(t, errors.As(err, &ue), "a transport error still holds a *url.Error")
	assert.Equal(t, closed+"/x", ue.URL, "the URL without its query")
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "the refused connection still matches: %v", err)
	assert.NotContains(t, err.Error(), url.QueryEscape(hostileToken))
	assert.Contains(t, err.Error(), "qrng: transport: Post")

	stall := stallURL(t)
	h2 := newHostile(t, func(w http.ResponseWriter, r *http.Request, api, access string) {
		http.Redirect(w, r, stall+"/?rt="+access, http.StatusTemporaryRedirect)
	})
	c2, err := NewClient(ClientConfig{Token: hostileToken, BaseURL: h2.URL, MaxRetries: -1})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c2.RandomNumbers(ctx, 8, 16)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assertNoTokenReachable(t, "deadline during a redirect", h2.secrets(), err)
}

// Through a Source: Read's errors, Stats().LastError, every
// FallbackEvent.Reason, the values Uint64 panics with, and every value
// logged.
func TestNoTokenReachableThroughASource(t *testing.T) {
	for what, answer := range hostileAnswers(t) {
		t.Run(what, func(t *testing.T) {
			h := newHostile(t, answer)
			var logs logRecorder
			var mu sync.Mutex
			var reasons []any
			cfg := Config{Token: hostileToken, BaseURL: h.URL, BatchSize: 256, Workers: 1, MaxRetries: -1,
				WaitTimeout: 2 * time.Second, Logger: slog.New(&logs),
				OnFallback: func(ev FallbackEvent) { mu.Lock(); reasons = append(reasons, ev.Reason); mu.Unlock() }}
			src := NewSource(cfg)
			src.cooldown = 10 * time.Millisecond
			t.Cleanup(func() { src.Close() })
			_, err := src.Read(make([]byte, 64))
			require.NoError(t, err, "falls back")
			stats := src.Stats()

			cfg.Fallback, cfg.OnFallback = FallbackNever, nil
			never := NewSource(cfg)
			never.cooldown = 10 * time.Millisecond
			t.Cleanup(func() { never.Close() })
			_, readErr := never.Read(make([]byte, 64))
			require.Error(t, readErr)
			panicked := func() (v any) {
				defer func() { v = recover() }()
				never.Uint64()
				return nil
			}()
			require.NotNil(t, panicked)
			src.Close()
			never.Close()
			mu.Lock()
			defer mu.Unlock()
			check := assertNoTokenReachable
			if strings.HasPrefix(what, "split") {
				check = assertNoTokenFormReachable // it shows the pieces it was sent, apart
			}
			check(t, what, h.secrets(), append(append([]any{stats, readErr, panicked, never.Stats()}, reasons...), logs.values()...)...)
		})
	}
}

// The same through the emulator's own faults: a status whose body echoes
// the token, the token refused, a quota answer.
func TestNoTokenReachableFromEmulatorFaults(t *testing.T) {
	for _, f := range []qrngtest.Fault{
		{Status: 400, Body: `{"detail":"bad key ` + matrixToken + `"}`, Times: -1},
		{Status: 401, Body: `{"detail":"` + matrixToken + `"}`, Times: -1},
		{Status: 503, Body: matrixToken, Times: -1},
		{Status: 429, Body: `{"detail":"quota used by ` + matrixToken + `"}`, Times: -1},
		{Path: qrngtest.PathAccessToken, Status: 401, Body: `{"detail":"no such key ` + url.QueryEscape(matrixToken) + `"}`, Times: -1},
		{Reset: true, Times: -1},
		{Truncate: true, Times: -1},
	} {
		srv := newServer(t, qrngtest.Options{Token: matrixToken})
		srv.Inject(f)
		var logs logRecorder
		src := newTestSource(t, srv, Config{BatchSize: 256, Workers: 1, MaxRetries: 1, Fallback: FallbackNever,
			WaitTimeout: time.Second, Logger: slog.New(&logs)})
		_, err := src.Read(make([]byte, 10))
		require.Error(t, err)
		panicked := func() (v any) {
			defer func() { v = recover() }()
			src.Uint64()
			return nil
		}()
		assertNoTokenReachable(t, fmt.Sprintf("%+v", f), []string{matrixToken}, append([]any{err, panicked, src.Stats()}, logs.values()...)...)
	}
}

// logRecorder is an slog.Handler that keeps every attribute's value.
type logRecorder struct {
	mu   sync.Mutex
	vals []any
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.vals = append(l.vals, r.Message)
	r.Attrs(func(a slog.Attr) bool { l.vals = append(l.vals, a.Value.Any()); return true })
	return nil
}
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range as {
		l.vals = append(l.vals, a.Value.Any())
	}
	return l
}
func (l *logRecorder) WithGroup(string) slog.Handler { return l }
func (l *logRecorder) values() []any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]any(nil), l.vals...)
}

// The walk itself finds a token however it is hidden: in an unexported
// field of a value behind an interface in a slice, in a map, behind
// errors.Join, in an error only errors.As reaches (through an As method),
// and in a byte slice.
func TestTheWalkFindsHiddenTokens(t *testing.T) {
	type hidden struct {
		deep []any
		m    map[string]error
	}
	const tok = "walk-finds-me-0123456789"
	found := func(vs ...any) bool {
		for _, text := range reachableTexts(vs...) {
			if strings.Contains(text, tok) {
				return true
			}
		}
		return false
	}
	assert.True(t, found(&hidden{deep: []any{1, struct{ s string }{tok}}}))
	assert.True(t, found(hidden{m: map[string]error{"k": &leakyError{URL: &url.URL{Path: tok}}}}))
	assert.True(t, found(errors.Join(io.EOF, fmt.Errorf("x: %w", &url.Error{Op: "Get", URL: "u", Err: errors.New(tok)}))))
	assert.True(t, found(asOnly{tok[:10], tok[10:]})) // joined only by As
	assert.True(t, found(struct{ b []byte }{[]byte(tok)}))
	assert.False(t, found(&hidden{deep: []any{"nothing here"}}))
}

// asOnly hands out an error, made on the spot, only through errors.As.
type asOnly struct{ a, b string }

func (a asOnly) Error() string { return "as only" }
func (a asOnly) As(target any) bool {
	if p, ok := target.(**APIError); ok {
		*p = &APIError{Message: a.a + a.b}
		return true
	}
	return false
}
