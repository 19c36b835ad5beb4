package main

import (
	"bufio"
	"math/rand/v2"
	"strconv"
)

func (e *env) ints(args []string) error {
	var c common
	fs := e.flags("ints", &c)
	n := fs.Int("n", 1, "how many integers")
	maxv := fs.Uint64("max", 0, "print uniform integers in [0, max) instead of raw -bits values")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 {
		return usagef("-n %d: want at least 1", *n)
	}
	batch := *n
	if *maxv > 0 {
		batch = *n * 64 / c.bits // Uint64N draws about one 64-bit word per number
	}
	src, b, err := e.source(&c, batch)
	if err != nil {
		return err
	}
	defer e.finish(src, b)
	w := bufio.NewWriter(e.stdout)
	var line []byte
	if *maxv > 0 {
		r := rand.New(src)
		for range *n {
			line = strconv.AppendUint(line[:0], r.Uint64N(*maxv), 10)
			w.Write(append(line, '\n'))
		}
		return flushErr(w)
	}
	// Raw values: the stream is the service's values packed back to back,
	// so reading -bits at a time gives them back exactly.
	rd := &bitReader{src: src}
	for range *n {
		v, err := rd.read(c.bits)
		if err != nil {
			return err
		}
		line = strconv.AppendUint(line[:0], v, 10)
		w.Write(append(line, '\n'))
	}
	return flushErr(w)
}

func (e *env) floats(args []string) error {
	var c common
	fs := e.flags("floats", &c)
	n := fs.Int("n", 1, "how many floats")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 {
		return usagef("-n %d: want at least 1", *n)
	}
	src, b, err := e.source(&c, *n*64/c.bits)
	if err != nil {
		return err
	}
	defer e.finish(src, b)
	r := rand.New(src)
	w := bufio.NewWriter(e.stdout)
	var line []byte
	for range *n {
		line = strconv.AppendFloat(line[:0], r.Float64(), 'g', -1, 64)
		w.Write(append(line, '\n'))
	}
	return flushErr(w)
}

func flushErr(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return writeErr(err, 0)
	}
	return nil
}

// bitReader reads values of any width from a byte stream, MSB first.
type bitReader struct {
	src interface{ Read([]byte) (int, error) }
	acc uint64 // pending bits, right-aligned
	n   int    // pending bit count, 0..7
}

func (r *bitReader) read(bits int) (uint64, error) {
	var v uint64
	for need := bits; need > 0; {
		if r.n == 0 {
			var b [1]byte
			if _, err := r.src.Read(b[:]); err != nil {
				return 0, err
			}
			r.acc, r.n = uint64(b[0]), 8
		}
		take := min(need, r.n)
		v = v<<take | (r.acc>>(r.n-take))&(1<<take-1)
		r.n -= take
		need -= take
	}
	return v, nil
}
