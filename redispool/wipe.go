package redispool

import "unsafe"

// minWipe is the shortest string wipe overwrites. Shorter strings may
// share memory the Go runtime keeps for all of them (single bytes do);
// chunks are never that short.
const minWipe = 64

// wipe overwrites the bytes of s with zeros.
//
// Go strings are immutable, and writing to one is safe only when nothing
// else can see its memory. wipe is used only on the strings go-redis makes
// for the elements of a pop's reply: go-redis reads each bulk string into
// a []byte it allocates for that element alone and turns it into the
// string without copying (or, built with the safe tag, with a copy of its
// own), and Fetch drops the string once wiped. Nothing else holds that
// memory, so zeroing it erases the chunk's bytes instead of leaving them
// for the garbage collector to free unerased.
func wipe(s string) {
	if len(s) < minWipe {
		return
	}
	clear(unsafe.Slice(unsafe.StringData(s), len(s)))
}
