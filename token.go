package qrng

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// tokenCache holds the current access token and lets concurrent callers
// share one exchange.
type tokenCache struct {
	mu        sync.Mutex
	tok       string     // current access token; "" when none
	refreshAt time.Time  // when tok must be replaced
	inflight  *tokenCall // the exchange under way, if any
}

type tokenCall struct {
	done chan struct{}
	tok  string
	err  error
}

// accessToken returns a valid access token, exchanging the API token when
// the cached one is missing or due for refresh. Concurrent callers wait for
// a single exchange.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	if c.token == "" {
		return "", ErrNoToken
	}
	for {
		t := &c.tok
		t.mu.Lock()
		if t.tok != "" && c.now().Before(t.refreshAt) {
			tok := t.tok
			t.mu.Unlock()
			return tok, nil
		}
		if call := t.inflight; call != nil {
			t.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			if call.err != nil && isContextErr(call.err) && ctx.Err() == nil {
				continue // the caller who ran the exchange gave up; try ourselves
			}
			return call.tok, call.err
		}
		call := &tokenCall{done: make(chan struct{})}
		t.inflight = call
		t.mu.Unlock()

		tok, refreshAt, err := c.exchange(ctx)

		t.mu.Lock()
		if err == nil {
			t.tok, t.refreshAt = tok, refreshAt
		}
		t.inflight = nil
		call.tok, call.err = tok, err
		close(call.done)
		t.mu.Unlock()
		return tok, err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// invalidate drops tok if it is still the cached token, so that the next
// caller exchanges again. Callers that saw a 401 with an older token do not
// throw away a newer one.
func (t *tokenCache) invalidate(tok string) {
	t.mu.Lock()
	if t.tok == tok {
		t.tok = ""
	}
	t.mu.Unlock()
}

// exchange trades the API token for an access token and works out when to
// refresh it.
func (c *Client) exchange(ctx context.Context) (string, time.Time, error) {
	body, err := json.Marshal(map[string]string{"refresh_token": c.token})
	if err != nil {
		return "", time.Time{}, err
	}
	var v struct {
		AccessToken string       `json:"access_token"`
		ExpiresIn   *json.Number `json:"expires_in"`
		ExpiresAt   string       `json:"expires_at_rfc3339"`
	}
	err = c.call(ctx, pathAccessToken, body, false, func(resp *http.Response) error {
		err := readJSON(resp.Body, &v)
		c.sec.add(v.AccessToken) // a secret from now on, even if the answer is refused
		return err
	}, attemptHooks{})
	if err != nil {
		return "", time.Time{}, err
	}
	if v.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("%w: token answer has no access_token", ErrInvalidResponse)
	}
	now := c.now()
	expiry := tokenExpiry(now, v.ExpiresAt, v.ExpiresIn)
	life := expiry.Sub(now)
	margin := max(0, min(c.margin, life/2))
	return v.AccessToken, expiry.Add(-margin), nil
}

// tokenExpiry applies the rule in api.go's package notes (and the README's
// "What is unknown about the live API"): prefer expires_at_rfc3339; else
// expires_in, an absolute Unix time when above 1e9 and seconds from now
// otherwise; else assume defaultTokenLifetime.
func tokenExpiry(now time.Time, at string, in *json.Number) time.Time {
	if t, err := time.Parse(time.RFC3339, at); err == nil {
		return t
	}
	if in != nil {
		if f, err := strconv.ParseFloat(in.String(), 64); err == nil && f > 0 {
			if f > 1e9 {
				return time.Unix(int64(f), 0)
			}
			return now.Add(time.Duration(f * float64(time.Second)))
		}
	}
	return now.Add(defaultTokenLifetime)
}
