package qrng

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

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

func TestLocalErasesServedAndClosedBytes(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1})
	l := src.Local()
	for range 10 {
		l.Uint64()
	}
	assert.Equal(t, make([]byte, 80), l.buf[:80], "served bytes are erased")
	assert.NotEqual(t, make([]byte, localBlock-80), l.buf[80:], "unserved bytes are still there")
	require.NoError(t, l.Close())
	assert.Equal(t, make([]byte, localBlock), l.buf[:], "Close erases the rest")
	l.Uint64() // usable again
	assert.EqualValues(t, 2*localBlock, src.Stats().QuantumBytes, "each block is taken from the Source once")
}

func TestLocalPanicsLikeUint64(t *testing.T) {
	srv := newServer(t, qrngtest.Options{})
	src := newTestSource(t, srv, Config{BatchSize: 1000, Workers: 1})
	l := src.Local()
	require.NoError(t, src.Close())
	assert.PanicsWithError(t, ErrClosed.Error(), func() { l.Uint64() })
	assert.Equal(t, make([]byte, localBlock), l.buf[:])
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
