package qrng

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/internal/decode"
)

// ClientConfig configures a Client. Every zero field means its default.
type ClientConfig struct {
	// Token is the API token from QCI. Default: $QCI_TOKEN.
	Token string
	// BaseURL is the service's address. Default: $QCI_API_URL, else
	// DefaultBaseURL. It must be https unless the host is a loopback address.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of its own. The
	// Client copies it and adds a redirect check; the original is untouched.
	HTTPClient *http.Client
	// MaxRetries is how many times a transient failure is retried after the
	// first attempt. Default 4; a negative value means no retries.
	MaxRetries int
	// RefreshMargin is how long before its expiry an access token is
	// replaced. Default 60 s (never more than half the token's lifetime).
	RefreshMargin time.Duration
	// AttemptTimeout bounds one HTTP attempt, body included. Default 60 s.
	AttemptTimeout time.Duration
	// MaxBackoff caps one exponential backoff pause. Default 10 s.
	MaxBackoff time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured. Default 60 s.
	MaxRetryAfter time.Duration
	// Logger receives retry notices. Default: none. Tokens are never logged.
	Logger *slog.Logger
}

// Client talks to the uQRNG API: it exchanges the API token for access
// tokens, fetches random numbers and reads usage. It retries transient
// failures with capped, jittered exponential backoff. A Client is safe for
// concurrent use by multiple goroutines. The zero value is not usable: make
// Clients with NewClient.
type Client struct {
	token      string
	base       string
	hc         *http.Client
	maxRetries int
	margin     time.Duration
	attemptTTL time.Duration
	maxBackoff time.Duration
	maxRetryAf time.Duration
	log        *slog.Logger

	// Test seams: the clock, the pause between attempts and the jitter.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(n int64) int64

	tok          tokenCache
	sec          secrets // every token held, removed from all errors and logs
	ownTransport bool    // hc's transport was made here, so Close may close its connections

	requests atomic.Int64 // HTTP attempts sent
	failed   atomic.Int64 // attempts that did not yield a usable answer
	retried  atomic.Int64 // attempts that were retries
}

// NewClient returns a Client for cfg. It fails only for a configuration
// that can never work (an unparsable BaseURL, plain http to a remote host);
// a missing token is reported by the first call that needs it (ErrNoToken).
func NewClient(cfg ClientConfig) (*Client, error) {
	c := &Client{
		token:      cmp(cfg.Token, os.Getenv(envToken)),
		maxRetries: cfg.MaxRetries,
		margin:     cmp(cfg.RefreshMargin, 60*time.Second),
		attemptTTL: cmp(cfg.AttemptTimeout, 60*time.Second),
		maxBackoff: cmp(cfg.MaxBackoff, 10*time.Second),
		maxRetryAf: cmp(cfg.MaxRetryAfter, 60*time.Second),
		log:        cfg.Logger,
		now:        time.Now,
		sleep:      sleepCtx,
		jitter:     randInt63n,
	}
	switch {
	case cfg.MaxRetries == 0:
		c.maxRetries = 4
	case cfg.MaxRetries < 0:
		c.maxRetries = 0
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.sec.add(c.token)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"RefreshMargin", cfg.RefreshMargin}, {"AttemptTimeout", cfg.AttemptTimeout}, {"MaxBackoff", cfg.MaxBackoff}, {"MaxRetryAfter", cfg.MaxRetryAfter}} {
		if d.v < 0 {
			return nil, fmt.Errorf("qrng: ClientConfig.%s is negative (%s)", d.name, d.v)
		}
	}
	base := cmp(cfg.BaseURL, cmp(os.Getenv(envBaseURL), DefaultBaseURL))
	u, err := checkBaseURL(base)
	if err != nil {
		if cfg.BaseURL == "" {
			// Say where the address came from: the program never set it.
			return nil, fmt.Errorf("qrng: $%s: %s", envBaseURL, strings.TrimPrefix(err.Error(), "qrng: "))
		}
		return nil, err
	}
	c.base = strings.TrimRight(u.String(), "/")
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	} else {
		c.ownTransport = true
	}
	userCheck := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("%w: more than 5", errRedirect)
		}
		if err := checkScheme(req.URL); err != nil {
			return fmt.Errorf("%w: %w", errRedirect, err)
		}
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("Authorization")
		}
		if userCheck != nil {
			return userCheck(req, via)
		}
		return nil
	}
	c.hc = hc
	return c, nil
}

// errRedirect marks a redirect the client refused to follow.
var errRedirect = errors.New("qrng: refused redirect")

func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func checkBaseURL(s string) (*url.URL, error) {
	// The messages name the scheme and host only: a path, a query or user
	// information may hold a secret.
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL itself
		}
		return nil, fmt.Errorf("qrng: base URL does not parse: %w", err)
	}
	if u.Host == "" {
		return nil, errors.New("qrng: base URL has no host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("qrng: base URL %s://%s... must not carry a query, fragment or user info", u.Scheme, u.Host)
	}
	return u, checkScheme(u)
}

// checkScheme allows https anywhere and plain http only to loopback hosts.
func checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("qrng: plain http to non-loopback host %q (use https)", u.Hostname())
	default:
		return fmt.Errorf("qrng: unsupported URL scheme %q (use https)", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RandomNumbers fetches n random integers of bits bits each (each in
// [0, 2^bits)). n must be in 1..MaxSamples and bits in 1..64; bad arguments
// are reported before any request is sent.
func (c *Client) RandomNumbers(ctx context.Context, n, bits int) ([]uint64, error) {
	out := make([]uint64, 0, max(0, min(n, MaxSamples)))
	reset := attemptHooks{before: func() error { out = out[:0]; return nil }}
	err := c.fetch(ctx, n, bits, reset, func(vs []uint64) { out = append(out, vs...) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func checkRequest(n, bits int) error {
	if n < 1 || n > MaxSamples {
		return fmt.Errorf("qrng: sample count %d outside 1..%d", n, MaxSamples)
	}
	if bits < 1 || bits > 64 {
		return fmt.Errorf("qrng: bit width %d outside 1..64", bits)
	}
	return nil
}

// fetch is RandomNumbers without the slice: hooks run around every
// attempt (to reserve and refund quota, and reset the consumer); sink
// receives the values of the attempt in progress, in slices of up to
// decode.BatchLen that it must not keep.
func (c *Client) fetch(ctx context.Context, n, bits int, hooks attemptHooks, sink func([]uint64)) error {
	if err := checkRequest(n, bits); err != nil {
		return err
	}
	body := fmt.Appendf(nil, `{"distribution":"uniform_discrete","output_type":"decimal","n_samples":%d,"n_bits":%d}`, n, bits)
	return c.call(ctx, pathRandomNumbers, body, true, func(resp *http.Response) error {
		err := decode.DecodeTo(resp.Body, n, bits, decode.MaxBytes(n), sink)
		var de *decode.Error
		if errors.As(err, &de) {
			return &invalidResponse{err: de}
		}
		return err
	}, hooks)
}

// addAll returns a sink for fetch that packs each value with p.
func addAll(p *bitpack.Packer) func([]uint64) {
	return func(vs []uint64) {
		for _, v := range vs {
			p.Add(v)
		}
	}
}

// invalidResponse is a 200 answer that failed to decode.
type invalidResponse struct{ err *decode.Error }

func (e *invalidResponse) Error() string {
	return fmt.Sprintf("%s: %s", ErrInvalidResponse, e.err)
}
func (e *invalidResponse) Is(target error) bool { return target == ErrInvalidResponse }

// Usage reports how many bits were consumed between the UTC calendar days
// of from and to, both included.
func (c *Client) Usage(ctx context.Context, from, to time.Time) (int64, error) {
	f, t := from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)
	if t < f {
		return 0, fmt.Errorf("qrng: usage period ends (%s) before it starts (%s)", t, f)
	}
	body, _ := json.Marshal(map[string]string{"start_date": f, "end_date": t})
	var bits int64
	err := c.call(ctx, pathUsage, body, true, func(resp *http.Response) error {
		var v struct {
			NBits *json.Number `json:"n_bits"`
		}
		if err := readJSON(resp.Body, &v); err != nil {
			return err
		}
		if v.NBits == nil {
			return fmt.Errorf("%w: usage answer has no n_bits", ErrInvalidResponse)
		}
		n, err := strconv.ParseInt(v.NBits.String(), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: usage n_bits is not a count of bits", ErrInvalidResponse)
		}
		bits = n
		return nil
	}, attemptHooks{})
	return bits, err
}

// readJSON decodes a small JSON answer, capped at maxErrorBody bytes.
func readJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxErrorBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxErrorBody {
		return fmt.Errorf("%w: answer larger than %d bytes", ErrInvalidResponse, maxErrorBody)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: answer is not the JSON expected%s", ErrInvalidResponse, jsonErrorPlace(err))
	}
	return nil
}

// jsonErrorPlace says where a JSON answer went wrong without quoting it:
// encoding/json's messages quote the server's text, which may hold a token.
func jsonErrorPlace(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf(" (syntax error at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf(" (field %q has the wrong type)", te.Field)
	case errors.As(err, &te):
		return " (wrong type)"
	}
	return " (malformed value)"
}

// attempt sends one request and hands a 2xx answer to handle. answered
// reports whether the server sent a 200 status line; inDoubt, whether the
// request was written whole and no status line came back (a timeout, a
// cancel or a broken connection after it was sent): the server may have
// served it all the same.
func (c *Client) attempt(ctx context.Context, path string, body []byte, accessToken string, handle func(*http.Response) error) (answered, inDoubt bool, err error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	actx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, trace), c.attemptTTL)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "qrng-go/"+Version+" (+https://github.com/qrng-go/qrng)")
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	c.requests.Add(1)
	resp, err := c.hc.Do(req)
	inDoubt = err != nil && wrote.Load()
	if err == nil {
		defer func() {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
			resp.Body.Close()
		}()
		answered = resp.StatusCode == http.StatusOK // the only answer that serves numbers
		if err = responseError(resp, path, c.now(), c.sec.redact); err == nil {
			err = handle(resp)
		}
	}
	if err != nil {
		c.failed.Add(1)
		if actx.Err() != nil && ctx.Err() == nil {
			return answered, inDoubt, c.classify(fmt.Errorf("attempt timed out after %s", c.attemptTTL))
		}
		return answered, inDoubt, c.classify(err)
	}
	return answered, false, nil
}

// transportError is a failure below HTTP (connection, TLS, timeout), with
// token text removed from its message.
type transportError struct {
	err       error
	permanent bool
	msg       string // "qrng: transport: " and err's text, redacted
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// classify wraps low-level errors; API and decoding errors pass through.
func (c *Client) classify(err error) error {
	var ae *APIError
	if errors.As(err, &ae) || errors.Is(err, ErrInvalidResponse) || isContextErr(err) {
		return err
	}
	return &transportError{err: err, permanent: isPermanentTransport(err),
		msg: c.sec.redact("qrng: transport: " + err.Error())}
}

var sleepCtx = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stats is a snapshot of the request counters.
func (c *Client) stats() (requests, failed, retried int64) {
	return c.requests.Load(), c.failed.Load(), c.retried.Load()
}

// closeIdle closes idle connections of a transport the Client made itself.
func (c *Client) closeIdle() {
	if c.ownTransport {
		c.hc.CloseIdleConnections()
	}
}
