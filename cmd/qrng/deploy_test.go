package main

import (
	"context"
	"strings"
	"testing"

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
