package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/redis/go-redis/v9"
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
	for _, want := range []string{"pool: ", "quota: ", " of 1000000000 bits used in ", "filling: true", "fillers: 1", "filler ", "chunks: unauthenticated (no pool key"} {
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
		{nil, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1", "-daily", "fast"}, 2, `-daily "fast": want even, off or a positive number of bits`},
		{nil, []string{"pool", "fill", "-redis", "redis://127.0.0.1:1", "-daily", "0"}, 2, `-daily "0"`},
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

// Issue 18, item 9: a filler that cannot start (a token the service
// refuses) ends with one line starting "qrng: " once: no "redispool: "
// and no second "qrng: " in a chain of prefixes (the filler's log lines
// before it are the filler's own).
func TestPoolFillBadTokenIsOneLine(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	p := startQrng(t, map[string]string{"QCI_TOKEN": "not-the-token", "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url}, nil, nil,
		"pool", "fill", "-target", "64KiB")
	assert.Equal(t, 1, p.wait(t))
	ls := stderrLines(p.stderr.String())
	last := ls[len(ls)-1]
	assert.Regexp(t, `^qrng: pool fill: .*401 Unauthorized: invalid refresh token$`, last)
	assert.Equal(t, 1, strings.Count(last, "qrng:"), last)
	assert.NotContains(t, last, "redispool:") // the lines before it are the filler's log
	assert.NotContains(t, p.stderr.String(), "not-the-token")
}

// Issue 18, item 13: a fleet without a token, as the README shows it:
// 'qrng serve' stands in for the service, and the filler reaches it
// through QCI_API_URL with the token serve printed.
func TestFleetWithoutAToken(t *testing.T) {
	url := startRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	var wg sync.WaitGroup
	wg.Go(func() { run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-token", "demo"}, out, io.Discard, nil) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	var api string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`export QCI_API_URL=(\S+) QCI_TOKEN=demo`).FindStringSubmatch(out.String())
		if m != nil {
			api = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "serve says how to use it: %q", out.String())

	fillEnv := map[string]string{"QCI_API_URL": api, "QCI_TOKEN": "demo", "QRNG_REDIS_URL": url}
	fill := startQrng(t, fillEnv, nil, nil, "pool", "fill", "-target", "1MiB")
	consumer := map[string]string{"QRNG_REDIS_URL": url}
	require.Eventually(t, func() bool {
		r := runCmd(t, consumer, "pool", "status")
		return r.code == 0 && !strings.HasPrefix(r.stdout, "pool: 0 bytes")
	}, 30*time.Second, 20*time.Millisecond, "filler stderr: %q", fill.stderr.String())
	r := runCmd(t, consumer, "bytes", "-n", "32", "-format", "hex", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := hex.DecodeString(strings.TrimSpace(r.stdout))
	require.NoError(t, err)
	assert.Len(t, b, 32)
	// Issue 19, item 7: from a pool, what was fetched is the chunks taken.
	assert.Equal(t, "qrng: fetched 131072 bits (16384 bytes) from the pool (1 chunk); served 32 bytes\n", r.stderr)
	r = runCmd(t, consumer, "ints", "-n", "5", "-max", "6")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, lines(r.stdout), 5)
	fill.signal(t, syscall.SIGQUIT) // as SIGINT, SIGTERM and SIGHUP: no goroutine dump
	assert.Equal(t, 0, fill.wait(t), "a filler stops cleanly: %q", fill.stderr.String())
	assert.NotContains(t, fill.stderr.String(), "goroutine ")
}

// readmeACL returns the README's ACL SETUSER line for user, with its
// password filled in, as arguments.
func readmeACL(t *testing.T, user, password string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == "ACL" && f[1] == "SETUSER" && f[2] == user {
			for i := range f {
				f[i] = strings.ReplaceAll(f[i], strings.ToUpper(strings.TrimPrefix(user, "qrng-"))+"-PASSWORD", password)
			}
			return f
		}
	}
	t.Fatalf("README.md has no ACL line for %s", user)
	return nil
}

// The README's consumer ACL: 'qrng bytes -n 1MiB' from a pool of 64 KiB
// chunks learns the pool's chunk size and pops at most 17 chunks (16 are
// 1 MiB). 'pool fill' prints its target and the day's share at start, and
// 'pool status' shows today's spend, the share, and when the day and the
// month renew.
func TestPoolShareLinesAndWholeChunks(t *testing.T) {
	url := startRedis(t)
	sock := strings.TrimPrefix(url, "unix://")
	admin := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	defer admin.Close()
	ctx := context.Background()
	for _, user := range []string{"qrng-consumer", "qrng-filler", "qrng-status"} {
		args := readmeACL(t, user, "pw")
		cmd := make([]any, len(args))
		for i, a := range args {
			cmd[i] = a
		}
		require.NoError(t, admin.Do(ctx, cmd...).Err(), "%v", args)
	}
	as := func(user string) string { return "unix://" + user + ":pw@" + sock }
	srv := qrngtest.Start(t, qrngtest.Options{})
	fillEnv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": as("qrng-filler")}

	fctx, cancel := context.WithCancel(ctx)
	var fill result
	var wg sync.WaitGroup
	wg.Go(func() { fill = runCmdCtx(t, fctx, fillEnv, "pool", "fill", "-chunk", "64KiB", "-target", "1536KiB") })
	t.Cleanup(func() { cancel(); wg.Wait() })
	require.Eventually(t, func() bool { return admin.LLen(ctx, "{qrng}:pool").Val() >= 24 }, 30*time.Second, 10*time.Millisecond)

	r := runCmd(t, map[string]string{"QRNG_REDIS_URL": as("qrng-status")}, "pool", "status")
	require.Equal(t, 0, r.code, r.stderr)
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	left := int64(next.Sub(today) / (24 * time.Hour))
	share := int64(1_000_000_000) / left
	assert.Contains(t, r.stdout, fmt.Sprintf(" of a daily share of %d bits used in %s (renews %s)\n",
		share, today.Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.RFC3339)))
	assert.Contains(t, r.stdout, fmt.Sprintf("month renews: %s (%d days left, today included)\n", next.Format(time.RFC3339), left))

	cancel()
	wg.Wait()
	require.Equal(t, 0, fill.code, fill.stderr)
	first := strings.SplitN(fill.stderr, "\n", 2)[0]
	assert.Equal(t, fmt.Sprintf("qrng: pool fill: target 1572864 bytes (1.26%% of the month); daily share %d bytes (%.2f%% of the month; 0 of its 1000000000 bits used, %d days left, today included)",
		share/8, 100*float64(share)/1e9, left), first)

	before := admin.LLen(ctx, "{qrng}:pool").Val()
	r = runCmd(t, map[string]string{"QRNG_REDIS_URL": as("qrng-consumer")}, "bytes", "-n", "1MiB", "-o", filepath.Join(t.TempDir(), "out"))
	require.Equal(t, 0, r.code, r.stderr)
	popped := before - admin.LLen(ctx, "{qrng}:pool").Val()
	assert.LessOrEqual(t, popped, int64(17), "1 MiB from 64 KiB chunks")
	assert.GreaterOrEqual(t, popped, int64(16))
}

// A setting that differs from the pool's is named by its flag, not by the
// Go field, and is a usage error (exit 2): found before anything is
// spent (the hostile review: "FillerConfig.ChunkSize 4096 differs...").
func TestPoolFillSettingConflictNamesTheFlag(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	rdb, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(rdb)
	defer c.Close()
	require.NoError(t, c.HSet(context.Background(), "{qrng}:meta", "chunk_size", "16384", "bits", "16",
		"quota_bits", "1000000000", "daily", "even").Err()) // as a first filler with defaults left them
	envv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url}
	for _, tc := range []struct{ flag, value string }{{"-chunk", "4KiB"}, {"-quota", "2000000000"}, {"-daily", "off"}} {
		r := runCmd(t, envv, "pool", "fill", tc.flag, tc.value)
		assert.Equal(t, 2, r.code, r.stderr)
		ls := stderrLines(r.stderr)
		last := ls[len(ls)-1]
		assert.Regexp(t, `^qrng: pool fill: (filler \S+: )?`+tc.flag+` `, last)
		assert.NotContains(t, last, "FillerConfig")
	}
	assert.Zero(t, srv.Counters().RandomRequests, "nothing spent")
}

// Issue 18, item 13: pool fill -emulator fills a pool with no token and
// no serve: the filler says on stderr that the numbers are NOT quantum
// and that consumers cannot tell; the meter's rules still hold.
func TestPoolFillEmulator(t *testing.T) {
	url := startRedis(t)
	fill := startQrng(t, map[string]string{"QRNG_REDIS_URL": url}, nil, nil, "pool", "fill", "-emulator", "-target", "64KiB")
	consumer := map[string]string{"QRNG_REDIS_URL": url}
	require.Eventually(t, func() bool {
		r := runCmd(t, consumer, "pool", "status")
		return r.code == 0 && !strings.HasPrefix(r.stdout, "pool: 0 bytes")
	}, 30*time.Second, 20*time.Millisecond, "filler stderr: %q", fill.stderr.String())
	r := runCmd(t, consumer, "bytes", "-n", "32", "-format", "hex")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := hex.DecodeString(strings.TrimSpace(r.stdout))
	require.NoError(t, err)
	assert.Len(t, b, 32)
	r = runCmd(t, consumer, "pool", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `quota: [1-9]\d* of 1000000000 bits used`, r.stdout, "the filler's meter counted the emulator's batches")
	fill.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, fill.wait(t), fill.stderr.String())
	assert.Contains(t, fill.stderr.String(), "qrng: pool fill -emulator: filling the pool from the built-in emulator; these numbers are NOT quantum")

	r = runCmd(t, map[string]string{"QRNG_REDIS_URL": url}, "pool", "fill")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "(-emulator fills from the built-in emulator)")
}
