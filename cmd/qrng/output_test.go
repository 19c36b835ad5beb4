package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// oneBatchServer serves the first request for random numbers (a bounded
// command's first request is what it needs, up to a batch), then refuses
// every request with 400 (which is not retried).
func oneBatchServer(t *testing.T) map[string]string { return batchesThenRefusal(t, 1) }

// batchesThenRefusal is an emulator that answers n requests for numbers,
// then refuses every later one with a 400.
func batchesThenRefusal(t *testing.T, n int) map[string]string {
	srv := qrngtest.NewServer(qrngtest.Options{})
	t.Cleanup(srv.Close)
	srv.Inject(qrngtest.Fault{Times: n}, qrngtest.Fault{Status: 400, Body: `{"detail": "refused"}`, Times: -1})
	return map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
}

// Issue 9, item 19: a run that fails leaves the -o file as it was, and no
// partial or temporary file behind.
func TestOutputFileUntouchedWhenARunFails(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.bin")
	require.NoError(t, os.WriteFile(old, []byte("precious"), 0o644))

	// The first request fails: the file was not even truncated.
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	srv.Inject(qrngtest.Fault{Status: 400, Body: `{"detail": "refused"}`})
	r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, "bytes", "-n", "32", "-o", old)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Regexp(t, `^qrng: .*refused; nothing kept: ".*old.bin" is unchanged\n$`, r.stderr)
	data, err := os.ReadFile(old)
	require.NoError(t, err)
	assert.Equal(t, "precious", string(data))

	// A later request fails, after part of the bytes were written (2 MiB
	// is the least -n that takes two requests).
	fresh := filepath.Join(dir, "new.bin")
	r = runCmd(t, oneBatchServer(t), "bytes", "-n", "2MiB", "-o", fresh)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Regexp(t, `^qrng: .*refused; nothing kept: ".*new.bin" was not created\n$`, r.stderr)
	assert.NoFileExists(t, fresh)
	assert.Equal(t, []string{"old.bin"}, dirNames(t, dir), "no partial or temporary file")

	// Success replaces the file's content whole; it keeps its mode
	// (issue 18, item 7), while a new file is private to its owner.
	r = runCmd(t, nil, "bytes", "-n", "1KiB", "-o", old)
	require.Equal(t, 0, r.code, r.stderr)
	data, err = os.ReadFile(old)
	require.NoError(t, err)
	assert.Len(t, data, 1024)
	st, err := os.Stat(old)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	assert.Equal(t, []string{"old.bin"}, dirNames(t, dir))
}

// Issue 9, item 19: a stream to -o could only end by interruption, which
// keeps nothing, so -o needs -n; and -o writes regular files only.
func TestOutputNeedsACountAndARegularFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "stream.bin")
	// Before this was a usage error, the stream ran until interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := runCmdCtx(t, ctx, nil, "bytes", "-o", file)
	assertUsageError(t, r, "qrng: -o "+file+" needs -n")
	assert.NoFileExists(t, file)

	assertUsageError(t, runCmd(t, nil, "bytes", "-n", "4", "-o", dir), "qrng: -o "+dir+": not a regular file")
	assertUsageError(t, runCmd(t, nil, "bytes", "-n", "4", "-o", os.DevNull), "qrng: -o "+os.DevNull+": not a regular file")

	// A symbolic link stays a link: the file it names is replaced.
	target := filepath.Join(dir, "target.bin")
	link := filepath.Join(dir, "link.bin")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o600))
	require.NoError(t, os.Symlink(target, link))
	r = runCmd(t, nil, "bytes", "-n", "4", "-o", link)
	require.Equal(t, 0, r.code, r.stderr)
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, st.Mode().Type())
	data, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Len(t, data, 4)
	assert.ElementsMatch(t, []string{"link.bin", "target.bin"}, dirNames(t, dir))
}

// Issue 9, item 20: SIGINT or SIGTERM (and SIGHUP or SIGQUIT) mid-run
// exits 130 or 143 (129, 131) with one line saying how much was written;
// with -o, nothing is kept. (2 MiB is
// the least -n that takes two requests: the second one hangs.)
func TestInterruptExitStatusAndMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
		out  string // "": stdout; "existing" or "new": -o
		args []string
		want string // the line, with %d for the count
		unit string
	}{
		{"SIGINT, -o over a file", syscall.SIGINT, 130, "existing", []string{"bytes", "-n", "2MiB"},
			`^qrng: interrupted by SIGINT after (\d+) of 2097152 bytes; nothing kept: ".*out.bin" is unchanged$`, "bytes"},
		{"SIGTERM, -o a new file", syscall.SIGTERM, 143, "new", []string{"bytes", "-n", "2MiB"},
			`^qrng: interrupted by SIGTERM after (\d+) of 2097152 bytes; nothing kept: ".*out.bin" was not created$`, "bytes"},
		{"SIGINT, stdout", syscall.SIGINT, 130, "", []string{"bytes", "-n", "2MiB"},
			`^qrng: interrupted by SIGINT after (\d+) of 2097152 bytes$`, "bytes"},
		{"SIGTERM, stream", syscall.SIGTERM, 143, "", []string{"bytes", "-format", "hex"},
			`^qrng: interrupted by SIGTERM after (\d+) bytes$`, "hex"},
		{"SIGINT, ints", syscall.SIGINT, 130, "", []string{"ints", "-n", "1100000", "-bits", "8"},
			`^qrng: interrupted by SIGINT after (\d+) of 1100000 values$`, "lines"},
		// Issue 18, item 3: SIGHUP (a terminal closed) and SIGQUIT, as
		// SIGINT and SIGTERM, with the message and no partial file.
		{"SIGHUP, -o over a file", syscall.SIGHUP, 129, "existing", []string{"bytes", "-n", "2MiB"},
			`^qrng: interrupted by SIGHUP after (\d+) of 2097152 bytes; nothing kept: ".*out.bin" is unchanged$`, "bytes"},
		{"SIGQUIT, -o a new file", syscall.SIGQUIT, 131, "new", []string{"bytes", "-n", "2MiB"},
			`^qrng: interrupted by SIGQUIT after (\d+) of 2097152 bytes; nothing kept: ".*out.bin" was not created$`, "bytes"},
		{"SIGHUP, floats", syscall.SIGHUP, 129, "", []string{"floats", "-n", "300000"},
			`^qrng: interrupted by SIGHUP after (\d+) of 300000 values$`, "lines"},
		// Issue 18, item 18: ints and floats take -o, with the same rule.
		{"SIGINT, ints -o over a file", syscall.SIGINT, 130, "existing", []string{"ints", "-n", "1100000", "-bits", "8"},
			`^qrng: interrupted by SIGINT after (\d+) of 1100000 values; nothing kept: ".*out.bin" is unchanged$`, "lines"},
		{"SIGTERM, floats -o a new file", syscall.SIGTERM, 143, "new", []string{"floats", "-n", "300000"},
			`^qrng: interrupted by SIGTERM after (\d+) of 300000 values; nothing kept: ".*out.bin" was not created$`, "lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := qrngtest.NewServer(qrngtest.Options{})
			defer srv.Close()
			// The first batch is served; every later request hangs, so
			// the run is surely mid-way when the signal comes.
			srv.Inject(qrngtest.Fault{}, qrngtest.Fault{Latency: time.Hour, Times: -1})
			dir := t.TempDir()
			file := filepath.Join(dir, "out.bin")
			args := tc.args
			if tc.out != "" {
				args = append(args, "-o", file)
			}
			if tc.out == "existing" {
				require.NoError(t, os.WriteFile(file, []byte("precious"), 0o644))
			}
			p := startQrng(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, nil, nil, args...)
			require.Eventually(t, func() bool { return srv.Counters().RandomRequests >= 2 }, 60*time.Second, 10*time.Millisecond,
				"stderr: %q", p.stderr.String())
			p.signal(t, tc.sig)
			assert.Equal(t, tc.code, p.wait(t))

			ls := stderrLines(p.stderr.String())
			require.Len(t, ls, 1, "one line: %q", p.stderr.String())
			m := regexp.MustCompile(tc.want).FindStringSubmatch(ls[0])
			require.NotNil(t, m, "%q does not match %s", ls[0], tc.want)
			n, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			assert.Positive(t, n, "the first batch was written before the signal")
			switch tc.unit {
			case "bytes":
				if tc.out == "" {
					assert.Len(t, p.stdout.String(), n, "the count is what stdout received")
				}
			case "hex":
				assert.Equal(t, 2*n, len(strings.TrimSuffix(p.stdout.String(), "\n")), "the count is what stdout received")
			case "lines":
				if tc.out == "" {
					assert.Len(t, strings.Fields(p.stdout.String()), n, "the count is what stdout received")
				}
			}
			switch tc.out {
			case "existing":
				data, err := os.ReadFile(file)
				require.NoError(t, err)
				assert.Equal(t, "precious", string(data))
				assert.Equal(t, []string{"out.bin"}, dirNames(t, dir))
			case "new":
				assert.Empty(t, dirNames(t, dir), "no partial or temporary file")
			}
		})
	}
}
