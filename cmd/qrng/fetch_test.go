package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README: commands given -n fetch on demand, nothing ahead. Each request
// is sent only when the values fetched so far are not enough.
func TestCountedCommandsFetchNothingAhead(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		bits     int
		needBits int
	}{
		{[]string{"ints", "-n", "5", "-bits", "16"}, 16, 5 * 16},
		{[]string{"ints", "-n", "1000", "-bits", "12"}, 12, 1000 * 12},
		{[]string{"ints", "-n", "50", "-max", "6"}, 16, 50 * 64},
		{[]string{"floats", "-n", "20", "-bits", "8"}, 8, 20 * 64},
		{[]string{"bytes", "-n", "100", "-bits", "7"}, 7, 100 * 8},
		{[]string{"ints", "-n", "1000001", "-bits", "1"}, 1, 1_000_001},   // more than one request can bring
		{[]string{"bytes", "-n", "2000000", "-o", "OUT"}, 16, 16_000_000}, // a batch and 128 bytes
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := qrngtest.NewServer(qrngtest.Options{Record: true})
			defer srv.Close()
			args := slices.Clone(tc.args)
			if i := slices.Index(args, "OUT"); i >= 0 {
				args[i] = filepath.Join(t.TempDir(), "out.bin")
			}
			r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, args...)
			require.Equal(t, 0, r.code, r.stderr)
			batches := srv.Batches()
			require.NotEmpty(t, batches)
			total := 0
			for _, b := range batches {
				total += len(b) * tc.bits
			}
			last := len(batches[len(batches)-1]) * tc.bits
			assert.GreaterOrEqual(t, total, tc.needBits, "enough was fetched")
			assert.Less(t, total-last, tc.needBits, "the last request was needed: nothing was fetched ahead")
			// Each request is a read's need in whole windows (4096 values
			// at odd widths): what is fetched past the need is less than
			// one such unit per request.
			unit := 4096 * tc.bits / (tc.bits & -tc.bits) // bits of the fewest values filling whole windows
			assert.Less(t, total-tc.needBits, len(batches)*unit, "no request brought a unit more than its read needed")
		})
	}
}

// Issue 9, item 21: the emulator is not the service, so no monthly meter
// applies to it (the dieharder recipe streams gigabytes from it), while
// the service keeps the library's default meter.
func TestEmulatorHasNoMonthlyMeter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		emulator bool
		meter    bool
	}{
		{"no token", nil, false, false},
		{"-emulator", map[string]string{"QCI_TOKEN": "t"}, true, false},
		{"the service", map[string]string{"QCI_TOKEN": "t", "QCI_API_URL": "http://127.0.0.1:1"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			e := &env{stderr: &console{w: &stderr}, getenv: func(k string) string { return tc.env[k] }}
			f := &fetchFlags{emulator: tc.emulator, bits: 16}
			b, err := e.backend(f)
			require.NoError(t, err)
			defer b.close()
			for _, batch := range []int{0, 1000} { // a stream, and a command given -n
				cfg := e.sourceConfig(f, b, batch)
				if tc.meter {
					assert.Zero(t, cfg.QuotaBits, "the library's default meter")
				} else {
					assert.Negative(t, cfg.QuotaBits, "no local meter")
				}
			}
		})
	}
}
