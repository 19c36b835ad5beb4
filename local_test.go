package qrng

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/bitpack"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocalServesTheStreamInOrder(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 21, Record: true})
	src := newTestSource(t, srv, Config{Bits: 16, BatchSize: 1000, Workers: 1})
	l := src.Local()
	var got []byte
	put := func(v uint64) { got = binary.BigEndian.AppendUint64(got, v) }
	for range 70 { // crosses a 512-byte block
		put(l.Uint64())
	}
	odd := make([]byte, 13) // leaves a tail shorter than 8 bytes
	_, err := l.Read(odd)
	require.NoError(t, err)
	got = append(got, odd...)
	for range 70 {
		put(l.Uint64())
	}
	big := make([]byte, 3000) // more than a block: served past it, from the Source
	_, err = l.Read(big)
	require.NoError(t, err)
	got = append(got, big...)

	p := bitpack.New(16, nil)
	for _, v := range concat(srv.Batches()) {
		p.Add(v)
	}
	stream := p.Bytes()
	require.GreaterOrEqual(t, len(stream), len(got))
	assert.Equal(t, stream[:len(got)], got, "the Local's output is the service's stream, in order")

	// The drop-in idiom over a Local.
	r := rand.New(l)
	assert.Less(t, r.IntN(10), 10)
}

// A Local whose refill fails serves nothing erased afterwards: the
// first release served the zeroed tail of its block with a nil error.
func TestLocalAfterFailedRefillServesNoErasedBytes(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 3, Record: true})
	src := newTestSource(t, srv, Config{Bits: 16, BatchSize: 256, Workers: 1, OnDemand: true,
		Fallback: FallbackNever, MaxRetries: -1})
	l := src.Local()
	first := l.Uint64()
	head := make([]byte, 505) // 8 + 505 = 513: one byte past the first batch
	srv.Inject(qrngtest.Fault{Status: 503, Times: 1000})
	_, err := l.Read(head)
	require.Error(t, err, "the second batch cannot be had")
	assert.Panics(t, func() { l.Uint64() })
	tail := make([]byte, 3)
	n, err := l.Read(tail)
	if err == nil {
		assert.NotEqual(t, make([]byte, n), tail[:n], "bytes served after a failed refill are not erased ones")
	}
	// Once the service is back, the stream goes on where it stopped: what
	// was served is the service's, in order, and nothing is zeroed.
	srv.ClearFaults()
	var v uint64
	require.Eventually(t, func() bool { // past the Source's cooldown
		defer func() { recover() }()
		v = l.Uint64()
		return true
	}, 10*time.Second, 5*time.Millisecond)
	p := bitpack.New(16, nil)
	for _, x := range concat(srv.Batches()) {
		p.Add(x)
	}
	stream := p.Bytes()
	assert.Equal(t, binary.BigEndian.Uint64(stream[:8]), first)
	assert.Contains(t, string(stream), string(binary.BigEndian.AppendUint64(nil, v)), "a later value is the service's")
}

// After Source.Close every Local fails with ErrClosed, and holds nothing.
func TestLocalFailsAfterSourceClose(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1})
	l := src.Local()
	l.Uint64() // the first release took a 512-byte block here and kept serving it after Close
	require.NoError(t, src.Close())
	assert.PanicsWithError(t, ErrClosed.Error(), func() { l.Uint64() })
	n, err := l.Read(make([]byte, 8))
	assert.ErrorIs(t, err, ErrClosed)
	assert.Zero(t, n)
	assert.NoError(t, l.Close())
}

func TestLocalPanicsLikeUint64(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1})
	l := src.Local()
	require.NoError(t, src.Close())
	assert.PanicsWithError(t, ErrClosed.Error(), func() { l.Uint64() })
}

// Locals in many goroutines never see the same bytes.
func TestLocalsServeEachByteOnce(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{Bits: 64, BatchSize: 4096, Workers: 2})
	const goroutines, each = 16, 5000
	vals := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := src.Local()
			defer l.Close()
			for range each {
				vals[g] = append(vals[g], l.Uint64())
			}
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool, goroutines*each)
	for _, vs := range vals {
		for _, v := range vs {
			require.False(t, seen[v], "a 64-bit value served twice") // collisions of random 64-bit values: ~1e-11
			seen[v] = true
		}
	}
	assert.Len(t, seen, goroutines*each)
	assert.Zero(t, src.Stats().FallbackBytes)
}
