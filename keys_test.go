package qrng

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ed25519Key makes a key the way Example_ed25519 does, from a server seeded with seed.
func ed25519Key(t *testing.T, seed uint64) (ed25519.PublicKey, []byte) {
	srv := newServer(t, qrngtest.Options{Seed: seed, Record: true})
	src := newTestSource(t, srv, Config{Workers: 1})
	b := make([]byte, ed25519.SeedSize)
	_, err := io.ReadFull(src, b)
	require.NoError(t, err)
	require.Zero(t, src.Stats().FallbackBytes)
	priv := ed25519.NewKeyFromSeed(b)
	return priv.Public().(ed25519.PublicKey), b
}

func TestKeyExampleUsesTheQuantumBytes(t *testing.T) {
	a1, seedBytes := ed25519Key(t, 3)
	a2, _ := ed25519Key(t, 3)
	b, _ := ed25519Key(t, 4)
	assert.Equal(t, a1, a2, "same server seed, same key")
	assert.NotEqual(t, a1, b, "other server seed, other key")
	// The seed bytes are the server's first two 16-bit values onwards.
	want := seededValues(3, 16, 16)
	for i := range 16 {
		assert.Equal(t, want[i], uint64(seedBytes[2*i])<<8|uint64(seedBytes[2*i+1]))
	}
}

// countingReader counts what the standard library reads from it.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += len(p)
	return rand.Read(p)
}

// What the README says of Go 1.26: these calls ignore a custom Reader
// unless GODEBUG=cryptocustomrand=1, and ed25519.GenerateKey reads it.
func TestGo126CustomReaderRules(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "cryptocustomrand=1") {
		t.Skip("GODEBUG=cryptocustomrand=1 restores the old behaviour")
	}
	var c countingReader
	_, err := ecdsa.GenerateKey(elliptic.P256(), &c)
	require.NoError(t, err)
	assert.Zero(t, c.n, "ecdsa.GenerateKey ignores the Reader")

	_, err = rsa.GenerateKey(&c, 1024)
	require.NoError(t, err)
	assert.Zero(t, c.n, "rsa.GenerateKey ignores the Reader")

	_, err = ecdh.X25519().GenerateKey(&c)
	require.NoError(t, err)
	assert.Zero(t, c.n, "ecdh GenerateKey ignores the Reader")

	_, err = rand.Prime(&c, 64)
	require.NoError(t, err)
	assert.Zero(t, c.n, "rand.Prime ignores the Reader")

	_, _, err = ed25519.GenerateKey(&c)
	require.NoError(t, err)
	assert.Equal(t, 32, c.n, "ed25519.GenerateKey reads its seed from the Reader")
}

func TestEd25519GenerateKeyReadsTheSource(t *testing.T) {
	srv := newServer(t, qrngtest.Options{Seed: 3})
	src := newTestSource(t, srv, Config{Workers: 1})
	pub, _, err := ed25519.GenerateKey(src)
	require.NoError(t, err)
	want, _ := ed25519Key(t, 3)
	assert.Equal(t, want, pub, "GenerateKey(src) equals NewKeyFromSeed of the same bytes")
}
