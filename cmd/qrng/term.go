package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func isBrokenPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }

// progress draws a one-line bar on a terminal. A nil *progress draws nothing.
type progress struct {
	w     io.Writer
	total int64
	shown int64
}

func (p *progress) update(n int64) {
	if p == nil || (n-p.shown < 256<<10 && n < p.total) {
		return
	}
	p.shown = n
	const width = 30
	fill := int(int64(width) * n / p.total)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < fill {
			bar[i] = '='
		}
	}
	fmt.Fprintf(p.w, "\r[%s] %3d%% %.1f / %.1f MiB", bar, 100*n/p.total, float64(n)/(1<<20), float64(p.total)/(1<<20))
}

func (p *progress) done() {
	if p != nil {
		fmt.Fprintln(p.w)
	}
}
