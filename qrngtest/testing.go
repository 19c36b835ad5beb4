package qrngtest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Start starts a Server for opts and registers its Close with tb.Cleanup:
// the server shuts down when the test, benchmark or subtest that started
// it ends (after its subtests), with no Close to call. Like NewServer, it
// panics if opts is invalid.
//
// The Server's Logger writes to tb.Log, so that a Source given it (as
// Config.Logger) keeps its fallback warnings out of a passing test's
// output (go test shows them with -v, or when the test fails); lines
// logged after the test has ended are dropped.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := NewServer(opts)
	w := &tbWriter{tb: tb}
	s.Logger = slog.New(slog.NewTextHandler(w, nil))
	tb.Cleanup(func() {
		w.end()
		s.Close()
	})
	return s
}

// tbWriter sends each line to tb.Log until the test ends.
type tbWriter struct {
	mu    sync.Mutex
	tb    testing.TB
	ended bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) end() {
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
}
