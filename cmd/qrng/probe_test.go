package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeIDs are the probe's lines, in order.
var probeIDs = []string{"token", "expires_in", "wrong_token", "n_bits_accepted", "n_bits_refused",
	"n_samples_refused", "answer_shape", "error_bodies", "usage", "quota", "latency"}

// runProbeJSON runs `qrng probe -json` with env and decodes its report.
func runProbeJSON(t *testing.T, env map[string]string, args ...string) (result, probeReport) {
	t.Helper()
	r := runCmd(t, env, append([]string{"probe", "-json"}, args...)...)
	var rep probeReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	var ids []string
	for _, l := range rep.Lines {
		ids = append(ids, l.ID)
	}
	require.Equal(t, probeIDs, ids, "a full table, in order")
	return r, rep
}

func line(rep probeReport, id string) *probeLine {
	for _, l := range rep.Lines {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// verdicts maps each line to its verdict.
func verdicts(rep probeReport) map[string]string {
	m := map[string]string{}
	for _, l := range rep.Lines {
		m[l.ID] = l.Verdict
	}
	return m
}

// expect is every line holding, except the given ones.
func expect(except map[string]string) map[string]string {
	m := map[string]string{}
	for _, id := range probeIDs {
		m[id] = verdictHolds
	}
	for id, v := range except {
		m[id] = v
	}
	return m
}

func envFor(token, url string) map[string]string {
	return map[string]string{"QCI_TOKEN": token, "QCI_API_URL": url}
}

// oneErrorLine checks the command's stderr ends in one "qrng: " line.
// oneErrorLine returns the error line of stderr: the last line, or the
// one before a usage error's "run 'qrng help ...'" hint.
func oneErrorLine(t *testing.T, stderr string) string {
	t.Helper()
	ls := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := ls[len(ls)-1]
	if strings.HasPrefix(last, "run 'qrng help") && len(ls) > 1 {
		last = ls[len(ls)-2]
	}
	assert.True(t, strings.HasPrefix(last, "qrng: "), "%q", last)
	return last
}

func TestProbeEmulatorEveryLineHolds(t *testing.T) {
	// A token in the environment must not send -emulator to the service.
	var hits int
	var mu sync.Mutex
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Error(w, "not here", http.StatusTeapot)
	}))
	defer live.Close()
	env := envFor("a-live-token", live.URL)

	r := runCmd(t, env, "probe", "-emulator")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "probing the built-in emulator, not the live service")
	assert.Contains(t, r.stdout, "(the built-in emulator, NOT the live service)")
	rows := regexp.MustCompile(`(?m)^(\d+) .*  (holds|differs|could not tell)  `).FindAllStringSubmatch(r.stdout, -1)
	require.Len(t, rows, len(probeIDs), r.stdout)
	for i, row := range rows {
		assert.Equal(t, strconv.Itoa(i+1), row[1], row[0])
		assert.Equal(t, "holds", row[2], row[0])
	}
	assert.Contains(t, r.stdout, "11 lines: 11 hold, 0 differ, 0 could not tell")

	r, rep := runProbeJSON(t, env, "-emulator")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, expect(nil), verdicts(rep))
	assert.True(t, rep.Emulator)
	assert.Equal(t, probeSpendBefore(64), rep.BitsSpent, "the quota request was refused, the rest served")
	mu.Lock()
	assert.Zero(t, hits, "the service named in the environment was not called")
	mu.Unlock()
}

func TestProbeSpendsWithinBudget(t *testing.T) {
	assert.LessOrEqual(t, probeMaxSpend(), int64(probeBudget))
	// A service serving every request, even those it should refuse, is
	// charged no more than probeMaxSpend.
	var charged atomic.Int64
	hs, em := intercepted(t, qrngtest.Options{QuotaBits: -1}, func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		if r.URL.Path != qrngtest.PathRandomNumbers {
			return false
		}
		n, _ := body["n_samples"].(float64)
		bits, _ := body["n_bits"].(float64)
		charged.Add(int64(n * bits))
		if bits < 1 || bits > 64 || n > 1_000_000 || r.Header.Get("Authorization") == "Bearer "+probeFakeToken {
			w.Write([]byte("[]")) // served although it should not be
			return true
		}
		return false
	})
	r, rep := runProbeJSON(t, envFor(em.Token(), hs.URL))
	assert.Equal(t, 1, r.code, "a lenient service differs")
	assert.Equal(t, probeMaxSpend(), charged.Load(), "what every request asked for")
	assert.Equal(t, verdictDiffers, line(rep, "wrong_token").Verdict)
	assert.Equal(t, verdictDiffers, line(rep, "n_bits_refused").Verdict)
}

func TestProbeVariantsDifferOnTheirLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    qrngtest.Options
		id      string // the line that differs; "" for none
		setting string // in that line's setting
		came    string // in that line's came_back
	}{
		{"as assumed", qrngtest.Options{}, "", "", ""},
		{"relative expires_in", qrngtest.Options{ExpiresInRelative: true}, "expires_in",
			"the library reads expires_in below 10^9 as seconds", "3600: seconds from now (1h0m0s), as expires_at_rfc3339 says"},
		{"n_bits up to 16", qrngtest.Options{MaxBits: 16}, "n_bits_accepted",
			"Config.Bits: 16 (the widest accepted; 32, 64 refused)", "1:200 8:200 16:200 32:422 64:422"},
		{"quota answered 403", qrngtest.Options{QuotaStatus: 403}, "quota",
			`the library also reads 402 and 403 mentioning "quota"`, "403 monthly quota exceeded"},
		{"usage in bytes", qrngtest.Options{UsageInBytes: true}, "usage",
			"leave Config.SyncUsage off: the meter's count differs from usage (it counts bytes)", "(+512): bytes, not bits"},
		{"wrapped answers", qrngtest.Options{WrapAnswers: true}, "answer_shape",
			`the library also reads {"data": [...]}`, `{"data": [...]} (5 of 5)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxBits := 64
			if tc.opts.MaxBits != 0 {
				maxBits = tc.opts.MaxBits
			}
			tc.opts.QuotaBits = probeSpendBefore(maxBits) // the quota runs out at the probe's last request
			srv := qrngtest.NewServer(tc.opts)
			defer srv.Close()
			r, rep := runProbeJSON(t, envFor(srv.Token, srv.URL))
			assert.Equal(t, srv.Counters().BitsServed, rep.BitsSpent, "the probe counts what it spent")
			if tc.id == "" {
				assert.Equal(t, 0, r.code, r.stderr)
				assert.Equal(t, expect(nil), verdicts(rep))
				return
			}
			assert.Equal(t, 1, r.code)
			assert.Equal(t, expect(map[string]string{tc.id: verdictDiffers}), verdicts(rep), "differs on exactly that line")
			l := line(rep, tc.id)
			assert.Contains(t, l.Setting, tc.setting)
			assert.Contains(t, l.CameBack, tc.came)
			msg := oneErrorLine(t, r.stderr)
			assert.Contains(t, msg, "qrng: probe: 1 of 11 assumptions differ ("+tc.id+")")
		})
	}
}

func TestProbeUnspentQuotaCannotBeSeen(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{}) // 10^9 bits a month, as the live service
	defer srv.Close()
	r, rep := runProbeJSON(t, envFor(srv.Token, srv.URL))
	assert.Equal(t, 0, r.code, "could not tell, without a failed request, is not an error: %s", r.stderr)
	assert.Equal(t, expect(map[string]string{"quota": verdictUnknown}), verdicts(rep))
	assert.Contains(t, line(rep, "quota").CameBack, "200: the quota is not spent (4580 bits used this month)")
	assert.Empty(t, line(rep, "quota").Error)
	assert.Equal(t, probeSpendBefore(64)+probeSmallBits, rep.BitsSpent)
}

// intercepted serves opts' emulator behind f, which may answer a request
// itself (returning true); f gets the request's JSON body decoded, and may
// read r.Body too.
func intercepted(t *testing.T, opts qrngtest.Options, f func(w http.ResponseWriter, r *http.Request, body map[string]any) bool) (*httptest.Server, *qrngtest.Emulator) {
	t.Helper()
	em := qrngtest.New(opts)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if f(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		em.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { em.Shutdown(); hs.Close() })
	return hs, em
}

func TestProbeServiceVariantsDifferOnTheirLine(t *testing.T) {
	var usageCalls atomic.Int64
	var emulator *qrngtest.Emulator // the one behind the interceptor
	isBits := func(body map[string]any, bits float64) bool { return body["n_bits"] == bits }
	for _, tc := range []struct {
		name    string
		f       func(w http.ResponseWriter, r *http.Request, body map[string]any) bool
		id      string
		setting string
	}{
		{"wrong token answered 403", func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			if r.Header.Get("Authorization") != "Bearer "+probeFakeToken {
				return false
			}
			http.Error(w, `{"detail": "forbidden"}`, http.StatusForbidden)
			return true
		}, "wrong_token", "ClientConfig.RefreshMargin: 10m"},
		{"n_samples refused with 400 and a string", func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			if body["n_samples"] != float64(1_000_001) {
				return false
			}
			http.Error(w, `{"detail": "too many samples"}`, http.StatusBadRequest)
			return true
		}, "n_samples_refused", "the library asks for at most 1,000,000"},
		{"an error body that is not JSON", func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			if !isBits(body, 65) {
				return false
			}
			http.Error(w, "n_bits too large", http.StatusUnprocessableEntity)
			return true
		}, "error_bodies", "the library shows any other error body as text"},
		{"usage counts values", func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			if r.URL.Path != qrngtest.PathUsage {
				return false
			}
			if usageCalls.Add(1) == 1 {
				w.Write([]byte(`{"n_bits": 1000}`))
			} else {
				w.Write([]byte(`{"n_bits": 1256}`))
			}
			return true
		}, "usage", "(it counts values)"},
		{"token answer without expires_at_rfc3339", func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			if r.URL.Path != qrngtest.PathAccessToken {
				return false
			}
			rec := httptest.NewRecorder()
			emulator.ServeHTTP(rec, r)
			var answer map[string]any
			json.Unmarshal(rec.Body.Bytes(), &answer)
			delete(answer, "expires_at_rfc3339")
			json.NewEncoder(w).Encode(answer)
			return true
		}, "token", "none needed: without expires_at_rfc3339 the library reads expires_in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			usageCalls.Store(0)
			hs, em := intercepted(t, qrngtest.Options{QuotaBits: probeSpendBefore(64)}, tc.f)
			emulator = em
			r, rep := runProbeJSON(t, envFor(em.Token(), hs.URL))
			assert.Equal(t, 1, r.code)
			assert.Equal(t, expect(map[string]string{tc.id: verdictDiffers}), verdicts(rep))
			assert.Contains(t, line(rep, tc.id).Setting, tc.setting)
			oneErrorLine(t, r.stderr)
		})
	}
}

func TestProbeRedactsTokensAServerEchoes(t *testing.T) {
	const api = "api-token-the-server-echoes-0123456789"
	var mu sync.Mutex
	var seen []string // access tokens the probe sent
	hs, _ := intercepted(t, qrngtest.Options{Token: api, QuotaBits: -1}, func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || tok == probeFakeToken {
			return false
		}
		mu.Lock()
		seen = append(seen, tok)
		mu.Unlock()
		switch {
		case body["n_bits"] == float64(65): // shown in the JSON's answers
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]any{"detail": []map[string]any{{
				"loc": []string{"body", "n_bits"},
				"msg": "refused for refresh token " + api + " and " + auth,
			}}})
		case body["n_samples"] == float64(1) && body["n_bits"] == float64(16): // the quota request: shown in the table
			http.Error(w, `{"detail": "quota: `+api+` `+auth+`"}`, http.StatusTooManyRequests)
		default:
			return false
		}
		return true
	})
	for _, args := range [][]string{{"probe"}, {"probe", "-json"}} {
		r := runCmd(t, envFor(api, hs.URL), args...)
		assert.Equal(t, 0, r.code, r.stderr)
		out := r.stdout + r.stderr
		assert.Contains(t, out, "[REDACTED]")
		assert.NotContains(t, out, api, "the API token")
		mu.Lock()
		require.NotEmpty(t, seen)
		for _, tok := range seen {
			assert.NotContains(t, out, tok, "an access token")
		}
		mu.Unlock()
	}
	_, rep := runProbeJSON(t, envFor(api, hs.URL))
	refused := line(rep, "n_bits_refused")
	require.Len(t, refused.Requests, 2)
	assert.Contains(t, refused.Requests[1].Answer, "refused for refresh token [REDACTED] and Bearer [REDACTED]")
	assert.Contains(t, line(rep, "token").Requests[0].Sent, `"refresh_token":"[REDACTED]"`)
	assert.Contains(t, line(rep, "token").Requests[0].Answer, `"access_token":"[REDACTED]"`)
	assert.Equal(t, "429 quota: [REDACTED] Bearer [REDACTED]", line(rep, "quota").CameBack)
}

func TestProbeWritesFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{{[]string{"-json"}, `"lines": [`}, {nil, "11 lines: 11 hold"}} {
		file := filepath.Join(dir, "probe.out")
		r := runCmd(t, nil, append([]string{"probe", "-emulator", "-o", file}, tc.args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "qrng: probe: 11 lines: 11 hold, 0 differ, 0 could not tell; 4580 bits spent (at most 4677); written to "+file)
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		assert.Contains(t, string(data), tc.want)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "no temporary file left behind")
		st, err := os.Stat(file)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "the report holds no secret")
		require.NoError(t, os.Remove(file)) // the next is new too
	}
	r := runCmd(t, nil, "probe", "-emulator", "-o", filepath.Join(dir, "no-such-dir", "x"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, oneErrorLine(t, r.stderr), "qrng: -o "+filepath.Join(dir, "no-such-dir", "x")+": no such folder ")
}

func TestProbeExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"no token", nil, nil, 2, "qrng: probe needs QCI_TOKEN: it checks the live service (-emulator probes the built-in emulator)"},
		{"stray argument", nil, []string{"-emulator", "now"}, 2, `qrng: unexpected argument "now"`},
		{"unknown flag", nil, []string{"-n", "5"}, 2, "flag provided but not defined: -n"},
		{"bad timeout", nil, []string{"-emulator", "-timeout", "0s"}, 2, "qrng: -timeout 0s: want a positive duration"},
		{"plain http remote", envFor("t", "http://example.com"), nil, 2, `plain http to non-loopback host "example.com"`},
		{"help", nil, []string{"-h"}, 0, "-json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.env, append([]string{"probe"}, tc.args...)...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr+r.stdout, tc.msg) // help goes to stdout
			if tc.code != 0 {
				oneErrorLine(t, r.stderr)
			}
		})
	}
}

func TestProbeWrongAPITokenCannotRun(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	r, rep := runProbeJSON(t, envFor("not-the-api-token", srv.URL))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, oneErrorLine(t, r.stderr), "qrng: probe: could not check token, expires_in, wrong_token")
	assert.Contains(t, r.stderr, "the token exchange failed: 401 invalid refresh token")
	assert.NotContains(t, r.stdout+r.stderr, "not-the-api-token")
	assert.Equal(t, expect(map[string]string{"token": verdictUnknown, "expires_in": verdictUnknown,
		"wrong_token": verdictUnknown, "n_bits_accepted": verdictUnknown, "n_bits_refused": verdictUnknown,
		"n_samples_refused": verdictUnknown, "answer_shape": verdictUnknown, "error_bodies": verdictUnknown,
		"usage": verdictUnknown, "quota": verdictUnknown}), verdicts(rep), "only the latency line: its one answer came")
	assert.Zero(t, srv.Counters().RandomRequests, "nothing sent without an access token")
}

func TestProbeRefusesRedirectToPlainHTTP(t *testing.T) {
	hs, em := intercepted(t, qrngtest.Options{}, func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		http.Redirect(w, r, "http://example.com"+r.URL.Path, http.StatusTemporaryRedirect)
		return true
	})
	r, rep := runProbeJSON(t, envFor(em.Token(), hs.URL))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, line(rep, "token").Error, `refused redirect: plain http to non-loopback host "example.com"`)
}

func TestProbeTimeoutDiffersOnLatency(t *testing.T) {
	hs, em := intercepted(t, qrngtest.Options{QuotaBits: probeSpendBefore(64)}, func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		if r.URL.Path != qrngtest.PathUsage {
			return false
		}
		<-r.Context().Done() // never answers; ends when the probe gives up
		return true
	})
	r, rep := runProbeJSON(t, envFor(em.Token(), hs.URL), "-timeout", "1s")
	assert.Equal(t, 1, r.code)
	lat := line(rep, "latency")
	assert.Equal(t, verdictDiffers, lat.Verdict)
	assert.Equal(t, "ClientConfig.AttemptTimeout: more than 1s", lat.Setting)
	assert.Equal(t, verdictUnknown, line(rep, "usage").Verdict)
	assert.Equal(t, "no answer within 1s", line(rep, "usage").Error)
}

func TestProbeInterruptedStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"probe", "-emulator", "-json"}, &out, &errb, func(string) string { return "" })
	assert.Equal(t, 130, code, "interrupted, like every command")
	var rep probeReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.Len(t, rep.Lines, len(probeIDs))
	for _, l := range rep.Lines {
		assert.Equal(t, verdictUnknown, l.Verdict, l.ID)
		assert.Equal(t, "interrupted", l.Error, l.ID)
	}
	assert.Contains(t, oneErrorLine(t, errb.String()), "qrng: interrupted")
}
