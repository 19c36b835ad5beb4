// Command qrng prints random numbers and bytes from QCI's uQRNG service,
// and runs a local emulator of the service.
//
//	qrng ints -n 5 -bits 16     five 16-bit integers, one per line
//	qrng ints -n 10 -max 6      dice: uniform in [0, 6), no modulo bias
//	qrng floats -n 3            uniform in [0, 1)
//	qrng bytes -n 1MiB -o key.bin -format raw|hex|base64
//	qrng usage -from 2026-11-01 -to 2026-11-30
//	qrng serve -addr 127.0.0.1:8080
//
// The API token comes from $QCI_TOKEN and the service's address from
// $QCI_API_URL. Without a token, or with -emulator, qrng uses a built-in
// emulator and says on stderr that the numbers are not quantum.
//
// Exit status: 0 on success, 1 on a runtime error, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usageText = `usage: qrng <command> [flags]

commands:
  bytes    random bytes: -n SIZE (32, 4KiB, 1MiB, 10MB; omit to stream), -o FILE, -format raw|hex|base64
  ints     integers: -n COUNT, -bits WIDTH, -max N for uniform values in [0, N)
  floats   floats uniform in [0, 1): -n COUNT
  usage    bits consumed: -from DATE -to DATE (YYYY-MM-DD, UTC)
  serve    run the local emulator: -addr HOST:PORT, -token TOKEN
  probe    check the live service against the library's assumptions (run it first): -json, -o FILE

common flags (after the command): -emulator, -fallback never|quota|error, -bits WIDTH
environment: QCI_TOKEN (API token), QCI_API_URL (service address)
run 'qrng <command> -h' for a command's flags
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// env gives the command its environment; tests pass their own.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "bytes":
		err = e.bytes(rest)
	case "ints":
		err = e.ints(rest)
	case "floats":
		err = e.floats(rest)
	case "usage":
		err = e.usage(rest)
	case "serve":
		err = e.serve(rest)
	case "probe":
		err = e.probe(rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprintf(stderr, "qrng: unknown command %q\n%s", cmd, usageText)
		return 2
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "qrng: %s\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "%s\n", oneLine(err))
		return 1
	}
}

// oneLine makes sure an error prints as one line starting with "qrng: ".
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if !strings.HasPrefix(s, "qrng") {
		s = "qrng: " + s
	}
	return s
}

// common holds the flags every fetching command accepts.
type common struct {
	emulator bool
	fallback string
	bits     int
}

func (e *env) flags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("qrng "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.BoolVar(&c.emulator, "emulator", false, "use the built-in emulator (numbers are not quantum)")
	fs.StringVar(&c.fallback, "fallback", "never", "when crypto/rand may stand in: never, quota or error")
	fs.IntVar(&c.bits, "bits", qrng.DefaultBits, "width in bits of each value fetched, 1..64")
	return fs
}

// parse parses flags and turns flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func (c *common) policy() (qrng.FallbackPolicy, error) {
	switch c.fallback {
	case "never":
		return qrng.FallbackNever, nil
	case "quota":
		return qrng.FallbackOnQuota, nil
	case "error":
		return qrng.FallbackOnError, nil
	}
	return 0, usagef("-fallback %q: want never, quota or error", c.fallback)
}

// backend is where numbers come from: the service, or the emulator.
type backend struct {
	token, baseURL string
	srv            *qrngtest.Server
}

func (b *backend) close() {
	if b.srv != nil {
		b.srv.Close()
	}
}

// backend picks the service when a token is set, else the emulator, and
// says so on stderr when the numbers will not be quantum.
func (e *env) backend(c *common) *backend {
	token := e.getenv("QCI_TOKEN")
	if token != "" && !c.emulator {
		return &backend{token: token, baseURL: e.getenv("QCI_API_URL")}
	}
	reason := "no QCI_TOKEN set"
	if c.emulator {
		reason = "-emulator given"
	}
	fmt.Fprintf(e.stderr, "qrng: %s: using the built-in emulator; these numbers are NOT quantum (crypto/rand)\n", reason)
	srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: -1})
	return &backend{token: srv.Token, baseURL: srv.URL, srv: srv}
}

// source opens a Source for c, fetching batches of batch values. A
// bounded command (batch > 0) fetches on demand only, so that it asks for
// no value it will not print; a stream (batch 0) prefetches.
func (e *env) source(c *common, batch int) (*qrng.Source, *backend, error) {
	if c.bits < 1 || c.bits > 64 {
		return nil, nil, usagef("-bits %d outside 1..64", c.bits)
	}
	policy, err := c.policy()
	if err != nil {
		return nil, nil, err
	}
	b := e.backend(c)
	if b.baseURL != "" {
		if _, err := qrng.NewClient(qrng.ClientConfig{BaseURL: b.baseURL, Token: b.token}); err != nil {
			b.close()
			return nil, nil, usagef("QCI_API_URL: %v", err)
		}
	}
	cfg := qrng.Config{Token: b.token, BaseURL: b.baseURL, Bits: c.bits, Fallback: policy, Logger: newLogger(e.stderr)}
	if batch > 0 {
		cfg.BatchSize, cfg.OnDemand, cfg.Workers = min(max(batch, 8), qrng.MaxSamples), true, 1
	}
	src := qrng.NewSource(cfg)
	return src, b, nil
}

// finish closes the source and reports fallback use on stderr.
func (e *env) finish(src *qrng.Source, b *backend) {
	st := src.Stats()
	src.Close()
	b.close()
	if st.FallbackBytes > 0 {
		fmt.Fprintf(e.stderr, "qrng: %d of %d bytes came from crypto/rand, not the quantum service (last error: %v)\n",
			st.FallbackBytes, st.FallbackBytes+st.QuantumBytes, st.LastError)
	}
}
