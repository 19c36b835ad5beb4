package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

func (e *env) bytes(args []string) error {
	var c common
	fs := e.flags("bytes", &c)
	size := fs.String("n", "", "how many bytes: 32, 4KiB, 1MiB, 10MB (default: until interrupted or the pipe closes)")
	out := fs.String("o", "", "write to this file instead of stdout")
	format := fs.String("format", "raw", "output format: raw, hex or base64")
	if err := parse(fs, args); err != nil {
		return err
	}
	total := int64(-1)
	if *size != "" {
		n, err := parseSize(*size)
		if err != nil {
			return usagef("-n: %v", err)
		}
		total = n
	}
	switch *format {
	case "raw", "hex", "base64":
	default:
		return usagef("-format %q: want raw, hex or base64", *format)
	}
	if total == 0 {
		return nil
	}
	batch := 0 // stream: prefetch with the library's defaults
	if total > 0 {
		batch = int((total*8 + int64(c.bits) - 1) / int64(c.bits))
	}
	src, b, err := e.source(&c, batch)
	if err != nil {
		return err
	}
	defer e.finish(src, b)

	var w io.Writer = e.stdout
	isTTY := isTerminal(e.stderr)
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("qrng: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc, closeEnc := encoder(*format, bw)
	var prog *progress
	if isTTY && total >= 1<<20 {
		prog = &progress{w: e.stderr, total: total}
	}
	buf := make([]byte, 32<<10)
	defer clear(buf)
	for written := int64(0); total < 0 || written < total; {
		if err := e.ctx.Err(); err != nil {
			break // interrupted: end cleanly with what was written
		}
		chunk := buf
		if total >= 0 {
			chunk = buf[:min(int64(len(buf)), total-written)]
		}
		if _, err := src.Read(chunk); err != nil {
			return err
		}
		if _, err := enc.Write(chunk); err != nil {
			return writeErr(err, total)
		}
		written += int64(len(chunk))
		prog.update(written)
	}
	if err := closeEnc(); err != nil {
		return writeErr(err, total)
	}
	prog.done()
	if err := bw.Flush(); err != nil {
		return writeErr(err, total)
	}
	return nil
}

// writeErr ignores a closed pipe when streaming without -n, like other
// Unix filters; otherwise it is an error.
func writeErr(err error, total int64) error {
	if total < 0 && isBrokenPipe(err) {
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
