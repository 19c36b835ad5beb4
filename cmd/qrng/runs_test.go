package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// How an output command's run ends: what reaches stdout or the -o file,
// and what the last line says.

// Issue 18, item 1: ints and floats whose fetching fails partway print
// every value that was served (nothing is lost in a buffer) and say how
// many were written. The service's quota lets the first of two requests
// through.
func TestNumbersFailedRunKeepsWhatWasServed(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		bitsEach  int64 // bits of the stream one line takes
		quotaBits int64
		n         int
	}{
		{[]string{"ints", "-n", "1100000", "-bits", "8"}, 8, 5_000_000, 1100000},
		{[]string{"ints", "-n", "1100000", "-bits", "12"}, 12, 7_000_000, 1100000},
		{[]string{"floats", "-n", "300000"}, 64, 10_000_000, 300000},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := qrngtest.Start(t, qrngtest.Options{QuotaBits: tc.quotaBits})
			r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, tc.args...)
			require.Equal(t, 1, r.code, r.stderr)
			served := srv.Counters().BitsServed
			require.Positive(t, served)
			got := strings.Count(r.stdout, "\n")
			assert.Equal(t, served/tc.bitsEach, int64(got), "every value served was printed")
			m := regexp.MustCompile(`^qrng: .*quota.* \(after (\d+) of (\d+) values written\)\n$`).FindStringSubmatch(r.stderr)
			require.NotNil(t, m, "one line with the count: %q", r.stderr)
			assert.Equal(t, strconv.Itoa(got), m[1], "the count is what stdout received")
			assert.Equal(t, strconv.Itoa(tc.n), m[2])
		})
	}
}

// Issue 18, item 5: a run that wrote nothing prints nothing, not a lone
// newline, in every format.
func TestNothingWrittenPrintsNothing(t *testing.T) {
	for _, format := range []string{"hex", "base64", "raw"} {
		srv := qrngtest.Start(t, qrngtest.Options{})
		srv.Inject(qrngtest.Fault{Status: 400, Body: `{"detail": "refused"}`, Times: -1})
		r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, "bytes", "-n", "32", "-format", format)
		assert.Equal(t, 1, r.code, r.stderr)
		assert.Empty(t, r.stdout, format)
		assert.Regexp(t, `^qrng: .*refused \(after 0 of 32 bytes written\)\n$`, r.stderr)
	}
}

// Issue 18, item 6: a closed pipe ends any output command with status 0
// and no message, as it ends a stream (`qrng ints -n 1000000 | head -3`
// under pipefail), in a real process.
func TestClosedPipeEndsEveryOutputCommandWithZero(t *testing.T) {
	srv := qrngtest.Start(t, qrngtest.Options{})
	env := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	for _, args := range [][]string{
		{"ints", "-n", "1000000"},
		{"floats", "-n", "1000000"},
		{"ints", "-n", "1000000", "-max", "6"},
		{"bytes", "-n", "10MB", "-format", "hex"},
		{"bytes", "-n", "10MB"},
		{"probe", "-emulator"}, // its status stays its verdict: every line holds
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			p := startQrng(t, env, w, nil, args...)
			w.Close()
			head := bufio.NewReader(r)
			for range 3 { // head -3 (head -c 300 for bytes; nothing read of the probe)
				var err error
				switch args[0] {
				case "bytes":
					_, err = head.Discard(100)
				case "ints", "floats":
					_, err = head.ReadString('\n')
				}
				require.NoError(t, err)
			}
			r.Close()
			assert.Equal(t, 0, p.wait(t), "stderr: %q", p.stderr.String())
			if args[0] == "probe" {
				assert.Equal(t, "qrng: -emulator given: probing the built-in emulator, not the live service\n", p.stderr.String())
			} else {
				assert.Empty(t, p.stderr.String())
			}
		})
	}
}

// Issue 18, item 18: ints and floats write to -o whole or not at all,
// as bytes does.
func TestNumbersToAFileWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dice.txt")
	r := runCmd(t, nil, "ints", "-n", "10", "-max", "6", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Len(t, strings.Fields(string(data)), 10)
	for _, l := range strings.Fields(string(data)) {
		v, err := strconv.Atoi(l)
		require.NoError(t, err)
		assert.True(t, v >= 0 && v < 6, l)
	}
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a new file is private")

	r = runCmd(t, nil, "floats", "-n", "5", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	data, err = os.ReadFile(file)
	require.NoError(t, err)
	require.Len(t, strings.Fields(string(data)), 5)

	// A run that fails partway keeps nothing.
	require.NoError(t, os.WriteFile(file, []byte("precious"), 0o600))
	r = runCmd(t, oneBatchServer(t), "ints", "-n", "1100000", "-bits", "8", "-o", file)
	assert.Equal(t, 1, r.code)
	assert.Regexp(t, `^qrng: .*refused; nothing kept: ".*dice.txt" is unchanged\n$`, r.stderr)
	data, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "precious", string(data))
	fresh := filepath.Join(dir, "fresh.txt")
	r = runCmd(t, oneBatchServer(t), "floats", "-n", "300000", "-o", fresh)
	assert.Equal(t, 1, r.code)
	assert.Regexp(t, `^qrng: .*refused; nothing kept: ".*fresh.txt" was not created\n$`, r.stderr)
	assert.Equal(t, []string{"dice.txt"}, dirNames(t, dir))
}

// Issue 18, item 4: probe -o checks its file before the first request:
// a folder that does not exist costs no quota.
func TestProbeOutputCheckedBeforeTheProbeRuns(t *testing.T) {
	srv := qrngtest.Start(t, qrngtest.Options{})
	env := envFor(srv.Token, srv.URL)
	missing := filepath.Join(t.TempDir(), "missing", "dir", "p.json")
	r := runCmd(t, env, "probe", "-o", missing)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "qrng: -o "+missing+": no such folder "+filepath.Dir(missing)+"\n", r.stderr)
	c := srv.Counters()
	assert.Zero(t, c.TokenRequests+c.RandomRequests+c.UsageRequests, "nothing sent")

	dir := t.TempDir()
	loop := filepath.Join(dir, "loop")
	require.NoError(t, os.Symlink("loop", loop))
	assertUsageError(t, runCmd(t, env, "probe", "-o", loop), "a loop of symbolic links")
	assertUsageError(t, runCmd(t, env, "probe", "-o", dir), "not a regular file")
	c = srv.Counters()
	assert.Zero(t, c.TokenRequests+c.RandomRequests+c.UsageRequests, "nothing sent")
}

// Issue 18, item 10: a missing QCI_TOKEN is a usage error (exit 2) for
// every command that needs one, and says so on one line.
func TestMissingTokenIsAUsageErrorEverywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"usage"}, "qrng: usage needs QCI_TOKEN"},
		{[]string{"probe"}, "qrng: probe needs QCI_TOKEN"},
		{[]string{"probe", "-json", "-o", filepath.Join(t.TempDir(), "p.json")}, "qrng: probe needs QCI_TOKEN"},
		{[]string{"pool", "fill", "-redis", "redis://127.0.0.1:1"}, "qrng: pool fill needs QCI_TOKEN"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			assertUsageError(t, runCmd(t, nil, tc.args...), tc.want)
		})
	}
}

// Issue 18, item 9: an error names what the user gave (a flag, a
// variable), never a Go field nor a flag the user did not pass, on one
// line starting "qrng: " once.
func TestErrorsNameWhatTheUserGave(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		args    []string
		want    string
		notWant []string
	}{
		{map[string]string{"QRNG_REDIS_URL": "garbage"}, []string{"bytes", "-n", "4"},
			"qrng: QRNG_REDIS_URL: not a Redis URL", []string{"-redis:"}},
		{map[string]string{"QRNG_REDIS_URL": "garbage"}, []string{"pool", "status"},
			"qrng: QRNG_REDIS_URL: not a Redis URL", []string{"-redis:"}},
		{nil, []string{"pool", "status", "-redis", "garbage"}, "qrng: -redis: not a Redis URL", []string{"QRNG_REDIS_URL:"}},
		{map[string]string{"QCI_TOKEN": "t"}, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1", "-quota", "100"},
			"qrng: -quota 100 is less than one batch", []string{"FillerConfig", "QuotaBits", "redispool"}},
		{map[string]string{"QCI_TOKEN": "t"}, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1", "-target", "1T"},
			"qrng: -target 1T is more than the month's quota (-quota 1000000000 bits, 125000000 bytes)", []string{"FillerConfig", "Target"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCmd(t, tc.env, tc.args...)
			assertUsageError(t, r, tc.want)
			for _, no := range tc.notWant {
				assert.NotContains(t, r.stderr, no)
			}
		})
	}
}

// Issue 19, item 7: -v says at the end what was fetched (the bits the
// service served) and what was served (the bytes the command used).
func TestVerboseSaysWhatWasFetchedAndServed(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		served int
	}{
		{[]string{"ints", "-n", "5", "-bits", "16", "-v"}, 10},
		{[]string{"floats", "-n", "3", "-v"}, 24},
		{[]string{"bytes", "-n", "100", "-format", "hex", "-v"}, 100},
		{[]string{"bytes", "-n", "3MB", "-v", "-o", filepath.Join(t.TempDir(), "x")}, 3_000_000},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := qrngtest.Start(t, qrngtest.Options{})
			r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, tc.args...)
			require.Equal(t, 0, r.code, r.stderr)
			bits := srv.Counters().BitsServed
			assert.Equal(t, "qrng: fetched "+strconv.FormatInt(bits, 10)+" bits ("+strconv.FormatInt((bits+7)/8, 10)+
				" bytes) from the service; served "+strconv.Itoa(tc.served)+" bytes\n", r.stderr)
		})
	}
	r := runCmd(t, nil, "ints", "-n", "5", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `\nqrng: fetched 4096 bits \(512 bytes\) from the built-in emulator; served 10 bytes\n$`, r.stderr)

	r = runCmd(t, nil, "ints", "-n", "5")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "fetched", "only with -v")
}

// Issue 18, item 20: the bar shows the rate so far and the time left at
// that rate (then the time taken).
func TestProgressBarShowsRateAndTimeLeft(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	p := &progress{c: &console{w: &b}, total: 4 << 20, binary: true, now: func() time.Time { return now }, start: now}
	now = now.Add(2 * time.Second)
	p.update(1 << 20)
	assert.Equal(t, "\r[=======                       ]  25% 1.0 / 4.0 MiB  0.5 MiB/s  6s left", b.String())
	now = now.Add(6 * time.Second)
	p.update(4 << 20)
	assert.True(t, strings.HasSuffix(b.String(), "\r[==============================] 100% 4.0 / 4.0 MiB  0.5 MiB/s  in 8s"), "%q", b.String())

	b.Reset()
	p = &progress{c: &console{w: &b}, total: 1e9, now: func() time.Time { return now }, start: now}
	now = now.Add(10 * time.Second)
	p.update(5e6)
	assert.Equal(t, "\r[                              ]   0% 5.0 / 1000.0 MB  0.5 MB/s  33m10s left", b.String())
	now = now.Add(time.Hour)
	p.update(6e6)
	assert.Contains(t, b.String(), "1000.0 MB  0.0 MB/s  166h07m left") // 1.66 kB/s
	assert.Equal(t, "1h02m", roughly(62*time.Minute+10*time.Second))
}
