package main

import (
	"context"
	"encoding/hex"
	"strings"
	"sync"
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
	wg.Go(func() { fill = runCmdCtx(t, ctx, env, append([]string{"pool", "fill", "-target", "64KiB", "-chunk", "1KiB"}, args...)...) })
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
