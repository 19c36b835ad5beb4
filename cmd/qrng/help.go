package main

import (
	"fmt"
	"strings"
)

var commands = []spec{
	{"bytes", "random bytes, raw, hex or base64: -n SIZE, -o FILE",
		`Writes -n SIZE random bytes to stdout, or to the file -o names.
Without -n it streams until interrupted or until stdout's reader goes away
(a closed pipe ends it with status 0).

SIZE is a whole number with an optional unit, in any case: B = 1;
K or KiB = 1024, M or MiB = 1024^2, G or GiB, T or TiB; KB = 1000,
MB = 1000^2, GB, TB (coreutils' convention). -n 0 is an error.

-o FILE needs -n. The bytes go to a temporary file in FILE's folder,
renamed to FILE only when all of them are written: if the run fails or is
interrupted, FILE is left as it was and nothing partial is kept. The file
is created readable by its owner only. FILE must be a regular file or a
new name; to write to a device or a pipe, redirect stdout.

A progress bar is drawn on stderr for 1 MB or more when stderr is a
terminal and stdout is not that same terminal, in the units -n used
(MiB for K/M/G/KiB units, MB otherwise).`,
		func() command { return new(bytesCmd) }},
	{"ints", "integers: -n COUNT values of -bits, or uniform in [0, -max)",
		`Prints -n COUNT integers, one per line: the service's -bits wide values
exactly as sent, or with -max N, integers uniform in [0, N) without modulo
bias (about 64 bits fetched per integer). COUNT and N are at least 1;
without -max the values are raw.`,
		func() command { return new(intsCmd) }},
	{"floats", "floats uniform in [0, 1): -n COUNT",
		`Prints -n COUNT floats uniform in [0, 1), one per line, each from 53
random bits (64 fetched). COUNT is at least 1.`,
		func() command { return new(floatsCmd) }},
	{"usage", "bits your account used: -from DATE -to DATE",
		`Asks the service how many bits your account used from -from to -to
(UTC days, both included; default: this month so far), then prints this
month's use, what remains of the 10^9-bit quota, the UTC days left and the
even daily share (what remained at the start of today over the days left,
today included). It needs QCI_TOKEN: the emulator has no account to ask
about.`,
		func() command { return new(usageCmd) }},
	{"serve", "run the emulator on HOST:PORT for curl or any language",
		`Runs the emulator of the service (numbers NOT quantum) until SIGINT or
SIGTERM, which stop it cleanly with status 0. It prints its address and
the API token it accepts.`,
		func() command { return new(serveCmd) }},
	{"probe", "check the live service against every assumption (run it first)",
		`Sends a short, fixed sequence of requests (at most 4,677 bits in all)
that checks each assumption this library makes about the live service, and
prints one line per assumption: what was sent, what came back, whether it
holds, and the setting to use where it differs. -json prints the same as
one JSON object, -o FILE writes it to FILE. It needs QCI_TOKEN; -emulator
probes the built-in emulator instead. Exit status 0 when every assumption
holds, 1 when one differs or the probe could not run.`,
		func() command { return new(probeCmd) }},
	{"pool fill", "fill a shared pool in Redis for a fleet: -redis URL",
		`Runs a filler of the pool at -redis (default $QRNG_REDIS_URL) until
SIGINT or SIGTERM: it fetches batches from the service with QCI_TOKEN,
health-checks them, cuts them into chunks and keeps about -target bytes in
the pool, refilling when half is gone. Every filler of the pool reserves
its requests on one monthly counter in Redis, so any number of them spend
at most -quota bits a month between them, and by default at most an even
share of what remains per UTC day (-daily off, or -daily BITS, spends
faster on purpose). It prints the target and the day's share at start;
each top-up is logged on stderr. It refuses a Redis that can evict the
pool (maxmemory-policy other than noeviction) or whose maxmemory cannot
hold -target, and a pool set up with another -quota, -chunk, -bits or
-daily. Consumers (bytes, ints, floats with -redis) need no token.`,
		func() command { return new(poolFillCmd) }},
	{"pool status", "what a shared pool holds: bytes, quota and share used, fillers",
		`Prints one line per fact about the pool at -redis (default
$QRNG_REDIS_URL): bytes pooled, this month's quota used, today's use and
share, when the day and the month renew, whether it is being filled, and
each filler seen recently. Exit status 1 if Redis cannot be reached.`,
		func() command { return new(poolStatusCmd) }},
}

func commandNames() string {
	var names []string
	for _, s := range commands {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// help prints the overview, or with a command's name, its help.
func (e *env) help(args []string) error {
	if len(args) > 1 && args[0] == "pool" {
		args = append([]string{"pool " + args[1]}, args[2:]...)
	} else if len(args) == 1 && args[0] == "pool" {
		return e.help([]string{"pool", "fill"}) // the pool's commands share their story
	}
	if len(args) > 0 {
		s, ok := lookup(args[0])
		if !ok {
			return &usageError{msg: fmt.Sprintf("unknown command %q; want one of %s", args[0], commandNames()), hint: "run 'qrng help'"}
		}
		if len(args) > 1 {
			return &usageError{msg: fmt.Sprintf("unexpected argument %q", args[1]), hint: "run 'qrng help'"}
		}
		return e.commandHelp(s)
	}
	var b strings.Builder
	b.WriteString("usage: qrng <command> [flags]\n\ncommands:\n")
	for _, s := range commands {
		fmt.Fprintf(&b, "  %-11s %s\n", s.name, s.summary)
	}
	b.WriteString(`
run 'qrng help <command>' for a command's flags and rules.

Numbers come from the service when QCI_TOKEN is set (its address:
QCI_API_URL, default https://api.qci-prod.com), else from a built-in
emulator, which stderr says are NOT quantum and which has no monthly quota.
-fallback never (the default) makes quota or service trouble an error
rather than crypto/rand output.

Flags go after the command's name. Every flag is checked before anything
is fetched; a flag's default is shown in the command's help, and no value
(0, "") silently stands for another. Commands given -n fetch on demand,
nothing ahead, and wait up to 2 minutes for the service.

sizes (bytes -n) are whole numbers with an optional unit, in any case, as
coreutils reads them: B = 1; K or KiB = 1024, M or MiB, G or GiB, T or TiB
are powers of 1024; KB = 1000, MB, GB, TB are powers of 1000.

exit status: 0 success; 1 runtime error; 2 usage error (command line or
environment); 130 or 143 interrupted by SIGINT or SIGTERM, after one line
saying how much was written. An error is one line on stderr, a usage
error perhaps followed by a one-line hint.
`)
	fmt.Fprint(e.stdout, b.String())
	return errHelpShown
}

// commandHelp prints s's description and flags on stdout.
func (e *env) commandHelp(s spec) error {
	fs := flagSet(s, s.new())
	var b strings.Builder
	fmt.Fprintf(&b, "usage: qrng %s [flags]\n\n%s\n\nflags:\n", s.name, s.about)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fmt.Fprint(e.stdout, b.String())
	return errHelpShown
}
