package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/redistest"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A pool an earlier version made under its default prefix, "qrng": 'pool
// status' without -key finds it and says so on a line of its own; with
// -key, or with a pool under "{qrng}", no such line.
func TestPoolStatusFindsAnOldDefaultPool(t *testing.T) {
	url := startRedis(t)
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	admin := redis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	require.NoError(t, admin.HSet(ctx, "qrng:meta", "chunk_size", 1024).Err())
	require.NoError(t, admin.RPush(ctx, "qrng:pool", strings.Repeat("x", 1024), strings.Repeat("y", 1024)).Err())

	r := runCmd(t, nil, "pool", "status", "-redis", url)
	require.Equal(t, 0, r.code, r.stderr)
	ls := strings.Split(r.stdout, "\n")
	assert.Equal(t, `prefix: qrng (an earlier version's default; README: "Pools of earlier versions")`, ls[0])
	assert.Equal(t, "pool: 2048 bytes in 2 chunks of 1024 bytes", ls[1])

	r = runCmd(t, nil, "pool", "status", "-redis", url, "-key", "qrng")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "pool: 2048 bytes in 2 chunks of 1024 bytes", strings.Split(r.stdout, "\n")[0])

	require.NoError(t, admin.HSet(ctx, "{qrng}:meta", "chunk_size", 1024).Err())
	r = runCmd(t, nil, "pool", "status", "-redis", url)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "pool: 0 bytes in 0 chunks of 1024 bytes", strings.Split(r.stdout, "\n")[0])
}

// fillInBackground runs 'qrng pool fill' with env until the test ends.
func fillInBackground(t *testing.T, env map[string]string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var fill result
	var wg sync.WaitGroup
	wg.Go(func() {
		fill = runCmdCtx(t, ctx, env, append([]string{"pool", "fill", "-target", "64KiB", "-chunk", "1KiB"}, args...)...)
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		assert.Equal(t, 0, fill.code, "the filler: %s", fill.stderr)
	})
}

// waitFilled waits until 'pool status' with args shows a filler and bytes.
func waitFilled(t *testing.T, env map[string]string, args ...string) {
	t.Helper()
	var r result
	require.Eventually(t, func() bool {
		r = runCmd(t, env, append([]string{"pool", "status"}, args...)...)
		return r.code == 0 && strings.Contains(r.stdout, "fillers: 1") && !strings.HasPrefix(r.stdout, "pool: 0 bytes")
	}, time.Minute, 20*time.Millisecond, "last status: %+v", r)
}

// The command on a real 3-node Redis Cluster: each of fill, bytes and
// status given one node's URL (a different one each) finds the cluster;
// a URL with the other nodes as addr= seeds works too.
func TestCommandOnACluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	srv := qrngtest.Start(t, qrngtest.Options{})
	a := cl.Addrs()
	fillInBackground(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": "redis://" + a[1]})
	waitFilled(t, nil, "-redis", "redis://"+a[2])

	r := runCmd(t, nil, "bytes", "-n", "32", "-format", "hex", "-redis", "redis://"+a[0])
	require.Equal(t, 0, r.code, r.stderr)
	b, err := hex.DecodeString(strings.TrimSpace(r.stdout))
	require.NoError(t, err)
	assert.Len(t, b, 32)

	r = runCmd(t, nil, "pool", "status", "-redis", "redis://"+a[0]+"?addr="+a[1]+"&addr="+a[2])
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "fillers: 1")
	assert.Contains(t, r.stdout, "filling: true")
	n, err := cl.Client(t).LLen(context.Background(), "{qrng}:pool").Result()
	require.NoError(t, err)
	assert.Positive(t, n)
}

// The command through a Sentinel: -sentinel-master NAME with the
// sentinel's URL reaches the primary for fill, bytes and status.
func TestCommandThroughSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	via := []string{"-sentinel-master", redistest.MasterName, "-redis", "redis://" + s.Sentinel.Addr()}
	fillInBackground(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, via...)
	waitFilled(t, nil, via...)
	r := runCmd(t, nil, append([]string{"ints", "-n", "3", "-max", "6"}, via...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, lines(r.stdout), 3)
	n, err := s.Primary.Client(t).LLen(context.Background(), "{qrng}:pool").Result()
	require.NoError(t, err)
	assert.Positive(t, n, "the pool is on the primary")

	// The sentinel's address without -sentinel-master: refused, saying so.
	r = runCmd(t, nil, "pool", "status", "-redis", "redis://"+s.Sentinel.Addr())
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "this address is a Redis Sentinel, not the pool's server")
	assert.Contains(t, r.stderr, "-sentinel-master NAME")
}

// connectionsReceived is the server's count of connections accepted.
func connectionsReceived(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	require.NoError(t, err)
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_connections_received:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no total_connections_received in INFO stats")
	return 0
}

// rediss:// for a plaintext port: fill, bytes and status each fail after
// one connection (one handshake, bounded by the URL's dial timeout, never
// retried), with an error that says TLS and names the fix. On a server
// that never answers TLS the handshake can only end by that timeout.
func TestRedissToAPlaintextPortFailsAtOnce(t *testing.T) {
	plain := redistest.Start(t)
	admin := plain.Client(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	url := "rediss://" + plain.Addr() + "?dial_timeout=1s"
	for _, args := range [][]string{
		{"pool", "status", "-redis", url},
		{"bytes", "-n", "8", "-redis", url},
		{"pool", "fill", "-redis", url},
	} {
		before := connectionsReceived(t, admin)
		r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, args...)
		assert.Equal(t, 1, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "no TLS handshake with "+plain.Addr()+" within the dial timeout (1s)", args)
		assert.Contains(t, r.stderr, "rediss:// needs the server's TLS port", args)
		// The admin client's INFO comes on its own connection, made before.
		assert.Equal(t, before+1, connectionsReceived(t, admin), "%v: one connection, no retries", args)
	}
}

// TLS with the user's files, against a real redis-server on its TLS port
// requiring client certificates (tls-auth-clients yes): -redis-ca and
// -redis-cert/-redis-key reach it; without the client certificate, or
// trusting another CA, the error says TLS (and, for the CA, the flag to
// give); the files with a redis:// URL are a usage error.
func TestRedisTLSFiles(t *testing.T) {
	ts := redistest.StartTLS(t, true)
	srv := qrngtest.Start(t, qrngtest.Options{})
	url := "rediss://" + ts.Addr()
	files := []string{"-redis-ca", ts.CAFile, "-redis-cert", ts.ClientCert, "-redis-key", ts.ClientKey}
	fillInBackground(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url}, files...)
	waitFilled(t, map[string]string{"QRNG_REDIS_URL": url}, files...)
	r := runCmd(t, nil, append([]string{"bytes", "-n", "16", "-format", "hex", "-redis", url}, files...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, strings.TrimSpace(r.stdout), 32)

	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no client certificate", []string{"-redis-ca", ts.CAFile}, 1, "tls: certificate required"},
		{"another CA", []string{"-redis-ca", ts.OtherCAFile, "-redis-cert", ts.ClientCert, "-redis-key", ts.ClientKey}, 1,
			"certificate signed by unknown authority (give the CA that signed the server's certificate with -redis-ca FILE)"},
		{"no CA", []string{"-redis-cert", ts.ClientCert, "-redis-key", ts.ClientKey}, 1, "certificate signed by unknown authority"},
		{"cert without key", []string{"-redis-ca", ts.CAFile, "-redis-cert", ts.ClientCert}, 2, "-redis-cert and -redis-key go together"},
		{"a CA file without PEM", []string{"-redis-ca", ts.ClientKey + ".missing"}, 2, "-redis-ca " + ts.ClientKey + ".missing: no such file"},
	} {
		r := runCmd(t, nil, append([]string{"pool", "status", "-redis", url}, c.args...)...)
		assert.Equal(t, c.code, r.code, "%s: %s", c.name, r.stderr)
		assert.Contains(t, r.stderr, c.msg, c.name)
	}
	r = runCmd(t, nil, "pool", "status", "-redis", "redis://"+ts.Addr(), "-redis-ca", ts.CAFile)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "-redis-ca, -redis-cert and -redis-key are for TLS: -redis needs a rediss:// URL")
}

// -redis-file: the URL, password and all, read from a file, so that it
// shows in no command line; the password appears in no output, even of a
// failure; a bad file gets an error naming the file, never its text.
func TestRedisURLFromFile(t *testing.T) {
	url := startRedis(t)
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	admin := redis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	const pw = "file-only-s3cret"
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "fleet", "on", ">"+pw, "~*", "&*", "+@all").Err())
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err()) // only the file's user gets in
	dir := t.TempDir()
	file := filepath.Join(dir, "redis-url")
	require.NoError(t, os.WriteFile(file, []byte("  unix://fleet:"+pw+"@"+strings.TrimPrefix(url, "unix://")+"\n"), 0o600))
	srv := qrngtest.Start(t, qrngtest.Options{})
	fillInBackground(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, "-redis-file", file)
	waitFilled(t, nil, "-redis-file", file)
	r := runCmd(t, nil, "bytes", "-n", "8", "-format", "hex", "-redis-file", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, strings.TrimSpace(r.stdout), 16)
	r = runCmd(t, map[string]string{"QRNG_REDIS_URL": "redis://127.0.0.1:1"}, "pool", "status", "-redis-file", file)
	require.Equal(t, 0, r.code, "-redis-file wins over QRNG_REDIS_URL: %s", r.stderr)

	wrongPW := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrongPW, []byte("unix://fleet:not-"+pw+"@"+strings.TrimPrefix(url, "unix://")), 0o600))
	twoLines := filepath.Join(dir, "two")
	require.NoError(t, os.WriteFile(twoLines, []byte(url+"\n"+url+"\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("ftp://fleet:"+pw+"@host"), 0o600))
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"pool", "status", "-redis-file", wrongPW}, 1, "WRONGPASS"},
		{[]string{"pool", "status", "-redis-file", twoLines}, 2, "-redis-file " + twoLines + " holds more than one line"},
		{[]string{"pool", "status", "-redis-file", empty}, 2, "-redis-file " + empty + " is empty"},
		{[]string{"pool", "status", "-redis-file", garbage}, 2, "-redis-file " + garbage + ": not a Redis URL"},
		{[]string{"pool", "status", "-redis-file", filepath.Join(dir, "none")}, 2, "-redis-file " + filepath.Join(dir, "none") + ": no such file"},
		{[]string{"bytes", "-n", "8", "-redis-file", file, "-redis", url}, 2, "-redis and -redis-file exclude each other"},
	} {
		r := runCmd(t, nil, c.args...)
		assert.Equal(t, c.code, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.msg, c.args)
		assert.NotContains(t, r.stdout+r.stderr, pw, c.args)
	}
}

// The README never puts a password in a command line: no shell block
// (```sh) and no inline command (`qrng ...`, `-redis ...`, `export ...`,
// `QRNG_REDIS_URL=...`) holds a URL with a password. (A file's content,
// in a block of its own, may.)
func TestReadmeShowsNoPasswordOnACommandLine(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	withPassword := regexp.MustCompile(`[a-z]+://[^\s/@:]*:[^\s/@]+@`)
	inline := regexp.MustCompile("`([^`]*)`")
	shell, commands := false, 0
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "```sh"):
			shell = true
			continue
		case strings.HasPrefix(l, "```"):
			shell = false
			continue
		}
		var cmds []string
		if shell {
			cmds = append(cmds, l)
		}
		for _, m := range inline.FindAllStringSubmatch(l, -1) {
			if c := m[1]; strings.HasPrefix(c, "qrng ") || strings.HasPrefix(c, "-redis") || strings.HasPrefix(c, "export ") ||
				strings.HasPrefix(c, "QRNG_REDIS_URL=") {
				cmds = append(cmds, c)
			}
		}
		for _, c := range cmds {
			commands++
			assert.False(t, withPassword.MatchString(c), "README.md:%d: a password in a command line: %s", i+1, c)
		}
	}
	assert.Greater(t, commands, 50, "the README's command lines were found")
}

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// metricsBase waits for pool fill's line naming its metrics address and
// returns the server's base URL.
func metricsBase(t *testing.T, p *proc) string {
	t.Helper()
	var base string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`metrics on (http://\S+)/metrics, health on /healthz`).FindStringSubmatch(p.stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, time.Minute, 10*time.Millisecond, "stderr: %q", p.stderr.String())
	return base
}

// 'pool fill -metrics ADDR': /metrics serves the filler's and the pool's
// metrics, every one the README names for them; /healthz answers 200
// "filling" while the filler fills and 503 once the quota (here one
// batch) is spent.
func TestPoolFillMetrics(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	const batchBits = 100352 * 16 // pool fill's batch at -bits 16
	p := startQrng(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url}, nil, nil,
		"pool", "fill", "-target", "64KiB", "-chunk", "1KiB", "-quota", strconv.Itoa(batchBits), "-daily", "off", "-metrics", "127.0.0.1:0")
	base := metricsBase(t, p)
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = get(t, base+"/healthz")
		return code == 200
	}, time.Minute, 10*time.Millisecond)
	assert.Equal(t, "filling\n", body)
	waitFilled(t, map[string]string{"QRNG_REDIS_URL": url})

	code, body := get(t, base+"/metrics")
	require.Equal(t, 200, code)
	for _, name := range readmeMetricNames(t, "qrng_filler_", "qrng_pool_") {
		assert.Regexp(t, "(?m)^"+name+"\\{", body, "README names %s", name)
	}
	assert.Regexp(t, `(?m)^qrng_filler_reserved_bits_total\{filler="[^"]+"\} 1\.605632e\+06$`, body)
	assert.Regexp(t, `(?m)^qrng_pool_status_up\{prefix=""\} 1$`, body)
	assert.Regexp(t, `(?m)^qrng_pool_quota_limit_bits\{prefix=""\} 1\.605632e\+06$`, body)

	// Drain the pool (one batch: 196 chunks) below its low mark (32
	// chunks): the next reservation finds the quota spent.
	r := runCmd(t, map[string]string{"QRNG_REDIS_URL": url}, "bytes", "-n", "180KiB", "-format", "hex")
	require.Equal(t, 0, r.code, r.stderr)
	require.Eventually(t, func() bool { code, _ := get(t, base+"/healthz"); return code == 503 }, time.Minute, 10*time.Millisecond,
		"status: %+v; filler: %s", runCmd(t, map[string]string{"QRNG_REDIS_URL": url}, "pool", "status"), p.stderr.String())
	_, body = get(t, base+"/healthz")
	assert.Equal(t, "not filling: the month's quota is spent\n", body)
	_, body = get(t, base+"/metrics")
	assert.Regexp(t, `(?m)^qrng_filler_quota_blocked\{filler="[^"]+"\} 1$`, body)

	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(t), p.stderr.String())
}

// readmeMetricNames are the README's metric names (in "Watching a pool")
// that start with one of prefixes.
func readmeMetricNames(t *testing.T, prefixes ...string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "### Watching a pool")
	require.GreaterOrEqual(t, i, 0)
	s = s[i+1:]
	s = s[:strings.Index(s, "\n#")]
	var names []string
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("`(qrng_[a-z_]+)`").FindAllStringSubmatch(s, -1) {
		for _, p := range prefixes {
			if strings.HasPrefix(m[1], p) && !seen[m[1]] {
				seen[m[1]] = true
				names = append(names, m[1])
			}
		}
	}
	require.NotEmpty(t, names)
	return names
}

// 'pool status -json': one JSON object with the text's facts.
func TestPoolStatusJSON(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	env := map[string]string{"QRNG_REDIS_URL": url}
	fillInBackground(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url})
	waitFilled(t, env)
	r := runCmd(t, env, "pool", "status", "-json")
	require.Equal(t, 0, r.code, r.stderr)
	var st struct {
		Prefix       string `json:"prefix"`
		RedisVersion string `json:"redis_version"`
		Chunks       int64  `json:"chunks"`
		ChunkSize    int    `json:"chunk_size"`
		Bytes        int64  `json:"bytes"`
		QuotaUsed    int64  `json:"quota_used_bits"`
		QuotaLimit   int64  `json:"quota_limit_bits"`
		DailyShare   int64  `json:"daily_share_bits"`
		MonthRenews  string `json:"month_renews"`
		Filling      bool   `json:"filling"`
		Fillers      []struct {
			ID    string `json:"id"`
			TTLms int64  `json:"heartbeat_ttl_ms"`
		} `json:"fillers"`
	}
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &raw))
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, "{qrng}", st.Prefix)
	assert.True(t, strings.HasPrefix(st.RedisVersion, "7."), st.RedisVersion)
	assert.Equal(t, 1024, st.ChunkSize)
	assert.Equal(t, st.Chunks*1024, st.Bytes)
	assert.Positive(t, st.Chunks)
	assert.Equal(t, srv.Counters().BitsServed, st.QuotaUsed)
	assert.Equal(t, int64(1000000000), st.QuotaLimit)
	assert.Positive(t, st.DailyShare)
	_, err := time.Parse(time.RFC3339, st.MonthRenews)
	assert.NoError(t, err)
	assert.True(t, st.Filling)
	require.Len(t, st.Fillers, 1)
	assert.Positive(t, st.Fillers[0].TTLms)
	for _, k := range []string{"month", "day", "day_used_bits", "daily", "days_left", "day_renews", "quota_spent_until", "daily_spent"} {
		assert.Contains(t, raw, k)
	}
}

// /healthz answers 503 "not filling" once the filler has failed to fill
// for a heartbeat's lifetime (here the service answers 503 to every
// request), as consumers then stop waiting.
func TestPoolFillHealthWhileFailing(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.Start(t, qrngtest.Options{})
	srv.Inject(qrngtest.Fault{Status: 503, Body: `{"detail":"down"}`, Times: -1})
	p := startQrng(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL, "QRNG_REDIS_URL": url}, nil, nil,
		"pool", "fill", "-target", "64KiB", "-chunk", "1KiB", "-metrics", "127.0.0.1:0")
	base := metricsBase(t, p)
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = get(t, base+"/healthz")
		return code == 503 && strings.Contains(body, "failing")
	}, time.Minute, 20*time.Millisecond, "last: %q", body)
	assert.Equal(t, "not filling: failing to fill, with nothing pushed for a heartbeat's lifetime (see the log)\n", body)
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(t))
}
