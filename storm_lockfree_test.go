package qrng

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// A storm on the real lock-free paths (no trace seam, which forces the
// slow path): goroutines mixing Uint64, Reads of 1..300 bytes, big reads,
// Local, Stats and ReadContext, with Close in the middle. Afterwards:
// every pushed batch's memory is zero, Stats().QuantumBytes equals the
// bytes callers actually received (FallbackNever: every byte is quantum),
// and no goroutine is left.
func TestStormAccountsAndErasesWithoutTrace(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for round := range 8 {
		up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) { return fresh(p) }}
		src := NewSource(Config{Upstream: up, Bits: 64, BatchSize: 2048, Workers: 2, BufferSize: 128 << 10,
			Fallback: FallbackNever, WaitTimeout: time.Minute, Logger: discardLogger()})
		var mu sync.Mutex
		var pushed [][]byte
		src.onPush = func(p []byte) { mu.Lock(); pushed = append(pushed, p); mu.Unlock() }

		var got atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 32 {
			wg.Go(func() {
				buf := make([]byte, 70000)
				loc := src.Local()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var n int
					var err error
					switch (g + i) % 7 {
					case 0, 1:
						func() {
							defer func() {
								if r := recover(); r != nil {
									e, _ := r.(error)
									if !errors.Is(e, ErrClosed) {
										panic(r)
									}
									err = ErrClosed
								}
							}()
							loc.Uint64()
							n = 8
						}()
					case 2, 3:
						n, err = src.Read(buf[:1+(g*31+i)%300])
					case 4:
						n, err = src.Read(buf[:1000+(i*977)%69000])
					case 5:
						n, err = src.ReadContext(context.Background(), buf[:1+i%500])
					case 6:
						_ = src.Stats()
						n, err = loc.Read(buf[:8])
					}
					got.Add(int64(n))
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("round %d: unexpected error %v", round, err)
						}
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(20+round*15) * time.Millisecond)
		var cw sync.WaitGroup
		for range 3 {
			cw.Go(func() { src.Close() })
		}
		cw.Wait()
		close(stop)
		wg.Wait()

		st := src.Stats()
		assert.Equal(t, got.Load(), st.QuantumBytes, "round %d: Stats().QuantumBytes vs bytes callers received", round)
		assert.Zero(t, st.Buffered, "round %d", round)
		mu.Lock()
		require.NotEmpty(t, pushed)
		for i, p := range pushed {
			for j, b := range p {
				if b != 0 {
					t.Errorf("round %d: batch %d byte %d of %d not erased after Close", round, i, j, len(p))
					break
				}
			}
		}
		mu.Unlock()
	}
}
