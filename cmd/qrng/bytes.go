package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
)

type bytesCmd struct {
	fetchFlags
	size, out, format string

	total  int64 // bytes to write; -1: stream until interrupted
	binary bool  // -n used a binary unit (K, KiB, ...)
}

func (c *bytesCmd) define(fs *flag.FlagSet) {
	c.fetchFlags.define(fs)
	fs.StringVar(&c.size, "n", "", "how many bytes to write, a `SIZE` such as 32, 4K, 4KiB or 10MB (default: stream until interrupted)")
	fs.StringVar(&c.out, "o", "", "write to `FILE` instead of stdout, whole or not at all; needs -n")
	fs.StringVar(&c.format, "format", "raw", "output format: raw, hex or base64")
}

func (c *bytesCmd) check(given map[string]bool) error {
	if err := c.fetchFlags.check(); err != nil {
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
	if given["o"] {
		switch {
		case c.out == "":
			return usagef("-o: want a file name")
		case !given["n"]:
			return usagef("-o %s needs -n: a stream ends only when interrupted, which keeps nothing (to keep a stream, redirect stdout)", c.out)
		}
		return checkOutFile(c.out)
	}
	return nil
}

func (c *bytesCmd) run(e *env) error {
	var out *outFile
	if c.out != "" {
		var err error
		if out, err = createOutFile(c.out); err != nil {
			return err
		}
		defer out.discard()
	}
	batch := 0 // stream: prefetch with the library's defaults
	if c.total > 0 {
		batch = batchFor(c.total, c.bits)
	}
	src, b, err := e.open(&c.fetchFlags, batch)
	if err != nil {
		return err
	}
	defer e.finish(src, b)

	var w io.Writer = e.stdout
	if out != nil {
		w = out
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc, closeEnc := encoder(c.format, bw)
	prog := c.progress(e)
	defer prog.done()
	buf := make([]byte, 32<<10)
	defer clear(buf)
	var written int64
	for c.total < 0 || written < c.total {
		chunk := buf
		if c.total >= 0 {
			chunk = buf[:min(int64(len(buf)), c.total-written)]
		}
		// Bytes served before a failure are written too: they were fetched
		// (and paid for) and are nobody else's now.
		n, rerr := src.ReadContext(e.ctx, chunk)
		if n > 0 {
			if _, err := enc.Write(chunk[:n]); err != nil {
				return c.failed(c.writeErr(err), out)
			}
			written += int64(n)
			prog.update(written)
		}
		if rerr != nil {
			if e.ctx.Err() != nil {
				return c.interrupted(written, out, closeEnc, bw)
			}
			return c.stopped(rerr, written, out, closeEnc, bw)
		}
	}
	if err := closeEnc(); err != nil {
		return c.failed(c.writeErr(err), out)
	}
	if err := bw.Flush(); err != nil {
		return c.failed(c.writeErr(err), out)
	}
	if out != nil {
		return out.commit()
	}
	return nil
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
	return &progress{c: e.stderr, total: c.total, binary: c.binary}
}

// interrupted ends a run stopped by a signal: what went to stdout is
// flushed, so that the count reported is what stdout received; a -o file
// keeps nothing.
func (c *bytesCmd) interrupted(written int64, out *outFile, closeEnc func() error, bw *bufio.Writer) error {
	done := fmt.Sprintf("after %d bytes", written)
	if c.total >= 0 {
		done = fmt.Sprintf("after %d of %d bytes", written, c.total)
	}
	if out != nil {
		return &interrupted{done + "; " + out.kept()}
	}
	closeEnc()
	bw.Flush()
	return &interrupted{done}
}

// stopped ends a run that failed while fetching: to stdout, what was
// served is flushed and the error says how much that was; with -o,
// nothing is kept.
func (c *bytesCmd) stopped(err error, written int64, out *outFile, closeEnc func() error, bw *bufio.Writer) error {
	if out != nil {
		return c.failed(err, out)
	}
	closeEnc()
	bw.Flush()
	if c.total >= 0 {
		return fmt.Errorf("qrng: %s (after %d of %d bytes written)", bare(err), written, c.total)
	}
	return fmt.Errorf("qrng: %s (after %d bytes written)", bare(err), written)
}

// failed adds, with -o, that nothing was kept.
func (c *bytesCmd) failed(err error, out *outFile) error {
	if err == nil || out == nil {
		return err
	}
	return fmt.Errorf("qrng: %s; %s", bare(err), out.kept())
}

// writeErr ignores a closed pipe when streaming without -n, like other
// Unix filters; otherwise it is an error.
func (c *bytesCmd) writeErr(err error) error {
	if c.total < 0 && isBrokenPipe(err) {
		return nil
	}
	return fmt.Errorf("qrng: writing output: %w", err)
}

// encoder wraps w for the format; the returned func finishes the encoding.
func encoder(format string, w *bufio.Writer) (io.Writer, func() error) {
	switch format {
	case "hex":
		return hex.NewEncoder(w), func() error { _, err := w.WriteString("\n"); return err }
	case "base64":
		enc := base64.NewEncoder(base64.StdEncoding, w)
		return enc, func() error {
			if err := enc.Close(); err != nil {
				return err
			}
			_, err := w.WriteString("\n")
			return err
		}
	}
	return w, func() error { return nil }
}
