package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// isTerminal reports whether w is a terminal: a character device that
// answers as one (on Linux, the terminal ioctl; elsewhere, any character
// device but the null device), so that /dev/null is not one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false
	}
	return answersAsTerminal(f)
}

// sameFile reports whether a and b are the same open file or device.
func sameFile(a, b io.Writer) bool {
	fa, okA := a.(*os.File)
	fb, okB := b.(*os.File)
	if !okA || !okB {
		return false
	}
	sa, errA := fa.Stat()
	sb, errB := fb.Stat()
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

func isBrokenPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }

// console is stderr as the command writes to it. The progress bar redraws
// its line with a carriage return and leaves it open; any other write
// first ends that line, so a message never lands on the bar. It is safe
// for concurrent use (the library logs from its own goroutines).
type console struct {
	mu   sync.Mutex // guards w and open
	w    io.Writer
	open bool // a bar is drawn and its line not ended
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked()
	return c.w.Write(p)
}

// draw replaces the open line with s, leaving the line open.
func (c *console) draw(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.w, "\r"+s)
	c.open = true
}

// endLine ends the bar's line, if one is open.
func (c *console) endLine() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked()
}

func (c *console) endLocked() {
	if c.open {
		c.open = false
		io.WriteString(c.w, "\n")
	}
}

// progress draws a one-line bar on the console: how much is done, the
// average rate so far and, at that rate, the time left. A nil *progress
// draws nothing.
type progress struct {
	c      *console
	total  int64
	binary bool             // show MiB (the user typed a binary unit), else MB
	shown  int64            // bytes at the last redraw
	now    func() time.Time // the clock (tests set their own)
	start  time.Time
}

func newProgress(c *console, total int64, binary bool) *progress {
	return &progress{c: c, total: total, binary: binary, now: time.Now, start: time.Now()}
}

// barMin is the smallest total worth a bar.
const barMin = 1_000_000

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
	unit, div := "MB", 1e6
	if p.binary {
		unit, div = "MiB", 1<<20
	}
	line := fmt.Sprintf("[%s] %3d%% %.1f / %.1f %s", bar, 100*n/p.total, float64(n)/div, float64(p.total)/div, unit)
	if elapsed := p.now().Sub(p.start); elapsed > 0 && n > 0 {
		rate := float64(n) / elapsed.Seconds() // bytes a second
		line += fmt.Sprintf("  %.1f %s/s", rate/div, unit)
		if n < p.total {
			line += "  " + roughly(time.Duration(float64(p.total-n)/rate*float64(time.Second))) + " left"
		} else {
			line += "  in " + roughly(elapsed)
		}
	}
	p.c.draw(line)
}

// roughly is d to the second, as 7s, 2m05s or 1h02m.
func roughly(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

// done ends the bar's line.
func (p *progress) done() {
	if p != nil {
		p.c.endLine()
	}
}
