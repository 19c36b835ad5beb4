package qrngtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func post(t *testing.T, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func accessToken(t *testing.T, s *Server) string {
	code, _, body := post(t, s.URL+PathAccessToken, "", `{"refresh_token":"`+s.Token+`"}`)
	require.Equal(t, 200, code, body)
	var v struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		ExpiresAt   string `json:"expires_at_rfc3339"`
		TokenType   string `json:"token_type"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.NotEmpty(t, v.AccessToken)
	assert.Equal(t, "bearer", v.TokenType)
	at, err := time.Parse(time.RFC3339, v.ExpiresAt)
	require.NoError(t, err)
	assert.Equal(t, at.Unix(), v.ExpiresIn, "expires_in is absolute Unix time, as QCI's guide shows")
	return v.AccessToken
}

const quickstart = `{ "distribution": "uniform_discrete", "output_type": "decimal", "n_samples": 5, "n_bits": 16 }`

func TestQuickstartCalls(t *testing.T) {
	s := NewServer(Options{Seed: 1})
	defer s.Close()
	tok := accessToken(t, s)
	code, _, body := post(t, s.URL+PathRandomNumbers, tok, quickstart)
	require.Equal(t, 200, code)
	var vals []uint64
	require.NoError(t, json.Unmarshal([]byte(body), &vals))
	assert.Len(t, vals, 5)
	for _, v := range vals {
		assert.Less(t, v, uint64(1<<16))
	}
	// The trailing slash form of the token endpoint works too.
	code, _, _ = post(t, s.URL+PathAccessToken+"/", "", `{"refresh_token":"`+s.Token+`"}`)
	assert.Equal(t, 200, code)
}

func TestSeedIsReproducible(t *testing.T) {
	get := func(seed uint64) string {
		s := NewServer(Options{Seed: seed})
		defer s.Close()
		_, _, body := post(t, s.URL+PathRandomNumbers, accessToken(t, s), quickstart)
		return body
	}
	assert.Equal(t, get(7), get(7))
	assert.NotEqual(t, get(7), get(8))
}

func TestValidation(t *testing.T) {
	s := NewServer(Options{MaxBits: 32})
	defer s.Close()
	tok := accessToken(t, s)
	for body, msg := range map[string]string{
		`{"distribution":"gaussian","output_type":"decimal","n_samples":5,"n_bits":16}`:         `unsupported distribution \"gaussian\"`,
		`{"distribution":"uniform_discrete","output_type":"binary","n_samples":5,"n_bits":16}`:  `unsupported output_type`,
		`{"distribution":"uniform_discrete","output_type":"decimal","n_bits":16}`:               `"loc":["body","n_samples"],"msg":"field required"`,
		`{"distribution":"uniform_discrete","output_type":"decimal","n_samples":0,"n_bits":16}`: `between 1 and 1000000`,
		`{"distribution":"uniform_discrete","output_type":"decimal","n_samples":5,"n_bits":33}`: `"loc":["body","n_bits"],"msg":"ensure this value is between 1 and 32"`,
		`not json`: `body is not a valid request`,
	} {
		code, _, got := post(t, s.URL+PathRandomNumbers, tok, body)
		assert.Equal(t, 422, code, body)
		assert.Contains(t, got, msg, body)
	}
	code, _, _ := post(t, s.URL+PathRandomNumbers, "", quickstart)
	assert.Equal(t, 401, code)
	code, _, _ = post(t, s.URL+PathAccessToken, "", `{"refresh_token":"wrong"}`)
	assert.Equal(t, 401, code)
	resp, err := http.Get(s.URL + PathRandomNumbers)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, Counters{TokenRequests: 2, RandomRequests: 7}, s.Counters(), "the GET is refused before it counts")
}

func TestAccessTokensExpire(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	s := NewServer(Options{Now: clk.Now, AccessTokenTTL: time.Minute})
	defer s.Close()
	tok := accessToken(t, s)
	code, _, _ := post(t, s.URL+PathRandomNumbers, tok, quickstart)
	assert.Equal(t, 200, code)
	clk.Add(time.Minute)
	code, _, body := post(t, s.URL+PathRandomNumbers, tok, quickstart)
	assert.Equal(t, 401, code)
	assert.Contains(t, body, "invalid or expired access token")
}

func TestQuotaAndUsage(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)}
	s := NewServer(Options{Now: clk.Now, QuotaBits: 100, AccessTokenTTL: 48 * time.Hour})
	defer s.Close()
	tok := accessToken(t, s)
	code, _, _ := post(t, s.URL+PathRandomNumbers, tok, quickstart) // 80 bits
	require.Equal(t, 200, code)
	code, hdr, body := post(t, s.URL+PathRandomNumbers, tok, quickstart)
	assert.Equal(t, 429, code)
	assert.Contains(t, body, "monthly quota exceeded")
	assert.Equal(t, "3601", hdr.Get("Retry-After"), "seconds to the next UTC month, rounded up")

	_, _, usage := post(t, s.URL+PathUsage, tok, `{"start_date":"2026-11-30","end_date":"2026-11-30"}`)
	assert.JSONEq(t, `{"n_bits":80}`, usage)
	clk.Add(2 * time.Hour) // December: a new month, a new quota
	code, _, _ = post(t, s.URL+PathRandomNumbers, tok, quickstart)
	assert.Equal(t, 200, code)
	_, _, usage = post(t, s.URL+PathUsage, tok, `{"start_date":"2026-11-01","end_date":"2026-12-31"}`)
	assert.JSONEq(t, `{"n_bits":160}`, usage)
	_, _, usage = post(t, s.URL+PathUsage, tok, `{"start_date":"2026-12-01","end_date":"2026-12-01"}`)
	assert.JSONEq(t, `{"n_bits":80}`, usage)
	code, _, body = post(t, s.URL+PathUsage, tok, `{"start_date":"yesterday","end_date":"2026-12-01"}`)
	assert.Equal(t, 422, code)
	assert.Contains(t, body, "start_date")
}

func TestFaultsApplyInOrderAndCount(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	tok := accessToken(t, s)
	s.Inject(Fault{Status: 503, Body: "down", RetryAfter: "2"}, Fault{WrongCount: 2}, Fault{Wrap: true})
	code, hdr, body := post(t, s.URL+PathRandomNumbers, tok, quickstart)
	assert.Equal(t, 503, code)
	assert.Equal(t, "2", hdr.Get("Retry-After"))
	assert.Equal(t, "down", body)
	_, _, body = post(t, s.URL+PathRandomNumbers, tok, quickstart)
	var vals []uint64
	require.NoError(t, json.Unmarshal([]byte(body), &vals))
	assert.Len(t, vals, 7)
	_, _, body = post(t, s.URL+PathRandomNumbers, tok, quickstart)
	var wrapped struct{ Data []uint64 }
	require.NoError(t, json.Unmarshal([]byte(body), &wrapped))
	assert.Len(t, wrapped.Data, 5)
	_, _, body = post(t, s.URL+PathRandomNumbers, tok, quickstart)
	require.NoError(t, json.Unmarshal([]byte(body), &vals), "faults used up")
}

func TestNewPanicsOnInvalidOptions(t *testing.T) {
	assert.Panics(t, func() { New(Options{MaxBits: 65}) })
	assert.Panics(t, func() { New(Options{AccessTokenTTL: -time.Second}) })
}
