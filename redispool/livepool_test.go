package redispool

import (
	"context"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An empty pool that a "live" filler never fills (its liveness key is
// there, its pushes never come): a Source over it must not hang. Read
// gives up after WaitTimeout, and Close returns promptly although the
// Consumer's Fetch is waiting.
func TestLiveButEmptyPoolDoesNotHang(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, newKeys("rv").alive, "ok", time.Hour).Err())
	src := newPoolSource(t, rs, "rv", qrng.Config{Fallback: qrng.FallbackNever, WaitTimeout: 300 * time.Millisecond, Workers: 2})
	errc := make(chan error, 1)
	go func() { _, err := src.Read(make([]byte, 64)); errc <- err }()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(20 * time.Second):
		t.Fatal("Read hung on a live but empty pool")
	}
	done := make(chan struct{})
	go func() { src.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung while Fetch waited on the pool")
	}
}
