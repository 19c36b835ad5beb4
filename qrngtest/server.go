package qrngtest

import (
	"log/slog"
	"net/http/httptest"
)

// Server is an Emulator listening on a loopback address. It is safe for
// concurrent use.
type Server struct {
	*Emulator
	URL   string // base URL, e.g. http://127.0.0.1:41234, with no trailing slash
	Token string // an API token the server accepts
	// Logger is a logger for the code under test (a qrng.Config's
	// Logger), so that its warnings stay out of the output: from Start it
	// writes to the test's log (shown with -v or when the test fails),
	// from NewServer it discards.
	Logger *slog.Logger

	hs *httptest.Server
}

// NewServer starts and returns a new Server. The caller should call Close
// when finished, to shut it down.
func NewServer(opts Options) *Server {
	e := New(opts)
	hs := httptest.NewServer(e)
	return &Server{Emulator: e, URL: hs.URL, Token: e.Token(), Logger: slog.New(slog.DiscardHandler), hs: hs}
}

// Close ends pending slow answers, closes the connections and shuts the
// server down, waiting for handlers to return.
func (s *Server) Close() {
	s.Shutdown()
	s.hs.CloseClientConnections()
	s.hs.Close()
}
