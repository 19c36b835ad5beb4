package main

import (
	"flag"
	"fmt"
	"strconv"
)

type intsCmd struct {
	fetchFlags
	n       int
	max     uint64
	uniform bool // -max given
}

func (c *intsCmd) define(fs *flag.FlagSet) {
	c.fetchFlags.define(fs)
	fs.IntVar(&c.n, "n", 1, "how many integers, at least 1")
	fs.Uint64Var(&c.max, "max", 0, "print integers uniform in [0, `N`), N at least 1, instead of the raw -bits values")
}

func (c *intsCmd) check(given map[string]bool) error {
	if err := c.fetchFlags.check(given); err != nil {
		return err
	}
	if c.n < 1 {
		return usagef("-n %d: want at least 1", c.n)
	}
	if c.uniform = given["max"]; c.uniform && c.max == 0 {
		return usagef("-max 0: want at least 1 (omit -max for the raw values)")
	}
	return nil
}

func (c *intsCmd) run(e *env) error {
	if c.uniform {
		return e.numbers(&c.fetchFlags, c.n, needBytes(c.n, 64), func(f *feed, line []byte) ([]byte, error) {
			v, err := f.uint64n(c.max)
			return strconv.AppendUint(line, v, 10), err
		})
	}
	var r bitReader
	return e.numbers(&c.fetchFlags, c.n, needBytes(c.n, c.bits), func(f *feed, line []byte) ([]byte, error) {
		v, err := f.bits(c.bits, &r)
		return strconv.AppendUint(line, v, 10), err
	})
}

type floatsCmd struct {
	fetchFlags
	n int
}

func (c *floatsCmd) define(fs *flag.FlagSet) {
	c.fetchFlags.define(fs)
	fs.IntVar(&c.n, "n", 1, "how many floats, at least 1")
}

func (c *floatsCmd) check(given map[string]bool) error {
	if err := c.fetchFlags.check(given); err != nil {
		return err
	}
	if c.n < 1 {
		return usagef("-n %d: want at least 1", c.n)
	}
	return nil
}

func (c *floatsCmd) run(e *env) error {
	return e.numbers(&c.fetchFlags, c.n, needBytes(c.n, 64), func(f *feed, line []byte) ([]byte, error) {
		v, err := f.uint64()
		return strconv.AppendFloat(line, float64(v>>11)/(1<<53), 'g', -1, 64), err
	})
}

// numbers prints n lines made by next, which appends one number to line;
// the n numbers take about need bytes of the stream. The lines go to
// stdout or to the -o file, under the rules of sink.
func (e *env) numbers(f *fetchFlags, n int, need int64, next func(*feed, []byte) ([]byte, error)) error {
	out, err := e.openSink(f, 0o600) // random numbers are private
	if err != nil {
		return err
	}
	defer out.discard()
	batch := batchFor(need, f.bits)
	src, b, err := e.open(f, batch)
	if err != nil {
		return err
	}
	defer e.finish(src, b, f)
	fd := newFeed(e.ctx, src, need, needBytes(batch, f.bits))
	defer fd.erase()
	var line []byte
	defer func() { clear(line) }()
	for i := range n {
		line, err = next(fd, line[:0])
		if err != nil {
			// Every line written is whole: once flushed, stdout has i lines.
			return out.stop(err, e.ctx.Err() != nil, func(int64) string { return fmt.Sprintf("after %d of %d values", i, n) })
		}
		if _, err := out.Write(append(line, '\n')); err != nil {
			return pipeClosedIsDone(err)
		}
	}
	return pipeClosedIsDone(out.commit())
}
