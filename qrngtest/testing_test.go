package qrngtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 9, item 27: Start's server serves during the test and is closed
// when the test ends.
func TestStartClosesTheServerWhenTheTestEnds(t *testing.T) {
	var url string
	t.Run("a test using Start", func(t *testing.T) {
		s := Start(t, Options{Seed: 1})
		url = s.URL
		accessToken(t, s)
		assert.Equal(t, 1, s.Counters().TokenRequests)
	})
	require.NotEmpty(t, url)
	resp, err := http.Post(url+PathAccessToken, "application/json", strings.NewReader(`{"refresh_token": "x"}`))
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the server is closed once the test that started it has ended")
}

// recordTB is a testing.TB that keeps what is logged and the cleanups
// registered, to run them as the testing package does when a test ends.
type recordTB struct {
	testing.TB
	logs     []string
	cleanups []func()
}

func (r *recordTB) Helper()          {}
func (r *recordTB) Log(args ...any)  { r.logs = append(r.logs, fmt.Sprint(args...)) }
func (r *recordTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recordTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// Issue 18, item 21: Start's Logger sends lines to the test's log (so a
// Source's warnings stay out of a passing test's output) and drops those
// logged once the test has ended; NewServer's discards.
func TestStartLoggerWritesToTheTestLog(t *testing.T) {
	tb := &recordTB{}
	s := Start(tb, Options{})
	s.Logger.Warn("qrng: serving crypto/rand bytes instead of quantum bytes", "reason", "scripted")
	require.Len(t, tb.logs, 1)
	assert.Contains(t, tb.logs[0], "level=WARN")
	assert.Contains(t, tb.logs[0], "reason=scripted")
	assert.False(t, strings.HasSuffix(tb.logs[0], "\n"), "one line, without its newline")
	tb.end()
	s.Logger.Warn("after the test")
	assert.Len(t, tb.logs, 1, "nothing is logged once the test has ended")

	n := NewServer(Options{})
	defer n.Close()
	require.NotNil(t, n.Logger)
	assert.False(t, n.Logger.Enabled(context.Background(), slog.LevelError), "NewServer's Logger discards")
}
