package qrngtest

import "testing"

// Start starts a Server for opts and registers its Close with tb.Cleanup:
// the server shuts down when the test, benchmark or subtest that started
// it ends (after its subtests), with no Close to call. Like NewServer, it
// panics if opts is invalid.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := NewServer(opts)
	tb.Cleanup(s.Close)
	return s
}
