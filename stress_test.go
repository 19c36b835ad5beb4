package qrng

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A storm of goroutines mixing Uint64, small and large Reads and Locals,
// with Close arriving in the middle: no byte is served twice, none torn,
// every byte pushed is served once or erased, and the counts are exact.
func TestStormServesEachByteOnceAcrossClose(t *testing.T) {
	rounds := 10
	if testing.Short() || raceEnabled { // the race detector slows each round tenfold
		rounds = 2
	}
	for range rounds { // a lost race is rare in one round: give it many chances
		t.Run("stripes", func(t *testing.T) { storm(t, false) })
		t.Run("one cursor", func(t *testing.T) { storm(t, true) }) // every claim contends
	}
}

func storm(t *testing.T, oneWindow bool) {
	target := int64(2 << 20)
	if testing.Short() {
		target = 1 << 20
	}
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) { return fresh(p) }}
	src := newScriptSource(t, up, Config{Bits: 64, BatchSize: 2048, Workers: 2, BufferSize: 256 << 10,
		Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
	src.oneWindow = oneWindow
	if !oneWindow {
		// Stripes from the start: a round on a quiet machine may see no
		// collision, and this storm is about stripes (the switch itself is
		// TestConcurrentCallersSwitchToStripes).
		src.mu.Lock()
		src.stripeLocked()
		src.mu.Unlock()
	}

	// The trace must not serialize the callers (a mutex here would hide a
	// racy claim): each claim takes a record slot with one atomic add.
	type served struct {
		off int64
		n   int64
	}
	traced := make([]served, 1<<20)
	var nTraced atomic.Int64
	var pushed [][]byte           // the batches' own memory
	var stream []byte             // a copy of everything pushed, in stream order
	src.onPush = func(p []byte) { // under the Source's lock
		pushed = append(pushed, p)
		stream = append(stream, p...)
	}
	src.trace = func(off int64, p []byte) {
		if i := nTraced.Add(1) - 1; i < int64(len(traced)) {
			traced[i] = served{off, int64(len(p))}
		}
	}

	const goroutines = 16
	var got atomic.Int64
	values := make([][]uint64, goroutines)
	received := make([][256]int64, goroutines) // histogram of bytes each goroutine received
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			l := src.Local()
			count := func(p []byte) {
				for _, c := range p {
					received[g][c]++
				}
				got.Add(int64(len(p)))
			}
			for {
				var err error
				switch op := r.IntN(4); op {
				case 0, 1:
					func() {
						defer func() {
							if e := recover(); e != nil {
								err = e.(error)
							}
						}()
						var v uint64
						if op == 0 {
							v = src.Uint64()
						} else {
							v = l.Uint64()
						}
						values[g] = append(values[g], v)
						count(binary.BigEndian.AppendUint64(nil, v))
					}()
				case 2:
					p := make([]byte, 1+r.IntN(100))
					var n int
					n, err = src.Read(p)
					count(p[:n])
				case 3:
					p := make([]byte, 300+r.IntN(5000)) // the locked path
					var n int
					n, err = src.Read(p)
					count(p[:n])
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return got.Load() >= target }, 5*time.Minute, time.Millisecond)
	require.NoError(t, src.Close())
	wg.Wait()

	require.LessOrEqual(t, nTraced.Load(), int64(len(traced)), "trace records overflowed")
	traced = traced[:nTraced.Load()]
	// Every range served lies in the stream and no two ranges overlap.
	sort.Slice(traced, func(i, j int) bool { return traced[i].off < traced[j].off })
	var total int64
	var tracedHist [256]int64
	for i, r := range traced {
		require.LessOrEqual(t, r.off+r.n, int64(len(stream)), "range %d lies past the stream", i)
		if i > 0 && traced[i-1].off+traced[i-1].n > r.off {
			t.Fatalf("ranges at %d and %d overlap: a byte served twice", traced[i-1].off, r.off)
		}
		total += r.n
		for _, c := range stream[r.off : r.off+r.n] {
			tracedHist[c]++
		}
	}
	// What the callers received is what those ranges held: not zeros, not
	// another range's bytes (the byte values' counts agree).
	var recvHist [256]int64
	for g := range received {
		for c, n := range received[g] {
			recvHist[c] += n
		}
	}
	// A value that Close cut short was claimed, then erased, not received:
	// at most 7 bytes per goroutine.
	lost := total - got.Load()
	assert.True(t, lost >= 0 && lost <= 7*goroutines, "%d bytes claimed but not received", lost)
	for c := range tracedHist {
		if d := tracedHist[c] - recvHist[c]; d < 0 || d > lost {
			t.Fatalf("byte value %#02x: received %d times, served %d times", c, recvHist[c], tracedHist[c])
		}
	}
	assert.Equal(t, got.Load(), src.Stats().QuantumBytes, "Stats count exactly what was received")
	seen := make(map[uint64]bool)
	for _, vs := range values {
		for _, v := range vs {
			require.False(t, seen[v], "a value served twice")
			seen[v] = true
		}
	}
	// Every pushed byte was served once or erased: all of it is zero now.
	for i, p := range pushed {
		if !bytes.Equal(p, make([]byte, len(p))) {
			t.Fatalf("batch %d still holds bytes after Close", i)
		}
	}
	assert.Zero(t, src.Stats().Buffered)
	assert.Equal(t, !oneWindow, src.stripes.Load() != nil, "stripes only where asked for")
}

// Tight loops on one cursor: the claim must be one atomic step. (A claim
// made of a load and a store serves values twice here within a few
// thousand calls.)
func TestClaimsOnOneCursorAreAtomic(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) { return fresh(p) }}
	src := newScriptSource(t, up, Config{Bits: 64, BatchSize: 8192, Workers: 2, BufferSize: 1 << 20,
		Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
	src.oneWindow = true
	const goroutines = 8
	each := 250_000
	if testing.Short() || raceEnabled {
		each = 40_000
	}
	vals := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			vals[g] = make([]uint64, 0, each)
			var p [16]byte
			for i := range each {
				if i%4 == 3 {
					if _, err := src.Read(p[:]); err != nil {
						t.Error(err)
						return
					}
					vals[g] = append(vals[g], binary.BigEndian.Uint64(p[:8]), binary.BigEndian.Uint64(p[8:]))
					continue
				}
				vals[g] = append(vals[g], src.Uint64())
			}
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool, goroutines*each*2)
	for _, vs := range vals {
		for _, v := range vs {
			if seen[v] {
				t.Fatalf("value %#x served twice", v)
			}
			seen[v] = true
		}
	}
	assert.EqualValues(t, 8*len(seen), src.Stats().QuantumBytes)
}

// Issue 11: no path allocates per call: the lock-free path, the locked
// path, mixing and fallback.
func TestNoAllocationsPerCall(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"quantum", Config{}},
		{"mix", Config{Mix: true}},
		{"fallback", Config{Token: "", Fallback: FallbackOnError}},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) { return fresh(p) }}
			if c.name == "fallback" {
				up.script = func(ctx context.Context, call int, p []byte) (int, error) {
					return 0, fmt.Errorf("%w: scripted outage", ErrServer)
				}
			}
			cfg := c.cfg
			cfg.Bits, cfg.BatchSize, cfg.BufferSize, cfg.WaitTimeout = 64, 1<<17, 8<<20, time.Minute
			src := newScriptSource(t, up, cfg)
			src.cooldown = time.Hour // fallback stays on: no refetch during the count
			var p [32]byte
			src.Read(p[:]) // warm up: first fill, or the switch to fallback
			if c.name != "fallback" {
				// Past the slow start: full batches, and a buffer deep
				// enough for the counts below without a wait.
				src.Read(make([]byte, 4<<20))
				// Then no refill during the counts: AllocsPerRun counts every
				// goroutine's allocations, and a worker's fetch (its chunk,
				// the replay check's fingerprints) is not a per-call cost.
				require.Eventually(t, func() bool {
					src.mu.Lock()
					defer src.mu.Unlock()
					src.low = 0
					return src.buf.n >= 2<<20 && src.inflight == 0 && !src.filling
				}, time.Minute, time.Millisecond)
			}
			assert.Zero(t, testing.AllocsPerRun(1000, func() { src.Uint64() }), "Uint64")
			assert.Zero(t, testing.AllocsPerRun(1000, func() { src.Read(p[:]) }), "Read 32 B")
			big := make([]byte, 8<<10)
			assert.Zero(t, testing.AllocsPerRun(100, func() { src.Read(big) }), "Read 8 KiB")
		})
	}
}

// Callers that really collide switch the Source to stripes.
func TestConcurrentCallersSwitchToStripes(t *testing.T) {
	up := &scriptUpstream{script: func(ctx context.Context, call int, p []byte) (int, error) { return fresh(p) }}
	src := newScriptSource(t, up, Config{Bits: 64, BatchSize: 8192, Workers: 2, BufferSize: 1 << 20,
		Fallback: FallbackNever, WaitTimeout: 10 * time.Minute})
	require.Eventually(t, func() bool {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20_000 {
					src.Uint64()
				}
			})
		}
		wg.Wait()
		return src.stripes.Load() != nil
	}, 2*time.Minute, time.Millisecond)
}
