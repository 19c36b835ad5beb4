package qrng

// A Local is a view of a Source for one goroutine, kept from the first
// release of this package, in which it buffered a private block of bytes
// to skip the Source's lock. That block could outlive Source.Close and
// serve erased bytes after a failed refill, so a Local now holds no bytes
// of its own: every call goes to the Source, which erases, accounts and
// falls back as always. After Source.Close, Read returns ErrClosed and
// Uint64 panics with it.
//
// A Local is safe for concurrent use (it is the Source), but is meant for
// one goroutine.
//
// Deprecated: a Local is the Source it came from and adds nothing: use the
// Source itself (rand.New(src), src.Read). It is kept so that code written
// for the first release compiles.
type Local struct {
	src *Source
}

// Local returns a new Local that takes its bytes from s.
//
// Deprecated: use s itself; see Local.
func (s *Source) Local() *Local {
	return &Local{src: s}
}

// Uint64 is Source.Uint64.
func (l *Local) Uint64() uint64 { return l.src.Uint64() }

// Read is Source.Read.
func (l *Local) Read(p []byte) (int, error) { return l.src.Read(p) }

// Close does nothing and returns nil: a Local holds no bytes to erase.
// The Source's Close erases what the Source holds.
func (l *Local) Close() error { return nil }
