package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// sink is where an output command's bytes go: stdout, or the -o file
// (whole or not at all), through one buffer. The rules every output
// command shares live here:
//   - a closed pipe on stdout ends the command with status 0, as it ends a
//     stream: the reader has all it wanted (errPipeClosed);
//   - a run that fails or is interrupted flushes what it wrote to stdout,
//     so that the count it reports is what stdout received; with -o it
//     keeps nothing.
//
// A sink is used by one goroutine.
type sink struct {
	bw      *bufio.Writer
	out     *outFile // nil: stdout
	written int64    // bytes given to write
}

// errPipeClosed ends a command whose stdout's reader went away: status 0.
var errPipeClosed = errors.New("stdout's reader went away")

// openSink prepares the output: the -o file when f names one (created
// now, before anything is fetched, with newPerm if it is new), else
// stdout.
func (e *env) openSink(f *fetchFlags, newPerm fs.FileMode) (*sink, error) {
	var w io.Writer = e.stdout
	s := &sink{}
	if f.out != "" {
		out, err := createOutFile(f.out, newPerm)
		if err != nil {
			return nil, err
		}
		s.out, w = out, out
	}
	s.bw = bufio.NewWriterSize(w, 64<<10)
	return s, nil
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.bw.Write(p)
	s.written += int64(n)
	if err != nil {
		return n, s.writeErr(err)
	}
	return n, nil
}

// writeErr is the error a failed write ends the command with.
func (s *sink) writeErr(err error) error {
	switch {
	case s.out != nil:
		return fmt.Errorf("qrng: %s; %s", bare(err), s.out.kept())
	case isBrokenPipe(err):
		return errPipeClosed
	}
	return fmt.Errorf("qrng: writing output: %w", err)
}

// received is what stdout has received: what was written less what the
// buffer still holds.
func (s *sink) received() int64 { return s.written - int64(s.bw.Buffered()) }

// commit ends a run that wrote everything: stdout is flushed, the -o
// file gets its content.
func (s *sink) commit() error {
	if err := s.bw.Flush(); err != nil {
		return s.writeErr(err)
	}
	if s.out != nil {
		return s.out.commit()
	}
	return nil
}

// stop ends a run cut short by err (a fetch that failed, or with
// bySignal set, a signal): stdout gets what was written, and the
// message says how much that was (done formats the count); the -o file
// keeps nothing.
func (s *sink) stop(err error, bySignal bool, done func(received int64) string) error {
	if s.out != nil {
		s.out.discard()
		if bySignal {
			return &interrupted{done(s.written) + "; " + s.out.kept()}
		}
		return fmt.Errorf("qrng: %s; %s", bare(err), s.out.kept())
	}
	s.bw.Flush() // a failure here (a closed pipe) only shortens the count
	if bySignal {
		return &interrupted{done(s.received())}
	}
	return fmt.Errorf("qrng: %s (%s written)", bare(err), done(s.received()))
}

// discard drops the -o file's staged bytes, unless commit has run.
func (s *sink) discard() {
	if s.out != nil {
		s.out.discard()
	}
}
