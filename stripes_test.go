package qrng

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 15, item 6: once striped, each slot cuts a window of its own, and
// the first release counted a window's bytes as gone: every new slot
// started a refill, so 64 goroutines taking 8 bytes each (512 bytes in
// all) fetched 45 batches at the smallest size. Bytes in windows count as
// ready: the Source holds at most BufferSize plus one batch, and a
// goroutine whose slot is empty takes other slots' bytes (the general
// path drains them) before anything is refetched.
func TestStripedWindowsDoNotOverfetch(t *testing.T) {
	for _, c := range []struct {
		name      string
		batch     int // BatchSize, 16-bit values
		batchSize int // bytes
		most      int64
	}{
		{"smallest batch", 256, 512, 4*512 + 512},                // BufferSize (4 batches) plus a batch
		{"default batch", 100_000, 200_192, 4*200_192 + 200_192}, // the same bound; slow start keeps it far lower
	} {
		t.Run(c.name, func(t *testing.T) {
			var fetched atomic.Int64
			up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) {
				fetched.Add(int64(len(p)))
				return fresh(p)
			}}
			src := newScriptSource(t, up, Config{Bits: 16, BatchSize: c.batch, Fallback: FallbackNever, WaitTimeout: time.Minute})
			src.mu.Lock()
			src.stripeLocked() // as after a collision
			src.mu.Unlock()
			var wg sync.WaitGroup
			start := make(chan struct{})
			for g := range 64 {
				wg.Go(func() {
					<-start
					if g%2 == 0 {
						src.Uint64()
					} else if _, err := src.Read(make([]byte, 8)); err != nil {
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			// Let any refill the reads started finish.
			require.Eventually(t, func() bool {
				src.mu.Lock()
				defer src.mu.Unlock()
				return src.inflight == 0 && !src.filling
			}, time.Minute, time.Millisecond)
			st := src.Stats()
			assert.EqualValues(t, 512, st.QuantumBytes)
			assert.Equal(t, fetched.Load(), st.FetchedBytes)
			assert.LessOrEqual(t, st.FetchedBytes, c.most, "at most BufferSize plus one batch")
			assert.LessOrEqual(t, st.FetchedBytes, int64(8192), "512 bytes of demand: a few small requests")
			assert.EqualValues(t, st.FetchedBytes-512, st.Buffered, "nothing stranded: fetched = served + ready")
			t.Logf("%d bytes fetched in %d requests for 512 bytes of demand", st.FetchedBytes, up.calls.Load())
		})
	}
}
