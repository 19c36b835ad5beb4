package redispool

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
)

// The refund rule needs to know whether a request got a 200 answer, which
// the Client's errors do not always say: a 200 body cut short reaches the
// caller as a transport error, like a connection refused before any
// answer. So the filler's HTTP client carries a transport that notes, in
// the context of each RandomNumbers call, when a 200 status arrived (the
// Client's own rule for a Source: only 200 serves numbers).

// answerKey keys the *answerSeen of one RandomNumbers call in its context.
type answerKey struct{}

// answerSeen records that a random-numbers request got a 200 status.
type answerSeen struct{ ok atomic.Bool }

func withAnswerSeen(ctx context.Context) (context.Context, *answerSeen) {
	a := new(answerSeen)
	return context.WithValue(ctx, answerKey{}, a), a
}

// pathRandomNumbers is the endpoint whose answers are counted, as the
// qrng Client calls it.
const pathRandomNumbers = "/qrng/random_numbers"

// answerTransport passes requests to base and marks 200 answers of the
// random-numbers endpoint in the request's answerSeen.
type answerTransport struct{ base http.RoundTripper }

func (t answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && strings.HasSuffix(req.URL.Path, pathRandomNumbers) {
		if a, ok := req.Context().Value(answerKey{}).(*answerSeen); ok {
			a.ok.Store(true)
		}
	}
	return resp, err
}

// observingClient returns a copy of hc whose transport is wrapped in an
// answerTransport; for a nil hc, a new client and the transport made for
// it.
func observingClient(hc *http.Client) (*http.Client, *http.Transport) {
	if hc == nil {
		own := http.DefaultTransport.(*http.Transport).Clone()
		return &http.Client{Transport: answerTransport{base: own}}, own
	}
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = answerTransport{base: base}
	return &c, nil
}
