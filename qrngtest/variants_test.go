package qrngtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenAnswer exchanges s's API token and returns the decoded answer.
func tokenAnswer(t *testing.T, s *Server) (access string, expiresIn int64, expiresAt time.Time) {
	t.Helper()
	code, _, body := post(t, s.URL+PathAccessToken, "", `{"refresh_token":"`+s.Token+`"}`)
	require.Equal(t, 200, code, body)
	var v struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		ExpiresAt   string `json:"expires_at_rfc3339"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	at, err := time.Parse(time.RFC3339, v.ExpiresAt)
	require.NoError(t, err)
	return v.AccessToken, v.ExpiresIn, at
}

func TestExpiresInRelative(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	for _, relative := range []bool{false, true} {
		s := NewServer(Options{Now: clk.Now, AccessTokenTTL: 90 * time.Minute, ExpiresInRelative: relative})
		_, in, at := tokenAnswer(t, s)
		s.Close()
		assert.Equal(t, now.Add(90*time.Minute), at, "expires_at_rfc3339 is absolute either way")
		if relative {
			assert.Equal(t, int64(90*60), in, "seconds from now")
		} else {
			assert.Equal(t, at.Unix(), in, "an absolute Unix time by default")
		}
	}
}

func TestQuotaStatus(t *testing.T) {
	for _, tc := range []struct{ opt, want int }{{0, 429}, {403, 403}, {402, 402}} {
		s := NewServer(Options{QuotaBits: 100, QuotaStatus: tc.opt})
		tok := accessToken(t, s)
		code, _, _ := post(t, s.URL+PathRandomNumbers, tok, quickstart) // 80 of 100 bits
		assert.Equal(t, 200, code)
		code, hdr, body := post(t, s.URL+PathRandomNumbers, tok, quickstart)
		s.Close()
		assert.Equal(t, tc.want, code, "QuotaStatus %d", tc.opt)
		assert.Contains(t, body, "monthly quota exceeded")
		assert.NotEmpty(t, hdr.Get("Retry-After"))
	}
	assert.Panics(t, func() { New(Options{QuotaStatus: 200}) })
	assert.Panics(t, func() { New(Options{QuotaStatus: 600}) })
}

func TestUsageInBytes(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	period := `{"start_date":"2026-11-27","end_date":"2026-11-27"}`
	for _, inBytes := range []bool{false, true} {
		s := NewServer(Options{Now: clk.Now, UsageInBytes: inBytes})
		tok := accessToken(t, s)
		for range 3 { // 3 * 5 * 16 = 240 bits, 30 bytes
			code, _, _ := post(t, s.URL+PathRandomNumbers, tok, quickstart)
			require.Equal(t, 200, code)
		}
		_, _, usage := post(t, s.URL+PathUsage, tok, period)
		bits := s.Counters().BitsServed
		s.Close()
		assert.Equal(t, int64(240), bits, "the emulator still counts bits")
		if inBytes {
			assert.JSONEq(t, `{"n_bits":30}`, usage)
		} else {
			assert.JSONEq(t, `{"n_bits":240}`, usage)
		}
	}
}

func TestWrapAnswers(t *testing.T) {
	s := NewServer(Options{Seed: 3, WrapAnswers: true})
	defer s.Close()
	tok := accessToken(t, s)
	for range 2 { // every answer, not only the first
		code, _, body := post(t, s.URL+PathRandomNumbers, tok, quickstart)
		require.Equal(t, 200, code)
		var bare []uint64
		assert.Error(t, json.Unmarshal([]byte(body), &bare), "not a bare array: %s", body)
		var wrapped struct {
			Data []uint64 `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &wrapped), body)
		assert.Len(t, wrapped.Data, 5)
	}
}
