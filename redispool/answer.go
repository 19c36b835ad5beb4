package redispool

import (
	"context"
	"net/http"
	"net/http/httptrace"
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

// answerSeen records that a random-numbers request got a 200 status
// (ok), or was sent whole and got no status line at all (inDoubt: timed
// out, cancelled as the filler stopped, its connection broken): the
// service may have served either, so either keeps the reservation.
type answerSeen struct{ ok, inDoubt atomic.Bool }

// served reports whether the call's request may have been served.
func (a *answerSeen) served() bool { return a.ok.Load() || a.inDoubt.Load() }

func withAnswerSeen(ctx context.Context) (context.Context, *answerSeen) {
	a := new(answerSeen)
	return context.WithValue(ctx, answerKey{}, a), a
}

// pathRandomNumbers is the endpoint whose answers are counted, as the
// qrng Client calls it.
const pathRandomNumbers = "/qrng/random_numbers"

// answerTransport passes requests to base and marks, in the request's
// answerSeen, 200 answers of the random-numbers endpoint and requests to
// it sent whole that got no answer.
type answerTransport struct{ base http.RoundTripper }

func (t answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, ok := req.Context().Value(answerKey{}).(*answerSeen)
	if !ok || !strings.HasSuffix(req.URL.Path, pathRandomNumbers) {
		return t.base.RoundTrip(req)
	}
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	switch {
	case err == nil && resp.StatusCode == http.StatusOK:
		a.ok.Store(true)
	case err != nil && wrote.Load():
		a.inDoubt.Store(true)
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
