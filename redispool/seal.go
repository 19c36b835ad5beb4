package redispool

import (
	"crypto/sha1"
	"encoding/hex"
	"unsafe"
)

// How a chunk lies in the pool, tied to the life of the Redis primary it
// was pushed to. Each element of the list is
//
//	format (1 byte) | generation (20 bytes) | MAC (32 bytes, formatMAC only) | chunk
//
// (for the MAC, see auth.go).
//
// The generation names one primary's life: the SHA-1 of its run_id (new
// at every start of a redis-server process) and its replication ID (new
// whenever a server becomes a primary), so that a server restarted from
// its files (RDB or AOF), a promoted replica, or an old primary promoted
// again after a failover each have a generation of their own. Pushes
// seal chunks in the server's generation (the push script refuses
// another), and a consumer serves a chunk only when the server that
// popped it is of the chunk's generation, as a script in the same
// pipeline as the pop reports it. So a chunk popped, and served, before a
// crash or a failover, whose pop the next server never saw, is there
// again in an older generation: it is erased unserved (and fillers wipe
// such chunks from the head of the pool).
//
// Why that holds: a chunk of generation G is pushed only during G's life.
// A pop that a later check finds in G happened in G's life too (lives
// follow one another, and a generation never comes back), where each
// chunk is popped once. Copies of it in any later life are of another
// generation than their server's.

const (
	formatPlain = 1 // no MAC: the pool has no key
	formatMAC   = 2 // an HMAC-SHA256 under the pool's key

	genLen    = sha1.Size
	sealedLen = 1 + genLen // bytes before the chunk, formatPlain
)

// headerLen is the bytes a sealed element has before its chunk.
func headerLen(m *macer) int {
	if m != nil {
		return sealedLen + macLen
	}
	return sealedLen
}

// generation names one primary's life: see above.
type generation [genLen]byte

func (g generation) String() string { return hex.EncodeToString(g[:]) }

// genFromHex reads a generation in hex, as the scripts return it.
func genFromHex(s string) (generation, bool) {
	var g generation
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != genLen {
		return g, false
	}
	copy(g[:], b)
	return g, true
}

// seal writes chunk, sealed in generation g (with a MAC if m is not
// nil), into dst, which must hold headerLen(m)+len(chunk) bytes.
func seal(dst []byte, g generation, chunk []byte, m *macer) {
	dst[0] = formatPlain
	copy(dst[1:], g[:])
	if m != nil {
		dst[0] = formatMAC
		m.sum(dst[sealedLen:sealedLen], g[:], chunk)
	}
	copy(dst[headerLen(m):], chunk)
}

// verdict is what opening an element found.
type verdict int

const (
	sealOK       verdict = iota
	sealStale            // sealed in another generation than its server's
	sealBad              // not a chunk sealed by a filler of the pool: too short, an unknown format, a MAC that fails or none under a key
	sealNeedsKey         // a MAC, and no key to check it
)

// open checks element v, popped from a server of generation g, under the
// pool key's macer m (nil: no key), and returns the offset of its chunk
// in v.
func open(v string, g generation, m *macer) (int, verdict) {
	if len(v) < sealedLen+MinChunkSize || v[0] != formatPlain && v[0] != formatMAC {
		return 0, sealBad
	}
	off := sealedLen
	switch {
	case m == nil && v[0] == formatMAC:
		return 0, sealNeedsKey
	case m != nil && v[0] != formatMAC:
		return 0, sealBad
	case m != nil:
		off += macLen
		if len(v) < off+MinChunkSize ||
			!m.verify(view(v[sealedLen:off]), view(v[1:sealedLen]), view(v[off:])) {
			return 0, sealBad
		}
	}
	if v[1:sealedLen] != string(g[:]) {
		return 0, sealStale
	}
	return off, sealOK
}

// view is s's bytes, without a copy (a copy of a chunk would be left
// unerased); nothing may write to them.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
