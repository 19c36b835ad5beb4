package qrngtest

import (
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
