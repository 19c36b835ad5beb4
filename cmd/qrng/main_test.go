package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command in this process with the environment envv. A
// run that should end at once but does not (a server started by mistake)
// is stopped after a generous time, so that the test fails rather than hangs.
func runCmd(t *testing.T, envv map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return runCmdCtx(t, ctx, envv, args...)
}

// runCmdCtx runs the command in this process with the environment envv; a
// panic fails the test instead of crashing the test binary.
func runCmdCtx(t *testing.T, ctx context.Context, envv map[string]string, args ...string) (r result) {
	t.Helper()
	var out, errb bytes.Buffer
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("qrng %s panicked: %v", strings.Join(args, " "), p)
			r = result{-1, out.String(), errb.String()}
		}
	}()
	code := run(ctx, args, &out, &errb, func(k string) string { return envv[k] })
	return result{code, out.String(), errb.String()}
}

const notQuantum = "using the built-in emulator; these numbers are NOT quantum"

func lines(s string) []string { return strings.Fields(s) }

func TestIntsWithoutTokenUsesEmulatorAndSaysSo(t *testing.T) {
	r := runCmd(t, nil, "ints", "-n", "5", "-bits", "16")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no QCI_TOKEN set: "+notQuantum)
	require.Len(t, lines(r.stdout), 5)
	for _, l := range lines(r.stdout) {
		v, err := strconv.ParseUint(l, 10, 64)
		require.NoError(t, err)
		assert.Less(t, v, uint64(1<<16))
	}
}

func TestIntsWithTokenPrintsTheServersValues(t *testing.T) {
	for _, bits := range []int{16, 12, 64, 1} {
		srv := qrngtest.NewServer(qrngtest.Options{Seed: 5, Record: true})
		r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, "ints", "-n", "7", "-bits", strconv.Itoa(bits))
		require.Equal(t, 0, r.code, r.stderr)
		assert.NotContains(t, r.stderr, notQuantum)
		batches := srv.Batches()
		srv.Close()
		require.Len(t, batches, 1, "one request for a bounded command")
		var want []string
		for _, v := range batches[0][:7] {
			want = append(want, strconv.FormatUint(v, 10))
		}
		assert.Equal(t, want, lines(r.stdout), "bits %d", bits)
	}
}

func TestIntsMaxAndFloats(t *testing.T) {
	r := runCmd(t, nil, "ints", "-n", "200", "-max", "6")
	require.Equal(t, 0, r.code, r.stderr)
	seen := map[string]bool{}
	for _, l := range lines(r.stdout) {
		v, err := strconv.Atoi(l)
		require.NoError(t, err)
		require.True(t, v >= 0 && v < 6, l)
		seen[l] = true
	}
	assert.Len(t, lines(r.stdout), 200)
	assert.Len(t, seen, 6, "all six faces in 200 rolls")

	// A bound above 2^63: every value below it, about half of them in the
	// upper half of the range (none in 100 has probability under 10^-30).
	const big = 1<<63 + 12345
	r = runCmd(t, nil, "ints", "-n", "100", "-max", strconv.FormatUint(big, 10))
	require.Equal(t, 0, r.code, r.stderr)
	high := 0
	for _, l := range lines(r.stdout) {
		v, err := strconv.ParseUint(l, 10, 64)
		require.NoError(t, err)
		require.Less(t, v, uint64(big))
		if v >= big/2 {
			high++
		}
	}
	assert.Len(t, lines(r.stdout), 100)
	assert.Positive(t, high)
	r = runCmd(t, nil, "ints", "-n", "3", "-max", "1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "0\n0\n0\n", r.stdout)

	r = runCmd(t, nil, "floats", "-n", "50", "-emulator")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "-emulator given: "+notQuantum)
	require.Len(t, lines(r.stdout), 50)
	for _, l := range lines(r.stdout) {
		f, err := strconv.ParseFloat(l, 64)
		require.NoError(t, err)
		assert.True(t, f >= 0 && f < 1, l)
	}
}

func TestBytesFormatsAndUnits(t *testing.T) {
	r := runCmd(t, nil, "bytes", "-n", "32")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, r.stdout, 32)

	r = runCmd(t, nil, "bytes", "-n", "32", "-format", "hex", "-bits", "12")
	require.Equal(t, 0, r.code, r.stderr)
	h := strings.TrimSuffix(r.stdout, "\n")
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	assert.Len(t, b, 32)

	r = runCmd(t, nil, "bytes", "-n", "1KiB", "-format", "base64")
	require.Equal(t, 0, r.code, r.stderr)
	b, err = base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout))
	require.NoError(t, err)
	assert.Len(t, b, 1024)

	file := filepath.Join(t.TempDir(), "key.bin")
	r = runCmd(t, nil, "bytes", "-n", "4KiB", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Len(t, data, 4096)
	st, _ := os.Stat(file)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "random output is private")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]struct {
		n      int64
		binary bool
	}{"0": {0, false}, "32": {32, false}, "4KiB": {4096, true}, "1MiB": {1 << 20, true}, "10MB": {10_000_000, false},
		"2GiB": {2 << 30, true}, "2g": {2 << 30, true}, "3GB": {3e9, false}, "1T": {1 << 40, true}, "1tb": {1e12, false},
		"5 KB": {5000, false}, "7B": {7, false}, "1k": {1024, true}, "1K": {1024, true}} {
		n, binary, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want.n, n, in)
		assert.Equal(t, want.binary, binary, in)
	}
	for _, bad := range []string{"", "-1", "1.5MiB", "MiB", "3Q", "99999999999TiB", "8388608T", "1e3", "1 000"} {
		_, _, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
}

func TestExitCodes(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, nil, 2, "qrng: no command"},
		{"unknown command", nil, []string{"dice"}, 2, `qrng: unknown command "dice"`},
		{"unknown flag", nil, []string{"ints", "-x"}, 2, "flag provided but not defined: -x"},
		{"bad bits", nil, []string{"ints", "-bits", "65"}, 2, "qrng: -bits 65 outside 1..64"},
		{"bad count", nil, []string{"ints", "-n", "0"}, 2, "qrng: -n 0: want at least 1"},
		{"bad size", nil, []string{"bytes", "-n", "lots"}, 2, `qrng: -n "lots": want a whole number of bytes`},
		{"bad format", nil, []string{"bytes", "-n", "1", "-format", "octal"}, 2, `qrng: -format "octal": want raw, hex or base64`},
		{"bad fallback", nil, []string{"bytes", "-n", "1", "-fallback", "sometimes"}, 2, `qrng: -fallback "sometimes": want never, quota or error`},
		{"stray argument", nil, []string{"floats", "extra"}, 2, `qrng: unexpected argument "extra"`},
		{"bad date", nil, []string{"usage", "-from", "yesterday"}, 2, `qrng: -from "yesterday": want a date as YYYY-MM-DD`},
		{"bad token", map[string]string{"QCI_TOKEN": "not-the-token", "QCI_API_URL": srv.URL}, []string{"ints", "-n", "3"}, 1,
			"qrng: /auth/v1/access-tokens: 401 Unauthorized: invalid refresh token"},
		{"plain http remote", map[string]string{"QCI_TOKEN": "t", "QCI_API_URL": "http://example.com"}, []string{"ints"}, 2,
			`plain http to non-loopback host "example.com"`},
		{"help", nil, []string{"help"}, 0, ""},
		{"command help", nil, []string{"bytes", "-h"}, 0, ""},
		{"usage without a token", nil, []string{"usage"}, 2, "qrng: usage needs QCI_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.env, tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.msg)
			if tc.code == 1 {
				assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
				assert.NotContains(t, r.stderr, "not-the-token")
			}
		})
	}
}

func TestFallbackReportedOnStderr(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: 100})
	defer srv.Close()
	env := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	r := runCmd(t, env, "bytes", "-n", "64", "-fallback", "quota")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, r.stdout, 64)
	assert.Contains(t, r.stderr, "64 of 64 bytes came from crypto/rand")
	for _, l := range stderrLines(r.stderr) {
		if strings.HasPrefix(l, "qrng: ") {
			assert.Equal(t, 1, strings.Count(l, "qrng:"), "one prefix: %q", l)
		}
	}
	assert.Contains(t, r.stderr, "serving crypto/rand bytes instead of quantum bytes")

	r = runCmd(t, env, "bytes", "-n", "64")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "monthly quota exceeded")
}

func TestUsageCommand(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	env := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	require.Equal(t, 0, runCmd(t, env, "ints", "-n", "8", "-bits", "16").code)
	today := time.Now().UTC().Format(time.DateOnly)
	r := runCmd(t, env, "usage", "-from", today, "-to", today)
	require.Equal(t, 0, r.code, r.stderr)
	// 8 values, fetched as the smallest batch: 256 values of 16 bits (512 bytes).
	assert.True(t, strings.HasPrefix(r.stdout, "4096 bits used from "+today), r.stdout)
}

// countingWriter accepts limit bytes, then fails like a closed pipe.
type countingWriter struct {
	mu    sync.Mutex
	n     int
	limit int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.limit > 0 && w.n+len(p) > w.limit {
		return 0, syscall.EPIPE
	}
	w.n += len(p)
	return len(p), nil
}

func TestBytesStreamsUntilPipeClosesOrInterrupt(t *testing.T) {
	w := &countingWriter{limit: 1 << 20}
	var errb bytes.Buffer
	code := run(context.Background(), []string{"bytes", "-bits", "64"}, w, &errb, func(string) string { return "" })
	assert.Equal(t, 0, code, errb.String())
	assert.Equal(t, 1<<20, w.n)

	// An interruption (here a cancelled context, as SIGINT does) ends a
	// stream with status 130, after what was written.
	ctx, cancel := context.WithCancelCause(context.Background())
	w = &countingWriter{}
	errb.Reset()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"bytes", "-format", "hex"}, w, &errb, func(string) string { return "" })
	}()
	require.Eventually(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.n > 0 }, 30*time.Second, time.Millisecond)
	cancel(signalled{syscall.SIGINT})
	assert.Equal(t, 130, <-done)
	assert.Regexp(t, `qrng: interrupted by SIGINT after \d+ bytes\n$`, errb.String())

	// With -n too, a closed pipe ends the run with status 0 (issue 18,
	// item 6), and another write error is an error.
	w = &countingWriter{limit: 1000}
	errb.Reset()
	code = run(context.Background(), []string{"bytes", "-n", "4MiB"}, w, &errb, func(string) string { return "" })
	assert.Equal(t, 0, code, errb.String())
	assert.NotContains(t, errb.String(), "broken pipe")
	errb.Reset()
	code = run(context.Background(), []string{"bytes", "-n", "4MiB"}, failingWriter{}, &errb, func(string) string { return "" })
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "qrng: writing output: no space left on device")
}

// failingWriter fails every write as a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeSpeaksTheQuickstartAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-token", "API_TOKEN"}, out, io.Discard, nil)
	}()
	var base string
	require.Eventually(t, func() bool {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "qrng emulator listening on "); ok {
				base = strings.Fields(u)[0]
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, out.String(), "API token: API_TOKEN")

	post := func(path, token, body string) string {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("accept", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, string(b))
		return string(b)
	}
	// The quickstart's three calls, bodies as QCI wrote them.
	tok := post("/auth/v1/access-tokens", "", `{ "refresh_token": "API_TOKEN" }`)
	var access string
	_, err := fmt.Sscanf(tok[strings.Index(tok, `"access_token":"`)+len(`"access_token":"`):], "%s", &access)
	require.NoError(t, err)
	access = access[:strings.Index(access, `"`)]
	nums := post("/qrng/random_numbers", access, `{ "distribution": "uniform_discrete", "output_type": "decimal", "n_samples": 5, "n_bits": 16 }`)
	assert.Regexp(t, `^\[\d+, \d+, \d+, \d+, \d+\]$`, strings.TrimSpace(nums))
	today := time.Now().UTC().Format(time.DateOnly)
	usage := post("/qrng/usage", access, `{ "start_date": "`+today+`", "end_date": "`+today+`" }`)
	assert.JSONEq(t, `{"n_bits": 80}`, usage)

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on interrupt")
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	c := &console{w: &b}
	still := time.Now()
	clock := func() time.Time { return still } // no time passes: no rate yet
	p := &progress{c: c, total: 1 << 20, binary: true, now: clock, start: still}
	p.update(100) // too little to redraw
	assert.Empty(t, b.String())
	p.update(512 << 10)
	assert.Contains(t, b.String(), "\r[===============               ]  50% 0.5 / 1.0 MiB")
	p.update(1 << 20)
	p.done()
	assert.True(t, strings.HasSuffix(b.String(), "100% 1.0 / 1.0 MiB\n"), "%q", b.String())
	p.done()
	fmt.Fprintln(c, "qrng: a message")
	assert.True(t, strings.HasSuffix(b.String(), "MiB\nqrng: a message\n"), "one newline ends the bar: %q", b.String())

	b.Reset()
	p = &progress{c: c, total: 2_000_000, now: clock, start: still}
	p.update(1_000_000)
	fmt.Fprintln(c, "qrng: cut short")
	assert.Equal(t, "\r[===============               ]  50% 1.0 / 2.0 MB\nqrng: cut short\n", b.String())

	var none *progress // not a terminal: draws nothing
	none.update(5)
	none.done()
	assert.False(t, isTerminal(&b), "a buffer is not a terminal")
}

// The null device is a character device but no terminal: raw bytes may go
// there (the hostile review: `qrng bytes -n 10 > /dev/null` was refused).
func TestDevNullIsNoTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	assert.False(t, isTerminal(null))

	var errb bytes.Buffer
	code := run(context.Background(), []string{"bytes", "-n", "10", "-emulator"}, null, &errb, func(string) string { return "" })
	assert.Equal(t, 0, code, "stderr: %s", errb.String())
}

// A blank QCI_TOKEN is no token: the emulator, said on stderr (the hostile
// review: QCI_TOKEN=" " sent the blank to the service, and redaction of a
// blank token garbled every message).
func TestBlankTokenIsNoToken(t *testing.T) {
	r := runCmd(t, map[string]string{"QCI_TOKEN": "  \n", "QCI_API_URL": "http://127.0.0.1:1"}, "ints", "-n", "3")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no QCI_TOKEN set: "+notQuantum)
	assert.Len(t, lines(r.stdout), 3)

	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	r = runCmd(t, map[string]string{"QCI_TOKEN": " " + srv.Token + "\n", "QCI_API_URL": srv.URL}, "ints", "-n", "3")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, notQuantum)
	assert.Equal(t, 1, srv.Counters().RandomRequests, "the token, trimmed, is the service's")
}
