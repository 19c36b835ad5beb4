package redispool

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 17, item 2: with a pool key, whoever can push to the list cannot
// make a consumer serve bytes of their choosing.
func TestForeignChunksErased(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	key := []byte("0123456789abcdef0123456789abcdef")
	k := newKeys("auth")

	cfg := testFillerConfig(srv, rdb, "auth")
	cfg.Key, cfg.Workers, cfg.Target = key, 1, testBatchBytes
	fillAndStop(t, cfg)

	// Pushed by someone with RPUSH and no key: a chunk sealed as an
	// unkeyed pool's, one with a made-up MAC, and bare bytes.
	chosen := []byte(strings.Repeat("chosen bytes ", testChunk/13+1)[:testChunk])
	gen := serverGen(t, rdb, k)
	plain := make([]byte, sealedLen+testChunk)
	seal(plain, gen, chosen, nil)
	forged := make([]byte, sealedLen+macLen+testChunk)
	seal(forged, gen, chosen, newMacer("auth", []byte("another key, not the pool's one")))
	require.NoError(t, rdb.RPush(ctx, k.pool, plain, forged, chosen).Err())

	var logs syncBuffer
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "auth", ChunkSize: testChunk, Key: key,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	var stream []byte
	for {
		p := make([]byte, testChunk)
		n, err := c.Fetch(ctx, p)
		if err != nil {
			require.ErrorIs(t, err, ErrPoolEmpty)
			break
		}
		stream = append(stream, p[:n]...)
	}
	idx := chunkIndex(t, srv, testBits, testChunk)
	assert.Equal(t, testBatchChunks, checkServed(t, idx, [][]byte{stream}), "the filler's chunks, and nothing else")
	assert.NotContains(t, string(stream), "chosen bytes")
	assert.Equal(t, int64(3), c.Stats().Foreign)
	assert.Equal(t, 1, strings.Count(logs.String(), "not a chunk sealed by its fillers"), "logged once: %s", logs.String())

	st, err := ReadStatus(ctx, rdb, "auth")
	require.NoError(t, err)
	assert.Equal(t, "hmac-sha256 "+keyID(key), st.Auth)
	assert.NotContains(t, st.Auth, string(key))

	// A consumer without the key, or with another, fails before it pops
	// anything, naming the fix: it would erase every chunk, and the
	// fillers would spend the quota refilling what it empties (the
	// hostile review: a wrong key emptied a pool and spent the day's
	// share in 4 seconds).
	fillAndStop(t, cfg)
	before := rdb.LLen(ctx, k.pool).Val()
	require.Positive(t, before)
	bare := newTestConsumer(t, rdb, "auth")
	_, err = bare.Fetch(ctx, make([]byte, testChunk))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redispool: the pool's chunks are sealed with "hmac-sha256 `+keyID(key)+`" (auth in auth:meta) and this consumer has no key`)
	wrong, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "auth", ChunkSize: testChunk, Key: []byte("fedcba9876543210fedcba9876543210")})
	require.NoError(t, err)
	_, err = wrong.Fetch(ctx, make([]byte, testChunk))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "and this consumer has a key with id "+keyID([]byte("fedcba9876543210fedcba9876543210")))
	assert.NotContains(t, err.Error(), "fedcba9876543210")
	assert.Equal(t, before, rdb.LLen(ctx, k.pool).Val(), "nothing was popped")
	assert.Zero(t, bare.Stats().Foreign+wrong.Stats().Foreign)

	// A filler with another key refuses to run.
	other := cfg
	other.Key = []byte("fedcba9876543210fedcba9876543210")
	rctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	err = newTestFiller(t, other).Run(rctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redispool: FillerConfig.Key (chunks sealed \"hmac-sha256 "+keyID(other.Key)+"\") differs from the pool's")
	assert.NotContains(t, err.Error(), string(other.Key))
}

// Without a key the pool works as before and says its chunks are
// unauthenticated; the key comes from $QRNG_POOL_KEY or a file, and a
// short one is refused.
func TestPoolKeySources(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	cfg := testFillerConfig(srv, rdb, "nokey")
	cfg.Workers, cfg.Target = 1, testBatchBytes
	fillAndStop(t, cfg)
	st, err := ReadStatus(ctx, rdb, "nokey")
	require.NoError(t, err)
	assert.Equal(t, "none", st.Auth)
	n, err := newTestConsumer(t, rdb, "nokey").Fetch(ctx, make([]byte, testChunk))
	require.NoError(t, err)
	assert.Equal(t, testChunk, n)

	t.Setenv(EnvPoolKey, "short")
	_, err = NewConsumer(ConsumerConfig{Redis: rdb})
	assert.ErrorContains(t, err, "redispool: $QRNG_POOL_KEY is 5 bytes: want at least 16")
	assert.NotContains(t, err.Error(), "short")

	t.Setenv(EnvPoolKey, "")
	file := filepath.Join(t.TempDir(), "pool.key")
	require.NoError(t, os.WriteFile(file, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	t.Setenv(EnvPoolKeyFile, file)
	fcfg := testFillerConfig(srv, rdb, "filekey")
	fcfg.Workers, fcfg.Target = 1, testBatchBytes
	f := newTestFiller(t, fcfg)
	assert.Equal(t, []byte("0123456789abcdef0123456789abcdef"), f.key, "from the file, without its newline")
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "filekey", ChunkSize: testChunk})
	require.NoError(t, err)
	stop := runFiller(t, f)
	tctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	n, err = c.Fetch(tctx, make([]byte, testChunk))
	require.NoError(t, err)
	assert.Equal(t, testChunk, n)
	require.NoError(t, stop())

	t.Setenv(EnvPoolKeyFile, filepath.Join(t.TempDir(), "missing"))
	_, err = NewConsumer(ConsumerConfig{Redis: rdb})
	assert.ErrorContains(t, err, "redispool: the pool key file ($QRNG_POOL_KEY_FILE): ")
}
