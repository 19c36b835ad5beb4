package qrng

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRandomNumbersMatchesSeededServer(t *testing.T) {
	for _, bits := range []int{1, 8, 16, 33, 64} {
		srv := newServer(t, qrngtest.Options{Seed: 42})
		c, _ := newTestClient(t, srv, ClientConfig{})
		got, err := c.RandomNumbers(context.Background(), 1000, bits)
		require.NoError(t, err)

		want := seededValues(42, 1000, bits)
		assert.Equal(t, want, got, "bits %d", bits)
		for _, v := range got {
			require.Less(t, v>>1, uint64(1)<<(bits-1), "value below 2^bits")
		}
	}
}

// seededValues reproduces what a qrngtest server seeded with seed serves
// first, by asking a fresh recording emulator.
func seededValues(seed uint64, n, bits int) []uint64 {
	srv := qrngtest.NewServer(qrngtest.Options{Seed: seed, Record: true})
	defer srv.Close()
	c, err := NewClient(ClientConfig{BaseURL: srv.URL, Token: srv.Token})
	if err != nil {
		panic(err)
	}
	if _, err := c.RandomNumbers(context.Background(), n, bits); err != nil {
		panic(err)
	}
	return srv.Batches()[0]
}

func TestBadArgumentsSendNothing(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{})
	for _, a := range []struct{ n, bits int }{{0, 16}, {-1, 16}, {MaxSamples + 1, 16}, {1, 0}, {1, 65}, {1, -3}} {
		_, err := c.RandomNumbers(context.Background(), a.n, a.bits)
		assert.Error(t, err, "n=%d bits=%d", a.n, a.bits)
	}
	_, err := c.RandomNumbers(context.Background(), 0, 16)
	assert.EqualError(t, err, "qrng: sample count 0 outside 1..1000000")
	_, err = c.RandomNumbers(context.Background(), 5, 65)
	assert.EqualError(t, err, "qrng: bit width 65 outside 1..64")
	assert.Zero(t, srv.Counters(), "no request of any kind")
}

// The error table of API.md, plus its "tolerate" list.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		name     string
		fault    qrngtest.Fault
		sentinel error
		retried  bool   // a later attempt succeeds
		message  string // in err.Error()
		status   int
	}{
		{"422 FastAPI list", qrngtest.Fault{Status: 422, Body: `{"detail":[{"loc":["body","n_bits"],"msg":"ensure this value is less than or equal to 32","type":"value_error"}]}`},
			ErrBadRequest, false, "422 Unprocessable Entity: body.n_bits: ensure this value is less than or equal to 32", 422},
		{"400 string detail", qrngtest.Fault{Status: 400, Body: `{"detail":"bad request body"}`}, ErrBadRequest, false, "400 Bad Request: bad request body", 400},
		{"404 not JSON", qrngtest.Fault{Status: 404, Body: "<html>\n<h1>Not here</h1></html>"}, ErrBadRequest, false, "404 Not Found: <html> <h1>Not here</h1></html>", 404},
		{"429 quota", qrngtest.Fault{Status: 429, Body: `{"detail":"monthly quota exceeded"}`, RetryAfter: "86400"}, ErrQuotaExceeded, false, "monthly quota exceeded (retry after 24h0m0s)", 429},
		{"402 quota tolerated", qrngtest.Fault{Status: 402, Body: `{"detail":"Quota used up"}`}, ErrQuotaExceeded, false, "402 Payment Required: Quota used up", 402},
		{"403 quota tolerated", qrngtest.Fault{Status: 403, Body: "quota exhausted"}, ErrQuotaExceeded, false, "quota exhausted", 403},
		{"403 other", qrngtest.Fault{Status: 403, Body: `{"detail":"forbidden"}`}, ErrBadRequest, false, "403 Forbidden: forbidden", 403},
		{"429 rate limit", qrngtest.Fault{Status: 429, Body: `{"detail":"slow down"}`, RetryAfter: "2"}, ErrRateLimited, true, "", 0},
		{"500", qrngtest.Fault{Status: 500, Body: "oops"}, ErrServer, true, "", 0},
		{"502", qrngtest.Fault{Status: 502}, ErrServer, true, "", 0},
		{"503", qrngtest.Fault{Status: 503, Body: `{"detail":"maintenance"}`}, ErrServer, true, "", 0},
		{"504", qrngtest.Fault{Status: 504}, ErrServer, true, "", 0},
		{"reset connection", qrngtest.Fault{Reset: true}, nil, true, "", 0},
		{"truncated body", qrngtest.Fault{Truncate: true}, nil, true, "", 0},
		{"wrong count", qrngtest.Fault{WrongCount: -1}, ErrInvalidResponse, false, "got 99 values, want 100", 0},
		{"too many values", qrngtest.Fault{WrongCount: 1}, ErrInvalidResponse, false, "more than the 100 values asked for", 0},
		{"out of range", qrngtest.Fault{OutOfRange: true}, ErrInvalidResponse, false, "65536 is out of range (at most 65535)", 0},
		{"malformed", qrngtest.Fault{Malformed: true}, ErrInvalidResponse, false, `unexpected '"', want a number`, 0},
		{"data wrapper tolerated", qrngtest.Fault{Wrap: true}, nil, false, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, qrngtest.Options{})
			c, sl := newTestClient(t, srv, ClientConfig{})
			srv.Inject(tc.fault)
			vals, err := c.RandomNumbers(context.Background(), 100, 16)
			attempts := srv.Counters().RandomRequests
			switch {
			case tc.retried:
				require.NoError(t, err)
				assert.Len(t, vals, 100)
				assert.Equal(t, 2, attempts, "one retry")
				assert.Len(t, sl.get(), 1)
			case tc.sentinel == nil:
				require.NoError(t, err)
				assert.Len(t, vals, 100)
				assert.Equal(t, 1, attempts)
			default:
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.sentinel)
				assert.Contains(t, err.Error(), tc.message)
				assert.True(t, strings.HasPrefix(err.Error(), "qrng: "), err.Error())
				assert.Equal(t, 1, attempts, "not retried")
				assert.Empty(t, sl.get())
				if tc.status != 0 {
					var ae *APIError
					require.ErrorAs(t, err, &ae)
					assert.Equal(t, tc.status, ae.StatusCode)
				}
			}
		})
	}
}

func TestRetryAfterHonouredAndClamped(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, sl := newTestClient(t, srv, ClientConfig{MaxRetryAfter: 30 * time.Second, MaxBackoff: time.Second})
	c.jitter = func(int64) int64 { return 0 }
	now := time.Now()
	c.now = func() time.Time { return now }
	srv.Inject(
		qrngtest.Fault{Status: 429, Body: `{"detail":"rate"}`, RetryAfter: "7"},
		qrngtest.Fault{Status: 503, RetryAfter: "3600"},
		qrngtest.Fault{Status: 503, RetryAfter: now.Add(12 * time.Second).UTC().Format(http.TimeFormat)},
		qrngtest.Fault{Status: 503, RetryAfter: "99999999999999999999"}, // more than int64 holds
	)
	_, err := c.RandomNumbers(context.Background(), 10, 8)
	require.NoError(t, err)
	d := sl.get()
	require.Len(t, d, 4)
	assert.Equal(t, 7*time.Second, d[0], "seconds form")
	assert.Equal(t, 30*time.Second, d[1], "clamped to MaxRetryAfter")
	assert.InDelta(t, float64(12*time.Second), float64(d[2]), float64(time.Second), "HTTP date form")
	assert.Equal(t, 30*time.Second, d[3], "a huge value is the cap, not absent")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"":                      0,
		"0":                     0,
		"-5":                    0,
		"-99999999999999999999": 0,
		"12":                    12 * time.Second,
		" 12 ":                  12 * time.Second,
		"99999999999999999999":  year,
		"9223372036854775807":   year,
		"soon":                  0,
		now.Add(time.Minute).Format(http.TimeFormat):  time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat): 0,
	} {
		assert.Equal(t, want, parseRetryAfter(in, now), "%q", in)
	}
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, sl := newTestClient(t, srv, ClientConfig{})
	srv.Inject(qrngtest.Fault{Status: 503, RetryAfter: "50"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.RandomNumbers(ctx, 10, 8)
	assert.ErrorIs(t, err, ErrServer)
	assert.Empty(t, sl.get(), "no pause past the deadline")
	assert.Equal(t, 1, srv.Counters().RandomRequests)
}

func TestBackoffBoundsAndRetryCount(t *testing.T) {
	for _, tc := range []struct {
		maxRetries, wantAttempts int
	}{{0, 5}, {2, 3}, {-1, 1}} {
		srv := newServer(t, qrngtest.Options{})
		c, sl := newTestClient(t, srv, ClientConfig{MaxRetries: tc.maxRetries, MaxBackoff: time.Second})
		srv.Inject(qrngtest.Fault{Status: 500, Times: -1})
		_, err := c.RandomNumbers(context.Background(), 10, 8)
		assert.ErrorIs(t, err, ErrServer)
		assert.Equal(t, tc.wantAttempts, srv.Counters().RandomRequests, "MaxRetries %d", tc.maxRetries)
		_, _, retried := c.stats()
		assert.EqualValues(t, tc.wantAttempts-1, retried)
		// Largest jitter: the window doubles from 200 ms and is capped at 1 s.
		want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}
		assert.Equal(t, want[:tc.wantAttempts-1], append([]time.Duration{}, sl.get()...))
	}
	// Full jitter: the pause is drawn from [0, window].
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{})
	c.jitter = randInt63n
	for range 1000 {
		d := c.backoff(3, errors.New("x"))
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 1600*time.Millisecond)
	}
}

func TestCancelledContextNotRetried(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{})
	c.sleep = sleepCtx
	srv.Inject(qrngtest.Fault{Latency: 5 * time.Second})
	// The context ends once the request has reached the server (not after
	// a fixed time, which a loaded machine may spend on the token alone).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for srv.Counters().RandomRequests == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.RandomNumbers(ctx, 10, 8)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, srv.Counters().RandomRequests)
}

func TestAttemptTimeoutRetried(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, sl := newTestClient(t, srv, ClientConfig{AttemptTimeout: 100 * time.Millisecond})
	srv.Inject(qrngtest.Fault{Latency: 5 * time.Second})
	vals, err := c.RandomNumbers(context.Background(), 10, 8)
	require.NoError(t, err)
	assert.Len(t, vals, 10)
	assert.Len(t, sl.get(), 1)
	assert.Equal(t, 2, srv.Counters().RandomRequests)
}

func TestTokenSingleFlight(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 10 * time.Minute})
	c, _ := newTestClient(t, srv, ClientConfig{})
	c.now = clk.Now
	_, err := c.RandomNumbers(context.Background(), 1, 8)
	require.NoError(t, err)
	require.Equal(t, 1, srv.Counters().TokenRequests)

	clk.Advance(time.Hour) // the token has expired
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := c.RandomNumbers(context.Background(), 1, 8)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 2, srv.Counters().TokenRequests, "exactly one more exchange for 50 callers")
}

func TestTokenProactiveRefresh(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 10 * time.Minute})
	c, _ := newTestClient(t, srv, ClientConfig{RefreshMargin: time.Minute})
	c.now = clk.Now
	call := func() {
		_, err := c.RandomNumbers(context.Background(), 1, 8)
		require.NoError(t, err)
	}
	call()
	clk.Advance(8*time.Minute + 59*time.Second)
	call()
	assert.Equal(t, 1, srv.Counters().TokenRequests, "still outside the margin")
	clk.Advance(2 * time.Second) // 61 s before expiry passed: inside the margin
	call()
	assert.Equal(t, 2, srv.Counters().TokenRequests, "refreshed before expiry")
	assert.Equal(t, 3, srv.Counters().RandomRequests, "no 401 round trip")
}

func TestTokenExpiryRules(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	num := func(s string) *json.Number { n := json.Number(s); return &n }
	assert.Equal(t, time.Date(2023, 3, 31, 18, 39, 17, 0, time.UTC), tokenExpiry(now, "2023-03-31T18:39:17Z", num("1")).UTC(), "rfc3339 preferred")
	assert.Equal(t, time.Unix(1680287957, 0), tokenExpiry(now, "", num("1680287957")), "absolute unix time")
	assert.Equal(t, now.Add(3600*time.Second), tokenExpiry(now, "", num("3600")), "seconds from now")
	assert.Equal(t, now.Add(5*time.Minute), tokenExpiry(now, "", nil), "assumed 5 minutes")
	assert.Equal(t, now.Add(5*time.Minute), tokenExpiry(now, "garbage", num("x")), "unreadable")
}

func TestUnauthorizedRefreshesOnceThenFails(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, sl := newTestClient(t, srv, ClientConfig{})
	srv.Inject(qrngtest.Fault{Status: 401, Body: `{"detail":"expired"}`})
	_, err := c.RandomNumbers(context.Background(), 5, 8)
	require.NoError(t, err, "one 401 is mended by a new token")
	assert.Equal(t, 2, srv.Counters().TokenRequests)
	assert.Empty(t, sl.get(), "no backoff for a refresh")

	srv.Inject(qrngtest.Fault{Status: 401, Body: `{"detail":"expired"}`, Times: 2})
	_, err = c.RandomNumbers(context.Background(), 5, 8)
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.Equal(t, 3, srv.Counters().TokenRequests)
	assert.Equal(t, 4, srv.Counters().RandomRequests)
}

func TestTokenExpiresMidStream(t *testing.T) {
	// The server's clock runs ahead of the client's: tokens expire early.
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: 2 * time.Minute})
	c, _ := newTestClient(t, srv, ClientConfig{})
	for i := range 5 {
		_, err := c.RandomNumbers(context.Background(), 5, 8)
		require.NoError(t, err, "call %d", i)
		clk.Advance(3 * time.Minute)
	}
	assert.Equal(t, 5, srv.Counters().TokenRequests)
}

func TestBadAPIToken(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{Token: "wrong-token-value"})
	_, err := c.RandomNumbers(context.Background(), 5, 8)
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), "wrong-token-value")
	assert.Zero(t, srv.Counters().RandomRequests)
}

func TestNoToken(t *testing.T) {
	t.Setenv("QCI_TOKEN", "")
	srv := newServer(t, qrngtest.Options{})
	c, err := NewClient(ClientConfig{BaseURL: srv.URL})
	require.NoError(t, err)
	_, err = c.RandomNumbers(context.Background(), 5, 8)
	assert.ErrorIs(t, err, ErrNoToken)
	assert.Zero(t, srv.Counters())
}

func TestEnvConfig(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	t.Setenv("QCI_TOKEN", srv.Token)
	t.Setenv("QCI_API_URL", srv.URL)
	c, err := NewClient(ClientConfig{})
	require.NoError(t, err)
	_, err = c.RandomNumbers(context.Background(), 5, 8)
	assert.NoError(t, err)

	t.Setenv("QCI_API_URL", "")
	c, err = NewClient(ClientConfig{})
	require.NoError(t, err)
	assert.Equal(t, DefaultBaseURL, c.base)
}

func TestBaseURLChecks(t *testing.T) {
	for _, ok := range []string{"https://api.qci-prod.com", "http://127.0.0.1:8080", "http://localhost:1/", "http://[::1]:9", "https://proxy.example/qci"} {
		_, err := NewClient(ClientConfig{BaseURL: ok})
		assert.NoError(t, err, ok)
	}
	for url, msg := range map[string]string{
		"http://api.qci-prod.com":    `plain http to non-loopback host "api.qci-prod.com"`,
		"http://10.0.0.1:8080":       "plain http to non-loopback host",
		"ftp://x":                    `unsupported URL scheme "ftp"`,
		"https://":                   "has no host",
		"https://a/b?token=1":        "must not carry a query",
		"https://user:pw@host/":      "must not carry",
		"::not a url":                "missing protocol scheme",
		"https://api.qci-prod.com#x": "must not carry",
	} {
		_, err := NewClient(ClientConfig{BaseURL: url})
		if assert.Error(t, err, url) {
			assert.Contains(t, err.Error(), msg, url)
			assert.NotContains(t, err.Error(), "pw", url)
		}
	}
}

func TestRedirectDropsAuthorization(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	var sawAuth []string
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		fmt.Fprint(w, "[1, 2, 3]")
	}))
	defer other.Close()
	// "localhost" and "127.0.0.1" are different hosts to the client.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathRandomNumbers {
			http.Redirect(w, r, otherURL+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		srv.Emulator.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, err := NewClient(ClientConfig{BaseURL: front.URL, Token: srv.Token})
	require.NoError(t, err)
	vals, err := c.RandomNumbers(context.Background(), 3, 8)
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 2, 3}, vals)
	require.Len(t, sawAuth, 1)
	assert.Empty(t, sawAuth[0], "Authorization must not follow to another host")
}

func TestRedirectToPlainHTTPRefused(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathRandomNumbers {
			http.Redirect(w, r, "http://192.0.2.1/qrng", http.StatusTemporaryRedirect)
			return
		}
		srv.Emulator.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, sl := newTestClient(t, srv, ClientConfig{BaseURL: front.URL})
	_, err := c.RandomNumbers(context.Background(), 3, 8)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused redirect")
	assert.Empty(t, sl.get(), "not retried")
}

func TestTLSVerificationFailureNotRetried(t *testing.T) {
	var hits int
	var mu sync.Mutex
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()
	c, err := NewClient(ClientConfig{BaseURL: ts.URL, Token: "some-api-token"}) // default client: the test CA is not trusted
	require.NoError(t, err)
	sl := &sleepLog{}
	c.sleep = sl.sleep
	_, err = c.RandomNumbers(context.Background(), 3, 8)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.Empty(t, sl.get(), "not retried")
	_, _, retried := c.stats()
	assert.Zero(t, retried)
	assert.Zero(t, hits)
}

func TestEndlessBodyIsCapped(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{})
	srv.Inject(qrngtest.Fault{Endless: true})
	_, err := c.RandomNumbers(context.Background(), 1000, 16)
	assert.ErrorIs(t, err, ErrInvalidResponse)
	assert.Contains(t, err.Error(), "more than the 1000 values asked for")
}

func TestUsage(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now})
	c, _ := newTestClient(t, srv, ClientConfig{})
	c.now = clk.Now
	ctx := context.Background()
	_, err := c.RandomNumbers(ctx, 1000, 16)
	require.NoError(t, err)
	clk.Advance(24 * time.Hour)
	_, err = c.RandomNumbers(ctx, 10, 8)
	require.NoError(t, err)

	day1, day2 := clk.Now().Add(-24*time.Hour), clk.Now()
	for _, tc := range []struct {
		from, to time.Time
		want     int64
	}{{day1, day1, 16000}, {day2, day2, 80}, {day1, day2, 16080}, {day2.Add(24 * time.Hour), day2.Add(48 * time.Hour), 0}} {
		got, err := c.Usage(ctx, tc.from, tc.to)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
	_, err = c.Usage(ctx, day2, day1)
	assert.ErrorContains(t, err, "ends (2026-11-27) before it starts (2026-11-28)")
}

func TestServerRefusesWideValues(t *testing.T) {
	srv := newServer(t, qrngtest.Options{MaxBits: 32})
	c, _ := newTestClient(t, srv, ClientConfig{})
	_, err := c.RandomNumbers(context.Background(), 5, 48)
	assert.ErrorIs(t, err, ErrBadRequest)
	assert.EqualError(t, err, "qrng: /qrng/random_numbers: 422 Unprocessable Entity: body.n_bits: ensure this value is between 1 and 32")
}

func TestServerQuota(t *testing.T) {
	srv := newServer(t, qrngtest.Options{QuotaBits: 1000})
	c, sl := newTestClient(t, srv, ClientConfig{})
	_, err := c.RandomNumbers(context.Background(), 50, 16)
	require.NoError(t, err)
	_, err = c.RandomNumbers(context.Background(), 50, 16)
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Greater(t, ae.RetryAfter, time.Duration(0))
	assert.Empty(t, sl.get())
}

func TestTokensRedactedFromServerMessages(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	c, _ := newTestClient(t, srv, ClientConfig{})
	_, err := c.RandomNumbers(context.Background(), 5, 8)
	require.NoError(t, err)
	access, _ := c.accessToken(context.Background())
	srv.Inject(qrngtest.Fault{Status: 400, Body: fmt.Sprintf(`{"detail":"bad token %s for key %s"}`, access, srv.Token)})
	_, err = c.RandomNumbers(context.Background(), 5, 8)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), access)
	assert.NotContains(t, err.Error(), srv.Token)
	assert.Contains(t, err.Error(), "[REDACTED]")
}

func TestPackedFetch64Exact(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 7, Record: true})
	c, _ := newTestClient(t, srv, ClientConfig{})
	var p *bitpack.Packer
	err := c.fetch(context.Background(), 64, 64, attemptHooks{before: func() error { p = bitpack.New(64, nil); return nil }}, func(vs []uint64) { addAll(p)(vs) })
	require.NoError(t, err)
	assert.Equal(t, srv.Batches()[0], bitpack.Unpack(p.Bytes(), 64, 64))
}

func TestUserAgentAndHeaders(t *testing.T) {
	var mu sync.Mutex
	var ua, ct []string
	srv := newServer(t, qrngtest.Options{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ua = append(ua, r.Header.Get("User-Agent"))
		ct = append(ct, r.Header.Get("Content-Type"))
		mu.Unlock()
		srv.Emulator.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, _ := newTestClient(t, srv, ClientConfig{BaseURL: front.URL})
	_, err := c.RandomNumbers(context.Background(), 3, 8)
	require.NoError(t, err)
	require.Len(t, ua, 2)
	for i := range ua {
		assert.Equal(t, "qrng-go/"+Version+" (+https://github.com/qrng-go/qrng)", ua[i])
		assert.Equal(t, "application/json", ct[i])
	}
}

func TestRefreshMarginAtMostHalfTheLifetime(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now, AccessTokenTTL: time.Minute})
	c, _ := newTestClient(t, srv, ClientConfig{}) // default margin 60 s: the whole lifetime
	c.now = clk.Now
	call := func() {
		_, err := c.RandomNumbers(context.Background(), 1, 8)
		require.NoError(t, err)
	}
	call()
	clk.Advance(29 * time.Second)
	call()
	assert.Equal(t, 1, srv.Counters().TokenRequests, "a 60 s margin on a 60 s token would refresh on every call")
	clk.Advance(2 * time.Second)
	call()
	assert.Equal(t, 2, srv.Counters().TokenRequests, "refreshed after half the lifetime")
}

func TestHTTPClientIsCopiedNotModified(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	hc := &http.Client{Timeout: time.Minute}
	c, _ := newTestClient(t, srv, ClientConfig{HTTPClient: hc})
	_, err := c.RandomNumbers(context.Background(), 1, 8)
	require.NoError(t, err)
	assert.Nil(t, hc.CheckRedirect, "the caller's client is untouched")
	assert.NotNil(t, c.hc.CheckRedirect)
	assert.Equal(t, time.Minute, c.hc.Timeout)
}
