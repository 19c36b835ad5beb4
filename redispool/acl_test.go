package redispool

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aclLines returns the package documentation's ACL SETUSER lines for the
// pool "{qrng}" (the default prefix), as arguments, with the passwords filled in.
func aclLines(t *testing.T) map[string][]any {
	t.Helper()
	lines := map[string][]any{}
	for _, l := range strings.Split(packageDoc, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(l, "//"))
		if !strings.HasPrefix(l, "ACL SETUSER ") {
			continue
		}
		var args []any
		for _, f := range strings.Fields(l) {
			f = strings.NewReplacer("CONSUMER-PASSWORD", "cpw", "FILLER-PASSWORD", "fpw", "STATUS-PASSWORD", "spw").Replace(f)
			args = append(args, f)
		}
		lines[args[2].(string)] = args
	}
	require.Len(t, lines, 3, "the package documentation gives three ACL users")
	return lines
}

// The ACL lines of the package documentation, applied to a real server:
// the filler user fills, the consumer user fetches (and learns why the
// pool is empty), the status user reads the status, and the consumer user
// can neither read the pool without popping nor write to it.
func TestACLUsers(t *testing.T) {
	rs := startRedis(t)
	admin := rs.client(t, "", "")
	ctx := context.Background()
	for _, args := range aclLines(t) {
		require.NoError(t, admin.Do(ctx, args...).Err(), "%v", args)
	}
	srv := newEmulator(t)
	filler := rs.client(t, "qrng-filler", "fpw")
	consumer := rs.client(t, "qrng-consumer", "cpw")
	status := rs.client(t, "qrng-status", "spw")

	cfg := testFillerConfig(srv, filler, "")
	cfg.QuotaBits = 3 * testBatchBits
	f := newTestFiller(t, cfg)
	stop := runFiller(t, f)
	c := newTestConsumer(t, consumer, "")
	n, err := c.Fetch(ctx, make([]byte, 2*testChunk))
	require.NoError(t, err)
	assert.Equal(t, 2*testChunk, n)

	st, err := ReadStatus(ctx, status, "")
	require.NoError(t, err)
	assert.Positive(t, st.Chunks)
	assert.Len(t, st.Fillers, 1)
	// The filler's user reads the status too: pool fill -metrics does (the
	// hostile review: its line lacked PTTL, and the pool metrics vanished).
	_, err = ReadStatus(ctx, filler, "")
	require.NoError(t, err, "the filler's ACL line lets it read the pool's status")

	// What the consumer must not do.
	for _, cmd := range [][]any{
		{"lrange", "{qrng}:pool", 0, -1},
		{"lindex", "{qrng}:pool", 0},
		{"lpos", "{qrng}:pool", "x"},
		{"sort", "{qrng}:pool", "alpha"},
		{"get", "{qrng}:pool"},
		{"dump", "{qrng}:pool"},
		{"copy", "{qrng}:pool", "mine"},
		{"rpush", "{qrng}:pool", "chosen bytes"},
		{"lpush", "{qrng}:pool", "chosen bytes"},
		{"del", "{qrng}:pool"},
		{"eval", "return redis.call('lrange', KEYS[1], 0, -1)", 1, "{qrng}:pool"},
		{"set", "{qrng}:alive", "ok"},
		{"get", "{qrng}:quota:2026-11"},
		{"hget", "{qrng}:pool", "x"},
		{"hgetall", "{qrng}:meta"},
		{"hget", "{qrng}:ledger:2026-11", "reserved"},
		{"keys", "*"},
	} {
		err := consumer.Do(ctx, cmd...).Err()
		if assert.Error(t, err, "%v", cmd) {
			// A script may run (EVAL reads the generation), not call LRANGE.
			assert.Regexp(t, "NOPERM|The user executing the script can't run this command", err.Error(), "%v", cmd)
		}
	}

	// Quota spent, then no filler: the consumer still tells them apart.
	var ferr error
	for ferr == nil {
		_, ferr = c.Fetch(ctx, make([]byte, 8*testChunk))
	}
	assert.ErrorContains(t, ferr, "quota is spent")
	require.NoError(t, stop())
	_, err = c.Fetch(ctx, make([]byte, testChunk))
	assert.ErrorIs(t, err, ErrPoolEmpty)
	assert.Equal(t, int64(3*testBatchChunks), c.Stats().Chunks)
}
