package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 18, item 19: raw bytes are not written to a terminal unless
// -format raw is given: the refusal says what to do instead, and
// nothing is fetched (no emulator notice either).
func TestRawBytesToATerminalNeedAskingFor(t *testing.T) {
	for _, args := range [][]string{{"bytes", "-n", "32"}, {"bytes"}} {
		shown, code := onTerminal(t, nil, true, args...)
		assert.Equal(t, 2, code, shown)
		assert.Equal(t, "qrng: stdout is a terminal, and raw bytes would garble it: add -format hex or -format base64, "+
			"write to a file (-o FILE, or > FILE), or give -format raw to send them anyway\r\n", shown)
	}
	shown, code := onTerminal(t, nil, true, "bytes", "-n", "32", "-format", "raw")
	assert.Equal(t, 0, code, shown)
	assert.Contains(t, shown, notQuantum)
	shown, code = onTerminal(t, nil, true, "bytes", "-n", "32", "-format", "hex")
	assert.Equal(t, 0, code, shown)
	assert.Regexp(t, `\n[0-9a-f]{64}\r\n$`, shown)
	shown, code = onTerminal(t, nil, false, "bytes", "-n", "32") // stdout is a pipe: raw is fine
	assert.Equal(t, 0, code, shown)
}

// Issue 18, item 20: the bar drawn on a real terminal shows the rate so
// far and the time left, and when done the time taken.
func TestProgressBarShowsRateOnATerminal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.bin")
	// Two batches of 8 MiB: the first arrives whole, the second is shown
	// as it is written.
	shown, code := onTerminal(t, nil, false, "bytes", "-n", "16MiB", "-bits", "64", "-o", file)
	require.Equal(t, 0, code, shown)
	draws := strings.Split(shown, "\r[")
	require.Greater(t, len(draws), 2, "the bar was drawn and redrawn: %q", shown)
	left := regexp.MustCompile(`^[= ]{30}\] +\d+% \d+\.\d / 16\.0 MiB  \d+\.\d MiB/s  (\d+s|\d+m\d\ds|\d+h\d\dm) left$`)
	assert.Regexp(t, left, draws[1], "the first redraw, mid-way")
	assert.Regexp(t, `100% 16\.0 / 16\.0 MiB  \d+\.\d MiB/s  in \d+s\r\n$`, shown)
}
