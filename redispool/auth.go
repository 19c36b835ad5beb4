package redispool

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"strings"
)

// Authenticated chunks. With a pool key, shared by a pool's fillers and
// consumers, each sealed chunk carries an HMAC-SHA256 (format formatMAC,
// see seal.go) over a domain string, the pool's prefix, the format byte,
// the generation and the chunk, so that whoever can push to the list
// cannot make consumers serve bytes of their choosing: a consumer with
// the key erases any element whose MAC fails, or that has none
// (ConsumerStats.Foreign), and logs the first. Without a key, chunks carry
// no MAC and are served as they come (the pool's settings say "none").

// MinKeySize is the shortest pool key accepted, in bytes.
const MinKeySize = 16

// EnvPoolKey and EnvPoolKeyFile name the environment variables a
// FillerConfig or ConsumerConfig without a Key reads it from: the key
// itself, or a file that holds it (a trailing newline is dropped).
const (
	EnvPoolKey     = "QRNG_POOL_KEY"
	EnvPoolKeyFile = "QRNG_POOL_KEY_FILE"
)

// macDomain starts every MAC's input: a MAC of a chunk of this package is
// valid for nothing else.
const macDomain = "qrng/redispool chunk v1\x00"

const macLen = sha256.Size

// poolKey is the key given, else the one the environment names; nil for
// none. field names the configuration field, for errors.
func poolKey(field string, key []byte) ([]byte, error) {
	from := field
	if len(key) == 0 {
		if v := os.Getenv(EnvPoolKey); v != "" {
			key, from = []byte(v), "$"+EnvPoolKey
		} else if path := os.Getenv(EnvPoolKeyFile); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("redispool: the pool key file ($%s): %w", EnvPoolKeyFile, err)
			}
			key, from = []byte(strings.TrimRight(string(b), "\r\n")), "the pool key file ($"+EnvPoolKeyFile+")"
		}
	}
	if len(key) == 0 {
		return nil, nil
	}
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("redispool: %s is %d bytes: want at least %d (for example 32 random bytes, hex-encoded)", from, len(key), MinKeySize)
	}
	return append([]byte(nil), key...), nil
}

// authSetting is how the pool's settings record its keying: "none", or
// "hmac-sha256 <key id>".
func authSetting(key []byte) string {
	if key == nil {
		return "none"
	}
	return "hmac-sha256 " + keyID(key)
}

// keyID names a key without revealing it: 8 bytes, in hex, of an HMAC of
// a fixed string under it.
func keyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("qrng/redispool key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// macer computes chunk MACs for one pool. It is not safe for concurrent
// use.
type macer struct {
	prefix string
	mac    hash.Hash
}

func newMacer(prefix string, key []byte) *macer {
	return &macer{prefix: prefix, mac: hmac.New(sha256.New, key)}
}

// sum appends the MAC of chunk, sealed in generation g, to out.
func (m *macer) sum(out []byte, g []byte, chunk []byte) []byte {
	m.mac.Reset()
	m.mac.Write([]byte(macDomain))
	m.mac.Write([]byte(m.prefix))
	m.mac.Write([]byte{0, formatMAC})
	m.mac.Write(g)
	m.mac.Write(chunk)
	return m.mac.Sum(out)
}

// verify reports whether mac is chunk's MAC in generation g.
func (m *macer) verify(mac, g, chunk []byte) bool {
	var buf [macLen]byte
	return hmac.Equal(m.sum(buf[:0], g, chunk), mac)
}
