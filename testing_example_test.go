package qrng_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
)

// The README's example of testing one's own code with qrngtest (issue 18,
// items 16 and 21): the emulator is closed when the test ends, the
// Source's warnings go to the test's log, retries are fast, and the test
// asserts what the code under test did.
func TestDice(t *testing.T) {
	srv := qrngtest.Start(t, qrngtest.Options{Seed: 1}) // closed when the test ends
	src := qrng.NewSource(qrng.Config{Token: srv.Token, BaseURL: srv.URL, Workers: 1,
		Logger:     srv.Logger,                                     // warnings to the test's log
		RetryPause: time.Millisecond, MaxBackoff: time.Millisecond, // fast retries
	})
	defer src.Close()

	srv.Inject(qrngtest.Fault{Status: 503, Times: 3}) // three failures, then the service recovers
	r := rand.New(src)
	for range 100 {
		if d := 1 + r.IntN(6); d < 1 || d > 6 {
			t.Fatalf("a die showed %d", d)
		}
	}
	st := src.Stats()
	if st.Retries != 3 || st.FallbackBytes != 0 {
		t.Errorf("retries %d, fallback bytes %d: want 3 retries and no fallback", st.Retries, st.FallbackBytes)
	}
	if c := srv.Counters(); c.RandomRequests < 4 {
		t.Errorf("%d requests: want the 3 that failed and at least one answered", c.RandomRequests)
	}
}
