package redispool

import (
	"crypto/sha1"
	"encoding/hex"
)

// How a chunk lies in the pool, tied to the life of the Redis primary it
// was pushed to. Each element of the list is
//
//	format (1 byte: formatPlain) | generation (20 bytes) | chunk
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
	formatPlain = 1 // format byte of a sealed chunk

	genLen    = sha1.Size
	sealedLen = 1 + genLen // bytes before the chunk
)

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

// seal writes chunk, sealed in generation g, into dst, which must hold
// sealedLen+len(chunk) bytes.
func seal(dst []byte, g generation, chunk []byte) {
	dst[0] = formatPlain
	copy(dst[1:], g[:])
	copy(dst[sealedLen:], chunk)
}

// verdict is what opening an element found.
type verdict int

const (
	sealOK    verdict = iota
	sealStale         // sealed in another generation than its server's
	sealBad           // not a sealed chunk (too short, an unknown format)
)

// open checks element v, popped from a server of generation g, and
// returns the offset of its chunk in v.
func open(v string, g generation) (int, verdict) {
	if len(v) < sealedLen+MinChunkSize || v[0] != formatPlain {
		return 0, sealBad
	}
	if v[1:sealedLen] != string(g[:]) {
		return 0, sealStale
	}
	return sealedLen, sealOK
}
