package main

import (
	"bufio"
	"os"
	"syscall"
	"testing"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A run stopped early (its reader went away after three lines) has spent
// at most about what it wrote: its reads start at 4 KiB and double, and
// each request is a read's need. What it wrote is bounded by the pipe's
// capacity and the command's 64 KiB output buffer; before, the whole
// need (32 Mbit for a million 16-bit values) went in the first request.
func TestEarlyStopSpendsAboutWhatWasWritten(t *testing.T) {
	srv := qrngtest.Start(t, qrngtest.Options{})
	r, w, err := os.Pipe()
	require.NoError(t, err)
	const fGetPipeSz = 1032 // F_GETPIPE_SZ
	pipeCap, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), fGetPipeSz, 0)
	require.Zero(t, errno)
	p := startQrng(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, w, nil, "ints", "-n", "1000000", "-bits", "16")
	w.Close()
	br := bufio.NewReader(r)
	for range 3 {
		_, err := br.ReadString('\n')
		require.NoError(t, err)
	}
	r.Close() // as `| head -3` does
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	written := int64(pipeCap) + 64<<10 + 4096 // the pipe, the output buffer, what the first read brings
	bound := 8 * (2*written + 4096)           // reads double: fetched < twice what was read, plus a window
	assert.LessOrEqual(t, srv.Counters().BitsServed, bound)
	assert.Less(t, bound, int64(16_000_000), "the bound is far below the need")
}
