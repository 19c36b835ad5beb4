package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
)

type bytesCmd struct {
	fetchFlags
	size, format string

	total       int64 // bytes to write; -1: stream until interrupted
	binary      bool  // -n used a binary unit (K, KiB, ...)
	formatGiven bool  // -format was on the command line
}

func (c *bytesCmd) define(fs *flag.FlagSet) {
	c.fetchFlags.define(fs)
	fs.StringVar(&c.size, "n", "", "how many bytes to write, a `SIZE` such as 32, 4K, 4KiB or 10MB (default: stream until interrupted)")
	fs.StringVar(&c.format, "format", "raw", "output format: raw, hex or base64 (raw to a terminal only when given)")
}

func (c *bytesCmd) check(given map[string]bool) error {
	if err := c.fetchFlags.check(given); err != nil {
		return err
	}
	c.total = -1
	if given["n"] {
		n, binary, err := parseSize(c.size)
		switch {
		case err != nil:
			return usagef("-n %q: %v", c.size, err)
		case n == 0:
			return usagef("-n %s: want at least 1 byte (omit -n to stream)", c.size)
		}
		c.total, c.binary = n, binary
	}
	switch c.format {
	case "raw", "hex", "base64":
	default:
		return usagef("-format %q: want raw, hex or base64", c.format)
	}
	c.formatGiven = given["format"]
	if given["o"] && !given["n"] {
		return usagef("-o %s needs -n: a stream ends only when interrupted, which keeps nothing (to keep a stream, redirect stdout)", c.out)
	}
	return nil
}

func (c *bytesCmd) run(e *env) error {
	if c.format == "raw" && !c.formatGiven && c.out == "" && e.isTerminal(e.stdout) {
		return usagef("stdout is a terminal, and raw bytes would garble it: add -format hex or -format base64, " +
			"write to a file (-o FILE, or > FILE), or give -format raw to send them anyway")
	}
	out, err := e.openSink(&c.fetchFlags, 0o600) // random bytes are private
	if err != nil {
		return err
	}
	defer out.discard()
	batch := 0 // stream: prefetch with the library's defaults
	if c.total > 0 {
		batch = batchFor(c.total, c.bits)
	}
	src, b, err := e.open(&c.fetchFlags, batch)
	if err != nil {
		return err
	}
	defer e.finish(src, b, &c.fetchFlags)

	enc, closeEnc := encoder(c.format, out)
	prog := c.progress(e)
	defer prog.done()
	// A bounded run reads on demand (its Source asks for each read's
	// bytes, in whole windows): 4 KiB first, doubling up to a batch, so
	// that it spends what it needs and, stopped early (a closed pipe, a
	// signal), at most about what it wrote, or 4 KiB. A stream reads
	// 32 KiB at a time from a prefetching Source.
	piece, step := 32<<10, 32<<10
	if c.total > 0 {
		piece = int(max(int64(piece), min(c.total, needBytes(batch, c.bits))))
		step = min(piece, firstRead)
	}
	buf := make([]byte, piece)
	defer clear(buf)
	var served int64
	done := func(int64) string {
		if c.total >= 0 {
			return fmt.Sprintf("after %d of %d bytes", served, c.total)
		}
		return fmt.Sprintf("after %d bytes", served)
	}
	for c.total < 0 || served < c.total {
		chunk := buf[:step]
		if c.total >= 0 {
			chunk = buf[:min(int64(step), c.total-served)]
			step = min(2*step, len(buf))
		}
		// Bytes served before a failure are written too: they were fetched
		// (and paid for) and are nobody else's now.
		n, rerr := src.ReadContext(e.ctx, chunk)
		if n > 0 {
			if _, err := enc.Write(chunk[:n]); err != nil {
				return pipeClosedIsDone(err)
			}
			served += int64(n)
			prog.update(served)
		}
		if rerr != nil {
			if served > 0 {
				closeEnc() // the encoding's tail and newline, for what was written
			}
			return out.stop(rerr, e.ctx.Err() != nil, done)
		}
	}
	if err := closeEnc(); err != nil {
		return pipeClosedIsDone(err)
	}
	return pipeClosedIsDone(out.commit())
}

// pipeClosedIsDone ends a command whose stdout's reader went away with
// status 0, as a stream ends: the reader has what it wanted.
func pipeClosedIsDone(err error) error {
	if errors.Is(err, errPipeClosed) {
		return nil
	}
	return err
}

// progress returns a bar for this run, or nil: only for 1 MB or more,
// when stderr is a terminal and the output is not on that same terminal.
func (c *bytesCmd) progress(e *env) *progress {
	tty := e.stderr.w
	if c.total < barMin || !e.isTerminal(tty) {
		return nil
	}
	if c.out == "" && e.isTerminal(e.stdout) && e.sameFile(e.stdout, tty) {
		return nil
	}
	return newProgress(e.stderr, c.total, c.binary)
}

// encoder wraps w for the format; the returned func finishes the
// encoding, with a newline after hex or base64 text (none when nothing
// was written: no text, no line).
func encoder(format string, w *sink) (io.Writer, func() error) {
	switch format {
	case "hex":
		return hex.NewEncoder(w), func() error {
			if w.written == 0 {
				return nil
			}
			_, err := w.Write([]byte("\n"))
			return err
		}
	case "base64":
		enc := base64.NewEncoder(base64.StdEncoding, w)
		return enc, func() error {
			if err := enc.Close(); err != nil || w.written == 0 {
				return err
			}
			_, err := w.Write([]byte("\n"))
			return err
		}
	}
	return w, func() error { return nil }
}
