package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bar matches a drawn progress bar.
var bar = regexp.MustCompile(`\r\[[= ]{30}\] +\d+%`)

// onTerminal runs qrng with stderr on a pseudo-terminal, and stdout on it
// too when stdoutOnTTY is set, else on a file in dir (or -o is used). It
// returns everything the terminal showed.
func onTerminal(t *testing.T, envv map[string]string, stdoutOnTTY bool, args ...string) (shown string, code int) {
	t.Helper()
	master, tty := openPTY(t)
	var stdout *os.File
	if stdoutOnTTY {
		stdout = tty
	}
	p := startQrng(t, envv, stdout, tty, args...)
	tty.Close() // the child has its own copy; the master reads EIO when it ends
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				close(copied)
				return
			}
		}
	}()
	code = p.wait(t)
	<-copied
	return screen.String(), code
}

// Issue 9, item 22: no bar over the output when stdout is the same
// terminal; a bar when stdout goes elsewhere.
func TestProgressBarOnlyWhenStdoutIsNotTheTerminal(t *testing.T) {
	shown, code := onTerminal(t, nil, true, "bytes", "-n", "1MB", "-bits", "64", "-format", "hex")
	require.Equal(t, 0, code, shown)
	assert.Greater(t, len(shown), 2_000_000, "the hex output reached the terminal")
	assert.NotRegexp(t, bar, shown, "no bar drawn over the output")

	file := filepath.Join(t.TempDir(), "out.bin")
	shown, code = onTerminal(t, nil, false, "bytes", "-n", "1MB", "-bits", "64", "-o", file)
	require.Equal(t, 0, code, shown)
	assert.Regexp(t, bar, shown)

	// stdout captured by a pipe: the bar is drawn on the terminal.
	shown, code = onTerminal(t, nil, false, "bytes", "-n", "1MiB", "-bits", "64")
	require.Equal(t, 0, code, shown)
	assert.Regexp(t, bar, shown)
}

// Issue 9, item 22: the bar speaks in the units the user typed.
func TestProgressBarUsesTheUnitsTyped(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.bin")
	shown, code := onTerminal(t, nil, false, "bytes", "-n", "1MB", "-bits", "64", "-o", file)
	require.Equal(t, 0, code, shown)
	assert.Contains(t, shown, "100% 1.0 / 1.0 MB")
	assert.NotContains(t, shown, "MiB")

	shown, code = onTerminal(t, nil, false, "bytes", "-n", "1MiB", "-bits", "64", "-o", file)
	require.Equal(t, 0, code, shown)
	assert.Contains(t, shown, "100% 1.0 / 1.0 MiB")
}

// Issue 9, item 22: a message mid-run starts on a line of its own and the
// bar's line is ended.
func TestProgressBarEndsItsLineBeforeAMessage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.bin")
	// Reads of 4 KiB doubling: 8 requests bring about 1 MiB, then the 400.
	shown, code := onTerminal(t, batchesThenRefusal(t, 8), false, "bytes", "-n", "2MiB", "-o", file)
	assert.Equal(t, 1, code, shown)
	require.Regexp(t, bar, shown, "a bar was drawn before the error")
	i := strings.Index(shown, "qrng: ")
	require.Positive(t, i, shown)
	assert.Equal(t, byte('\n'), shown[i-1], "the message starts a line: %q", shown[max(0, i-80):])
	assert.True(t, strings.HasSuffix(shown, "\n"), "the last line is ended")
	assert.Equal(t, 1, strings.Count(shown[i:], "\n"), "the message is the last line: %q", shown[i:])
}
