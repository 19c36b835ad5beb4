package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 19, item 1: `qrng serve -rate BITS` answers a request of n values
// of b bits n*b/BITS seconds after it arrives, so that a slow device can be
// tried from any language. A zero or negative rate is a usage error.
func TestServeRate(t *testing.T) {
	for _, v := range []string{"0", "-5"} {
		assertUsageError(t, runCmd(t, nil, "serve", "-rate", v), "qrng: -rate "+v+": want a positive number of bits per second")
	}

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-token", "API_TOKEN", "-rate", "16000"}, out, io.Discard, nil)
	}()
	var base string
	require.Eventually(t, func() bool {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "qrng emulator listening on "); ok {
				base = strings.Fields(u)[0]
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)

	c, err := qrng.NewClient(qrng.ClientConfig{Token: "API_TOKEN", BaseURL: base, MaxRetries: -1})
	require.NoError(t, err)
	start := time.Now()
	vals, err := c.RandomNumbers(context.Background(), 200, 16) // 3,200 bits at 16,000 a second: 200 ms
	require.NoError(t, err)
	assert.Len(t, vals, 200)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "the answer waited for the device")

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on interrupt")
	}
}
