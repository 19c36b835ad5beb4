// Command qrng prints random numbers and bytes from QCI's uQRNG service,
// and runs a local emulator of the service.
//
//	qrng ints -n 5 -bits 16     five 16-bit integers, one per line
//	qrng ints -n 10 -max 6      dice: uniform in [0, 6), no modulo bias
//	qrng floats -n 3            uniform in [0, 1)
//	qrng bytes -n 1MiB -o key.bin -format raw|hex|base64
//	qrng usage -from 2026-11-01 -to 2026-11-30
//	qrng serve -addr 127.0.0.1:8080
//	qrng probe, qrng pool fill, qrng pool status, qrng version
//
// The API token comes from $QCI_TOKEN and the service's address from
// $QCI_API_URL. Without a token, or with -emulator, qrng uses a built-in
// emulator and says on stderr that the numbers are not quantum.
//
// Exit status: 0 on success (or when stdout's reader went away), 1 on a
// runtime error, 2 on a usage error (a missing QCI_TOKEN included), 129,
// 130, 131 or 143 when ended by SIGHUP, SIGINT, SIGQUIT or SIGTERM. Run
// 'qrng help' for the rules each flag follows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	ctx, stop := notifyContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env gives the command its surroundings; tests pass their own.
type env struct {
	ctx        context.Context // ends when one of stopSignals arrives
	stdout     io.Writer
	stderr     *console
	getenv     func(string) string
	isTerminal func(io.Writer) bool
	sameFile   func(a, b io.Writer) bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	quiet()
	e := &env{ctx: ctx, stdout: stdout, stderr: &console{w: stderr}, getenv: getenv,
		isTerminal: isTerminal, sameFile: sameFile}
	return e.report(e.dispatch(args))
}

// A command is one of qrng's subcommands. All its flags are checked before
// it does anything; then it runs.
type command interface {
	define(fs *flag.FlagSet)
	// check validates every flag; given holds the names of those set.
	check(given map[string]bool) error
	run(e *env) error
}

// spec describes a command for dispatch and help.
type spec struct {
	name    string
	summary string // one line, for 'qrng help'
	about   string // paragraphs, for 'qrng help <name>'
	new     func() command
}

func lookup(name string) (spec, bool) {
	for _, s := range commands {
		if s.name == name {
			return s, true
		}
	}
	return spec{}, false
}

// errHelpShown ends a command whose help was asked for: exit 0.
var errHelpShown = errors.New("help shown")

func (e *env) dispatch(args []string) error {
	if len(args) == 0 {
		return &usageError{msg: "no command; want one of " + commandNames(), hint: "run 'qrng help'"}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return e.help(rest)
	case "-version", "--version":
		name = "version"
	case "pool": // two words: pool fill, pool status
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return &usageError{msg: "pool: want fill or status", hint: "run 'qrng help'"}
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	s, ok := lookup(name)
	if !ok {
		return &usageError{msg: fmt.Sprintf("unknown command %q; want one of %s", name, commandNames()), hint: "run 'qrng help'"}
	}
	c := s.new()
	fs := flagSet(s, c)
	hint := "run 'qrng help " + s.name + "'"
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return e.commandHelp(s)
		}
		return &usageError{msg: err.Error(), hint: hint}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0)), hint: hint}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := c.check(given); err != nil {
		var ue *usageError
		if errors.As(err, &ue) && ue.hint == "" {
			ue.hint = hint
		}
		return err
	}
	return c.run(e)
}

// flagSet defines c's flags on a set that prints nothing itself: errors
// come back to dispatch, and help is printed by commandHelp.
func flagSet(s spec, c command) *flag.FlagSet {
	fs := flag.NewFlagSet("qrng "+s.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c.define(fs)
	return fs
}

// usageError is a mistake in the command line or the environment, found
// before anything is fetched: exit status 2.
type usageError struct {
	msg  string
	hint string // a second line, such as "run 'qrng help bytes'"; may be empty
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// report prints err, if any, as one line starting "qrng: " (a usage error
// may add a one-line hint) and returns the exit status.
func (e *env) report(err error) int {
	var ue *usageError
	switch {
	case err == nil || errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "qrng: %s\n", bareText(ue.msg))
		if ue.hint != "" {
			fmt.Fprintln(e.stderr, ue.hint)
		}
		return 2
	case e.ctx.Err() != nil:
		sig := interruption(e.ctx)
		msg := "qrng: interrupted by " + signalName(sig)
		var in *interrupted
		if errors.As(err, &in) && in.done != "" {
			msg += " " + bareText(in.done)
		}
		fmt.Fprintln(e.stderr, msg)
		return 128 + int(sig)
	default:
		fmt.Fprintf(e.stderr, "qrng: %s\n", bare(err))
		return 1
	}
}
