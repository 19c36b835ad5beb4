package qrngtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
)

// exampleT stands in for the *testing.T a test function receives, so that
// this example can run on its own: it keeps the cleanups registered with
// it and runs them, last first, at end, as the testing package does when a
// test ends. (Start calls only Helper and Cleanup; the other methods of
// the embedded testing.TB are left unset.)
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()          {}
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) end() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// In a test, pass the test's t to Start: the emulator is shut down when the
// test ends, with no Close to call.
func ExampleStart() {
	t := &exampleT{} // in a test function: the t it receives
	srv := qrngtest.Start(t, qrngtest.Options{Seed: 1})

	c, err := qrng.NewClient(qrng.ClientConfig{Token: srv.Token, BaseURL: srv.URL, MaxRetries: -1})
	if err != nil {
		panic(err)
	}
	vals, err := c.RandomNumbers(context.Background(), 5, 16)
	fmt.Println(vals, err)

	t.end() // the test ends: the server is closed
	_, err = c.RandomNumbers(context.Background(), 5, 16)
	fmt.Println("after the test, the server answers:", err == nil)
	// Output:
	// [58986 16248 48463 7145 47214] <nil>
	// after the test, the server answers: false
}
