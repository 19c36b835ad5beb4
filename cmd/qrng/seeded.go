package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/qrng-go/qrng"
)

// seededFlags are -seeded and -reseed, on bytes, ints and floats: output
// from a qrng.Seeded generator (ChaCha8 keyed and rekeyed with 32 bytes
// of the Source) instead of the Source's own bytes.
type seededFlags struct {
	on     bool
	reseed string

	every  int64 // bytes of output per key, set by check
	binary bool  // -reseed used a binary unit (K, KiB, ...), for messages
}

func (s *seededFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&s.on, "seeded", false, "write quantum-seeded ChaCha8 output: 32 bytes fetched per -reseed SIZE of output, not the fetched bytes themselves")
	fs.StringVar(&s.reseed, "reseed", "1MiB", "with -seeded, take a fresh 32-byte seed after every `SIZE` of output, at least 8 bytes")
}

func (s *seededFlags) check(given map[string]bool) error {
	s.every, s.binary = qrng.DefaultReseedBytes, true
	if !given["reseed"] {
		return nil
	}
	if !s.on {
		return usagef("-reseed %s needs -seeded: without it every byte is fetched, and nothing is reseeded", s.reseed)
	}
	n, binary, err := parseSize(s.reseed)
	switch {
	case err != nil:
		return usagef("-reseed %q: %v", s.reseed, err)
	case n < 8:
		return usagef("-reseed %s: want at least 8 bytes (one 64-bit value per key)", s.reseed)
	}
	s.every, s.binary = n, binary
	return nil
}

// contextReader is what the output commands read: a Source, or an input.
type contextReader interface {
	ReadContext(ctx context.Context, p []byte) (int, error)
}

// input is what bytes, ints and floats read: the Source, or with -seeded
// a Seeded generator over it. It is not safe for concurrent use.
type input struct {
	e   *env
	f   *fetchFlags
	src *qrng.Source
	b   *backend
	g   *qrng.Seeded // nil without -seeded

	// batchBytes is the most a read should ask for at first: a bounded
	// run's batch, so that the Source's first request is what the run
	// needs; 0 for a stream of the Source's bytes (the library's
	// defaults); seededPiece with -seeded.
	batchBytes int64
	unwatch    func() bool // stops closing the Source when the run is interrupted
}

// seededStreamBatch is the largest request of a -seeded stream (bytes
// without -n), in bytes: 2,048 seeds, 2 GiB of output at the default
// -reseed, and the most a stream can leave unused at its end.
const seededStreamBatch = 64 << 10

// seededPiece is the size of the reads from a Seeded: it fetches nothing
// per read, so the size only bounds the buffers.
const seededPiece = 32 << 10

// openInput opens the input of a run that needs need bytes of the stream
// (need < 0: a stream, until interrupted). With -seeded, the Source is
// sized for the seeds alone (32 bytes per -reseed of output), and stderr
// says once what the output is.
func (e *env) openInput(f *fetchFlags, need int64) (*input, error) {
	in := &input{e: e, f: f}
	if !f.seeded.on {
		batch := 0 // stream: prefetch with the library's defaults
		if need > 0 {
			batch = batchFor(need, f.bits)
			in.batchBytes = needBytes(batch, f.bits)
		}
		src, b, err := e.open(f, batch)
		if err != nil {
			return nil, err
		}
		in.src, in.b = src, b
		return in, nil
	}
	// On demand, as any -n run: seeds are few, and a Source that
	// prefetched would hold far more than the run takes. A stream's
	// requests grow to seededStreamBatch.
	batch := batchFor(seededStreamBatch, f.bits)
	if need > 0 {
		keys := (min(need, maxNeed) + f.seeded.every - 1) / f.seeded.every
		batch = batchFor(32*keys, f.bits)
	}
	src, b, err := e.open(f, batch)
	if err != nil {
		return nil, err
	}
	in.src, in.b, in.batchBytes = src, b, seededPiece
	// A seed read waits for the Source without a context (Seeded's Read
	// takes none): an interrupt closes the Source, which ends the wait
	// with ErrClosed, reported as the interruption it is.
	in.unwatch = context.AfterFunc(e.ctx, func() { src.Close() })
	fmt.Fprintf(e.stderr, "qrng: %s, reseeded every %s\n", seededWhat(b), sizeText(f.seeded.every, f.seeded.binary))
	in.g = qrng.NewSeeded(src, qrng.SeededConfig{ReseedBytes: f.seeded.every}) // reads the first seed
	return in, nil
}

// seededWhat says what a Seeded's output over b is.
func seededWhat(b *backend) string {
	switch {
	case b.srv != nil:
		return "ChaCha8 seeded from the built-in emulator (NOT quantum-seeded)"
	case b.pool != nil:
		return "quantum-seeded ChaCha8: ChaCha8 output under keys from the pool, not quantum numbers"
	}
	return "quantum-seeded ChaCha8: ChaCha8 output under keys from the service, not quantum numbers"
}

// ReadContext fills p from the Source or the generator. A failed reseed
// (the Source could not serve a seed) returns the bytes served before it
// and the error.
func (in *input) ReadContext(ctx context.Context, p []byte) (int, error) {
	if in.g == nil {
		return in.src.ReadContext(ctx, p)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return in.g.Read(p)
}

// finish erases the generator, closes the Source and reports as finish
// does; with -seeded it adds, with -v, the seeds taken, and without -v
// any seed that came from crypto/rand.
func (in *input) finish() {
	if in.g == nil {
		in.e.finish(in.src, in.b, in.f)
		return
	}
	in.unwatch()
	in.g.Close()
	st := in.g.Stats()
	in.e.finish(in.src, in.b, in.f)
	fromCrypto := st.Reseeds - st.QuantumReseeds
	switch {
	case in.f.verbose:
		from := "quantum (from the service)"
		switch {
		case in.b.srv != nil:
			from = "from the built-in emulator (not quantum)"
		case in.b.pool != nil:
			from = "quantum (from the pool)"
		}
		fmt.Fprintf(in.e.stderr, "qrng: %s of 32 bytes, %d %s and %d from crypto/rand, for %d bytes of ChaCha8 output\n",
			plural(st.Reseeds, "reseed"), st.QuantumReseeds, from, fromCrypto, st.Bytes)
	case fromCrypto > 0:
		fmt.Fprintf(in.e.stderr, "qrng: %d of %s came from crypto/rand, not the quantum service\n", fromCrypto, plural(st.Reseeds, "seed"))
	}
}

// sizeText is n bytes in the largest unit that divides it, binary (KiB,
// MiB, ...) or decimal (KB, MB, ...) as the user wrote it.
func sizeText(n int64, binary bool) string {
	units := []struct {
		name string
		mult int64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}}
	if binary {
		units = []struct {
			name string
			mult int64
		}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	}
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d %s", n/u.mult, u.name)
		}
	}
	return plural(n, "byte")
}

// seededRules is the -seeded rule of bytes, ints and floats, for help.
const seededRules = `-seeded writes quantum-seeded ChaCha8 instead of the fetched bytes:
math/rand/v2's ChaCha8, keyed with 32 bytes fetched (from the service,
the pool or the emulator) and rekeyed with 32 fresh bytes after every
-reseed SIZE of output (default 1MiB, at least 8 bytes; SIZE as for
bytes -n). The numbers are quantum-seeded, not quantum: as strong as
ChaCha8, no stronger. floats -n 10000000 -seeded fetches 77 seeds, under
1 Mbit, where the same floats without -seeded take 640 Mbit. stderr says
once what the output is; -v adds the reseeds and how many were quantum.
A seed that cannot be fetched ends the run after what the earlier keys
served (-fallback decides whether crypto/rand may stand in; its seeds are
counted on stderr).`
