package qrng

// Edges found by a hostile review of the hardened library. Each test
// failed before its fix: stream order with one goroutine, a token cut at
// the error body's limit, a short access token, a quota Retry-After past
// the month's turn, a 2xx that is not 200, a shifted replay.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deepUint64 calls src.Uint64 from depth frames further down the stack, as
// an ordinary program does when it draws numbers from different functions.
//
//go:noinline
func deepUint64(src *Source, depth int) uint64 {
	var pad [256]byte
	if depth > 0 {
		v := deepUint64(src, depth-1)
		pad[depth%len(pad)] = byte(v)
		return v + uint64(pad[0]) - uint64(pad[0])
	}
	return src.Uint64()
}

// README: "with Bits: 64 and only Uint64 calls these are exactly the
// service's values, in order ... That order holds while one goroutine at a
// time uses the Source." Here one goroutine, no other caller, draws 3000
// values, some from a deeper call than others.
func TestOneGoroutineKeepsStreamOrder(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 7, Record: true})
	src := newTestSource(t, srv, Config{Bits: 64, BatchSize: 4096, Workers: 1, OnDemand: true})
	const n = 3000
	got := make([]uint64, 0, n)
	for i := range n {
		got = append(got, deepUint64(src, (i%3)*20))
	}
	striped := src.stripes.Load() != nil
	want := concat(srv.Batches())
	require.GreaterOrEqual(t, len(want), n)
	assert.False(t, striped, "one goroutine alone switched the Source to stripes")
	for i := range n {
		if got[i] != want[i] {
			t.Fatalf("value %d of one goroutine is not the service's value %d (stream order lost; striped=%v)", i, i, striped)
		}
	}
}

// README: "Every error a Client returns passes through one redaction step
// ... it runs before any message is shortened". An error body is first cut
// to 64 KiB (errors.go, responseError's io.LimitReader) and only then
// redacted, so a token that straddles the cut leaves its prefix, and
// clean() folds the padding away so the prefix lands in the message.
func TestTokenCutAtTheBodyLimitIsRedacted(t *testing.T) {
	const tok = "qci_live_4f7c2a9e81b34d6fa0c5e2b7d9183a64"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, strings.Repeat(" ", maxErrorBody-30)+tok+" is not a valid refresh_token")
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientConfig{Token: tok, BaseURL: srv.URL, MaxRetries: -1})
	require.NoError(t, err)
	_, err = c.RandomNumbers(context.Background(), 8, 16)
	require.Error(t, err)
	assertNoSecret(t, "error", err.Error(), []string{tok})
}

// README: "Tokens never appear in errors ... even when the server echoes
// them (... an access token from long ago)". An access token shorter than
// minSecret (6 bytes) is never registered as a secret (redact.go add), so
// an echo of it passes through verbatim.
func TestShortAccessTokenIsRedacted(t *testing.T) {
	const access = "Zq9x5"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathAccessToken {
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600}`, access)
			return
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, `{"detail":"token %s may not ask for this"}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientConfig{Token: "api-token-0123456789", BaseURL: srv.URL, MaxRetries: -1})
	require.NoError(t, err)
	_, err = c.RandomNumbers(context.Background(), 8, 16)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), access, "the access token is in the error")
}

// README: "Quantum data resumes when the month turns" and "never less than
// the server's last Retry-After (capped by MaxRetryAfter, 60 s)". A quota
// answer's Retry-After is honoured uncapped (up to 365 days,
// parseRetryAfter), so one lying 429 stops quantum data past the month's
// turn, for a year.
func TestQuotaRetryAfterEndsAtTheMonthTurn(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, qrngtest.Options{Now: clk.Now})
	src := newTestSource(t, srv, Config{BatchSize: 1024, Workers: 1, WaitTimeout: time.Second})
	src.now = clk.Now
	srv.Inject(qrngtest.Fault{Status: 429, Body: `{"detail":"monthly quota exceeded"}`, RetryAfter: "31536000"})
	_, err := src.Read(make([]byte, 100))
	require.NoError(t, err)
	require.True(t, src.Stats().FallbackActive)
	require.ErrorIs(t, src.Stats().LastError, ErrQuotaExceeded)
	clk.Advance(5 * 24 * time.Hour) // 2026-12-02: a new month
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		src.Read(make([]byte, 10))
		if !src.Stats().FallbackActive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("still in fallback after the month turned: %v", src.Stats().LastError)
}

// README: "A request the service did not answer with 200 ... is refunded".
// A 204 (or any 2xx) counts as answered (fetch.go attempt: answered is
// 200..299), so a server answering 204 spends the meter on every batch
// though it served nothing.
func TestNon200AnswerIsRefunded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathAccessToken {
			io.WriteString(w, `{"access_token":"access-token-abcdef","expires_in":3600}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	src := NewSource(Config{Token: "api-token-0123456789", BaseURL: srv.URL, BatchSize: 4096, Workers: 1,
		MaxRetries: -1, Fallback: FallbackNever, Logger: discardLogger()})
	t.Cleanup(func() { src.Close() })
	_, err := src.Read(make([]byte, 10))
	require.Error(t, err)
	assert.Zero(t, src.Stats().QuotaBitsUsed, "bits spent on a request the service did not answer with 200")
}

// README: "No byte of a bad answer reaches a caller: ... replayed". The
// replay check compares whole-batch SHA-256 digests (health.go remember),
// so a server that replays its previous batch shifted by one value (or
// any re-slicing of it) gets every byte served a second time.
func TestShiftedReplayIsRejected(t *testing.T) {
	var first []byte
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
		switch call {
		case 1:
			n, err := fresh(p)
			first = append([]byte(nil), p[:n]...)
			return n, err
		case 2: // the same values again, rotated by one 64-bit value
			copy(p, first[8:])
			copy(p[len(first)-8:], first[:8])
			return len(first), nil
		}
		return fresh(p)
	}}
	src := newScriptSource(t, up, Config{Bits: 64, BatchSize: 512, Workers: 1, OnDemand: true, Fallback: FallbackNever})
	out := make([]byte, 2*4096)
	_, err := io.ReadFull(src, out)
	require.NoError(t, err)
	a, b := out[:4096], out[4096:]
	assert.NotEqual(t, a[8:], b[:4096-8], "the second batch served the first batch's bytes again")
}
