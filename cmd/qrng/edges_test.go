package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README: "A stream (`bytes` without `-n`) ends with status 0 when its
// reader goes away (a closed pipe)." In a real process stdout is fd 1, and
// the Go runtime kills a process that writes to a closed pipe on fd 1 with
// SIGPIPE (status 141 in a shell, -1 here) unless SIGPIPE is notified.
// TestBytesStreamsUntilPipeClosesOrInterrupt only uses a fake writer.
func TestStreamToARealClosedPipeExitsZero(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	p := startQrng(t, map[string]string{}, w, nil, "bytes", "-bits", "64")
	w.Close()
	buf := make([]byte, 4096)
	_, err = r.Read(buf)
	require.NoError(t, err)
	r.Close() // the reader goes away, as `| head -c 100` does
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("qrng did not end after its reader went away")
	}
	require.Equal(t, 0, p.code, "stderr: %q; state: %v", p.stderr.String(), p.cmd.ProcessState)
}

// README: "An error is one line starting `qrng: `". With an unreachable
// Redis, go-redis's own logger writes "redis: <date> pool.go:770: ..."
// lines to the real stderr (8 of them for `bytes`), which the in-process
// runCmd of TestPoolCommandErrors never sees.
func TestUnreachableRedisIsOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"bytes", "-n", "4", "-redis", "redis://127.0.0.1:1"},
		{"pool", "status", "-redis", "redis://127.0.0.1:1"},
	} {
		p := startQrng(t, map[string]string{}, nil, nil, args...)
		code := p.wait(t)
		require.Equal(t, 1, code)
		ls := stderrLines(p.stderr.String())
		require.Len(t, ls, 1, "%v: stderr %q", args, p.stderr.String())
		require.True(t, strings.HasPrefix(ls[0], "qrng: "), ls[0])
	}
}

// README: "a symbolic link is followed, not replaced". A dangling link is
// replaced by a regular file, and the file it names is never created.
func TestDanglingSymlinkIsFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.bin")
	link := filepath.Join(dir, "link.bin")
	require.NoError(t, os.Symlink(target, link))
	r := runCmd(t, nil, "bytes", "-n", "4", "-o", link)
	require.Equal(t, 0, r.code, r.stderr)
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, st.Mode().Type(), "the link was replaced by a regular file")
	assert.FileExists(t, target)
}

// A Redis password is kept out of messages only in its raw form; net/url
// quotes the URL with %q, so a password with '"' or '\' (or a control
// character) is printed escaped, and redactURL misses it.
func TestRedisPasswordNeverPrinted(t *testing.T) {
	for _, u := range []string{
		`redis://u:hunter"22secret@127.0.0.1:1`,
		`redis://u:hunter\22secret@127.0.0.1:1`,
		"redis://u:hunter\n22secret@127.0.0.1:1",
	} {
		r := runCmd(t, nil, "pool", "status", "-redis", u)
		assert.NotContains(t, r.stderr, "22secret", "%q", r.stderr)
	}
}

// README: "Tokens never appear in errors or logs." A QCI_API_URL that the
// address check refuses is quoted whole, token included.
func TestTokenNotEchoedFromBadAPIURL(t *testing.T) {
	const tok = "tok-review2-SECRET"
	for _, u := range []string{
		"http://127.0.0.1:9/?t=" + tok,
		"http://127.0.0.1:9/" + tok + "/%zz",
	} {
		r := runCmd(t, map[string]string{"QCI_TOKEN": tok, "QCI_API_URL": u}, "ints", "-n", "1")
		assert.NotContains(t, r.stderr, tok, "%q", r.stderr)
	}
}

// A bytes run to stdout that fails (here: the service's quota runs out
// mid-run) drops what it already received: the 64 KiB bufio.Writer is
// not flushed on the error path (only on interruption), and a partial
// ReadContext's n is ignored. The served bytes are quota spent for
// nothing, and the error line does not say how much stdout got.
func TestFailedRunToStdoutKeepsWhatWasServed(t *testing.T) {
	srv := qrngtest.Start(t, qrngtest.Options{QuotaBits: 8 * 3_000_000}) // one 2 MB batch fits, the second does not
	r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, "bytes", "-n", "8MB")
	require.Equal(t, 1, r.code, r.stderr)
	served := srv.Counters().BitsServed / 8
	require.Positive(t, served)
	assert.Equal(t, served, int64(len(r.stdout)), "stdout got %d of the %d bytes served; stderr %q", len(r.stdout), served, r.stderr)
}

// README: "`serve` and `pool fill` stop cleanly on any of them, status
// 0": SIGHUP and SIGQUIT included (Go's default for SIGQUIT is a
// goroutine dump and status 2), in a real process.
func TestServeStopsCleanlyOnEverySignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		p := startQrng(t, map[string]string{}, nil, nil, "serve", "-addr", "127.0.0.1:0")
		require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "listening on") }, 30*time.Second, 10*time.Millisecond)
		p.signal(t, sig)
		assert.Equal(t, 0, p.wait(t), "%v: stderr %q", sig, p.stderr.String())
		assert.Empty(t, p.stderr.String(), sig)
	}
}
