package main

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startRedis runs a redis-server of the test's own on a unix socket,
// persistence off, and returns its URL. Without redis-server the test is
// skipped, unless QRNG_REQUIRE_REDIS=1 (as CI sets it): then it fails.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("QRNG_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found, and QRNG_REQUIRE_REDIS=1")
		}
		t.Skip("redis-server not found (apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "qrng-redis") // short: a socket path has a small limit
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "r.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 5*time.Millisecond)
	return "unix://" + sock
}

func TestPoolFillStatusAndConsumers(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	fillEnv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url}

	ctx, cancel := context.WithCancel(context.Background())
	var fill result
	var wg sync.WaitGroup
	wg.Go(func() { fill = runCmdCtx(t, ctx, fillEnv, "pool", "fill", "-target", "64KiB", "-chunk", "1KiB") })
	t.Cleanup(func() { cancel(); wg.Wait() })

	consumer := map[string]string{"QRNG_REDIS_URL": url} // no token
	require.Eventually(t, func() bool {
		r := runCmd(t, consumer, "pool", "status")
		return r.code == 0 && strings.Contains(r.stdout, "fillers: 1") && !strings.HasPrefix(r.stdout, "pool: 0 bytes")
	}, 30*time.Second, 20*time.Millisecond)

	r := runCmd(t, consumer, "bytes", "-n", "32", "-format", "hex")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := hex.DecodeString(strings.TrimSpace(r.stdout))
	require.NoError(t, err)
	assert.Len(t, b, 32)
	assert.NotContains(t, r.stderr, notQuantum, "the pool's bytes are the service's")
	r = runCmd(t, nil, "ints", "-n", "3", "-redis", url, "-max", "6")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, lines(r.stdout), 3)

	r = runCmd(t, consumer, "pool", "status")
	require.Equal(t, 0, r.code)
	for _, want := range []string{"pool: ", "quota: ", " of 1000000000 bits used in ", "filling: true", "fillers: 1", "filler "} {
		assert.Contains(t, r.stdout, want)
	}
	assert.NotContains(t, r.stdout+r.stderr, srv.Token)

	cancel()
	wg.Wait()
	assert.Equal(t, 0, fill.code, "a filler stopped by a signal exits cleanly: %s", fill.stderr)
	assert.Contains(t, fill.stderr, "pool topped up", "each top-up is logged")
	assert.NotContains(t, fill.stderr, srv.Token)
}

func TestPoolCommandErrors(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{nil, []string{"pool"}, 2, "qrng: pool: want fill or status"},
		{nil, []string{"pool", "drain"}, 2, `unknown command "pool drain"`},
		{nil, []string{"pool", "status"}, 2, "-redis: want the pool's Redis URL"},
		{nil, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1"}, 2, "pool fill needs QCI_TOKEN"},
		{nil, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1", "-chunk", "100"}, 2, "-chunk 100 outside 512B..64KiB"},
		{nil, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1", "-quota", "0"}, 2, "-quota 0"},
		{nil, []string{"pool", "status", "-redis", "ftp://x"}, 2, "-redis: "},
		{nil, []string{"pool", "status", "-redis", "redis://user:hunter22secret@127.0.0.1:1"}, 1, "pool status: "},
		{nil, []string{"bytes", "-n", "8", "-redis", "redis://127.0.0.1:1", "-emulator"}, 2, "-emulator and -redis exclude each other"},
		{nil, []string{"bytes", "-n", "8", "-redis", ""}, 2, "-redis"},
		{map[string]string{"QRNG_REDIS_URL": "redis://127.0.0.1:1"}, []string{"bytes", "-n", "8", "-emulator"}, 0, "NOT quantum"},
	} {
		r := runCmd(t, c.env, c.args...)
		assert.Equal(t, c.code, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.msg, c.args)
		assert.NotContains(t, r.stderr, "hunter22secret")
		assert.LessOrEqual(t, len(strings.Split(strings.TrimSpace(r.stderr), "\n")), 2, "one line and a hint at most: %q", r.stderr)
	}
}
