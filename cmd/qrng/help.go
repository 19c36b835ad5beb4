package main

import (
	"flag"
	"fmt"
	"strings"
)

var commands = []spec{
	{"bytes", "random bytes, raw, hex or base64: -n SIZE, -o FILE",
		`Writes -n SIZE random bytes to stdout, or to the file -o names.
Without -n it streams until interrupted or until stdout's reader goes away.
Raw bytes are not written to a terminal unless -format raw is given: use
-format hex or base64, or send them to a file or a pipe.

SIZE is digits, then optionally spaces and a unit, in any case: none or
B = 1; K or KiB = 1024, M or MiB = 1024^2, G or GiB, T or TiB; KB = 1000,
MB = 1000^2, GB, TB. This is qrng's rule, not coreutils': b is one byte
(not 512), and kB, KB and kb are all 1000. -n 0 is an error.

` + outputRules + `

-o FILE needs -n here: a stream ends only when interrupted, which keeps
nothing.

A progress bar is drawn on stderr for 1 MB or more when stderr is a
terminal and stdout is not that same terminal, in the units -n used
(MiB for K/M/G/KiB units, MB otherwise), with the rate so far and the
time left at that rate.

` + seededRules,
		func() command { return new(bytesCmd) }},
	{"ints", "integers: -n COUNT values of -bits, or uniform in [0, -max)",
		`Prints -n COUNT integers, one per line: the service's -bits wide values
exactly as sent, or with -max N, integers uniform in [0, N) without modulo
bias (about 64 bits fetched per integer). COUNT and N are at least 1;
without -max the values are raw.

` + outputRules + "\n\n" + seededRules,
		func() command { return new(intsCmd) }},
	{"floats", "floats uniform in [0, 1): -n COUNT",
		`Prints -n COUNT floats uniform in [0, 1), one per line, each from 53
random bits (64 fetched). COUNT is at least 1.

` + outputRules + "\n\n" + seededRules,
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
		`Runs the emulator of the service (numbers NOT quantum) until SIGINT,
SIGTERM, SIGHUP or SIGQUIT, which stop it cleanly with status 0. It prints
its address and the API token it accepts. Point QCI_API_URL at it (and
QCI_TOKEN at its token) to try any command, a pool's filler included,
without an account.`,
		func() command { return new(serveCmd) }},
	{"probe", "check the live service against every assumption (run it first)",
		`Sends a short, fixed sequence of requests (at most 4,677 bits in all)
that checks each assumption this library makes about the live service, and
prints one line per assumption: what was sent, what came back, whether it
holds, and the setting to use where it differs. -json prints the same as
one JSON object, -o FILE writes it to FILE (checked before the first
request; an existing FILE keeps its mode, a new one is 0644, whole or not
at all as for bytes -o). It needs QCI_TOKEN (without it: exit status 2,
as for every command that needs one); -emulator probes the built-in
emulator instead. Exit status 0 when every assumption holds, 1 when one
differs or the probe could not run.`,
		func() command { return new(probeCmd) }},
	{"pool fill", "fill a shared pool in Redis for a fleet: -redis URL",
		`Runs a filler of the pool at -redis (default $QRNG_REDIS_URL) until
SIGINT, SIGTERM, SIGHUP or SIGQUIT: it fetches batches from the service with QCI_TOKEN,
health-checks them, cuts them into chunks and keeps about -target bytes in
the pool, refilling when half is gone. Every filler of the pool reserves
its requests on one monthly counter in Redis, so any number of them spend
at most -quota bits a month between them, and by default at most an even
share of what remains per UTC day (-daily off, or -daily BITS, spends
faster on purpose). It prints the target and the day's share at start;
each top-up is logged on stderr. It refuses a Redis that can evict the
pool (maxmemory-policy other than noeviction) or whose maxmemory cannot
hold -target, and a pool set up with another -quota, -chunk, -bits or
-daily. Consumers (bytes, ints, floats with -redis) need no token.
Redis is named by -redis URL, -redis-file FILE (for a URL with a
password: never on a command line) or $QRNG_REDIS_URL: any node of a
Cluster (or more seeds as ?addr=host:port), or, with -sentinel-master
NAME, the Sentinels. For rediss://, -redis-ca, -redis-cert and -redis-key
name PEM files; a plaintext port fails within the dial timeout.
-emulator fills the pool from the built-in emulator instead (no token;
numbers NOT quantum, which the pool's consumers cannot tell), for trying a
fleet.`,
		func() command { return new(poolFillCmd) }},
	{"pool status", "what a shared pool holds: bytes, quota and share used, fillers",
		`Prints one line per fact about the pool at -redis (default
$QRNG_REDIS_URL): bytes pooled, this month's quota used, today's use and
share, when the day and the month renew, whether it is being filled, and
each filler seen recently. Exit status 1 if Redis cannot be reached.`,
		func() command { return new(poolStatusCmd) }},
	{"version", "the version of this qrng, from its build",
		`Prints the module version this qrng was built from, as Go recorded it
(runtime/debug.ReadBuildInfo): a release tag, a pseudo-version such as
v0.0.0-20261127113249-bc2c78d13f02 for a build from a git checkout
(+dirty when it had changes), or (devel) when Go recorded none (go run,
or -buildvcs=false), with the commit when known. 'qrng -version' is
the same.`,
		func() command { return versionCmd{} }},
	{"help", "every command, or one command's flags and rules: help [command]",
		`Prints the overview of qrng's commands, or with a command's name
(help bytes, help pool fill, help pool), its flags, their defaults and
their rules. Help goes to stdout, with exit status 0.`,
		nil},
}

// outputRules is the -o rule of bytes, ints and floats.
const outputRules = `-o FILE writes FILE whole or not at all: the output is staged apart
(in an anonymous file where the system has them, so that nothing partial
is left even if the process is killed) and FILE is replaced only when all
of it is written. A failed or interrupted run leaves FILE as it was, or
absent. A new FILE is created readable by its owner only (0600). An
existing FILE keeps its mode, owner and group; where a rename would lose
them or its other links (hard links, an owner qrng cannot give, extended
attributes or an ACL, a folder qrng cannot write), FILE is overwritten in
place, and only a failure during that last copy can leave it part old,
part new. Symbolic links are followed to the end of their chain and
never replaced; a loop of them is an error. FILE must be a regular file
or a new name: for a device or a pipe, redirect stdout.

-v says at the end, on stderr, how many bits were fetched (from the
service, the emulator or the pool) and how many bytes were served.`

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
		// The pool's two commands share their story: both helps.
		fill, _ := lookup("pool fill")
		status, _ := lookup("pool status")
		e.commandHelp(fill)
		fmt.Fprintln(e.stdout)
		return e.commandHelp(status)
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

sizes (bytes -n, -reseed) are digits, then optionally spaces and a
unit, in any case: none or B = 1; K or KiB = 1024, M or MiB, G or GiB, T
or TiB are powers of 1024; KB = 1000, MB, GB, TB are powers of 1000
(qrng's rule, not coreutils': b is one byte, not 512).

a closed pipe on stdout (qrng ints -n 1000000 | head -3) ends any command
with status 0, as it ends a stream.

exit status: 0 success (or stdout's reader went away); 1 runtime error;
2 usage error (command line or environment, a missing QCI_TOKEN
included); 129, 130, 131 or 143 ended by SIGHUP, SIGINT, SIGQUIT or
SIGTERM, after one line saying how much was written. An error is one
line on stderr starting "qrng: ", a usage error perhaps followed by a
one-line hint.
`)
	fmt.Fprint(e.stdout, b.String())
	return errHelpShown
}

// commandHelp prints s's description and flags on stdout.
func (e *env) commandHelp(s spec) error {
	var b strings.Builder
	if s.new == nil { // help itself: no flags, an optional command
		fmt.Fprintf(&b, "usage: qrng help [command]\n\n%s\n", s.about)
		fmt.Fprint(e.stdout, b.String())
		return errHelpShown
	}
	fs := flagSet(s, s.new())
	fmt.Fprintf(&b, "usage: qrng %s [flags]\n\n%s\n\nflags:\n", s.name, s.about)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	none := true
	fs.VisitAll(func(*flag.Flag) { none = false })
	if none {
		b.WriteString("  none\n")
	}
	fmt.Fprint(e.stdout, b.String())
	return errHelpShown
}
