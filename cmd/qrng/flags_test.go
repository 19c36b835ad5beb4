package main

import (
	"strings"
	"testing"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertUsageError checks the shape of every usage error: exit status 2,
// nothing on stdout, one line "qrng: ..." containing want, and at most one
// more line, a hint of the form "run 'qrng help ...'".
func assertUsageError(t *testing.T, r result, want string) {
	t.Helper()
	assert.Equal(t, 2, r.code, "exit status; stderr %q", r.stderr)
	assert.Empty(t, r.stdout)
	require.True(t, strings.HasSuffix(r.stderr, "\n"), "stderr ends its line: %q", r.stderr)
	ls := stderrLines(r.stderr)
	require.LessOrEqual(t, len(ls), 2, "one line and at most a hint: %q", r.stderr)
	assert.True(t, strings.HasPrefix(ls[0], "qrng: "), "starts with qrng: %q", ls[0])
	assert.Equal(t, 1, strings.Count(ls[0], "qrng:"), "one prefix: %q", ls[0])
	assert.Contains(t, ls[0], want)
	if len(ls) == 2 {
		assert.Regexp(t, `^run 'qrng help( [a-z]+)?'`, ls[1])
	}
}

// Issue 9, item 17: -bits 0 divided by zero before it was checked.
func TestZeroBitsIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"bytes", "-n", "32", "-bits", "0"},
		{"floats", "-n", "3", "-bits", "0"},
		{"ints", "-n", "3", "-bits", "0", "-max", "6"},
		{"ints", "-n", "3", "-bits", "0"},
		{"bytes", "-bits", "0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			assertUsageError(t, runCmd(t, nil, args...), "qrng: -bits 0 outside 1..64")
		})
	}
}

// Issue 9, items 17, 18 and 23: every command checks every flag before it
// does anything, and a mistake prints one line (plus at most a hint).
func TestUsageErrorsAreOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "qrng: no command"},
		{[]string{"dice"}, `qrng: unknown command "dice"`},
		{[]string{"help", "dice"}, `qrng: unknown command "dice"`},
		{[]string{"ints", "-x"}, "flag provided but not defined: -x"},
		{[]string{"bytes", "-n"}, "flag needs an argument: -n"},
		{[]string{"ints", "-n", "many"}, `invalid value "many" for flag -n`},
		{[]string{"ints", "-bits", "65"}, "qrng: -bits 65 outside 1..64"},
		{[]string{"floats", "-bits", "-1"}, "qrng: -bits -1 outside 1..64"},
		{[]string{"ints", "-n", "-4"}, "qrng: -n -4: want at least 1"},
		{[]string{"ints", "-max", "-1"}, `invalid value "-1" for flag -max`},
		{[]string{"bytes", "-n", "1", "-fallback", "sometimes"}, `qrng: -fallback "sometimes": want never, quota or error`},
		{[]string{"floats", "-fallback", ""}, `qrng: -fallback "": want never, quota or error`},
		{[]string{"bytes", "-n", "1", "-format", "octal"}, `qrng: -format "octal": want raw, hex or base64`},
		{[]string{"bytes", "-n", "lots"}, `qrng: -n "lots": want a whole number of bytes`},
		{[]string{"floats", "extra"}, `qrng: unexpected argument "extra"`},
		{[]string{"usage", "-from", "yesterday"}, `qrng: -from "yesterday": want a date as YYYY-MM-DD`},
		{[]string{"usage", "-to", "2026-13-01"}, `qrng: -to "2026-13-01": want a date as YYYY-MM-DD`},
		{[]string{"usage", "-from", "2026-11-02", "-to", "2026-11-01"}, "qrng: -to 2026-11-01 is before -from 2026-11-02"},
		{[]string{"serve", "-max-bits", "65"}, "qrng: -max-bits 65 outside 1..64"},
		{[]string{"serve", "-token-ttl", "-1s"}, "qrng: -token-ttl -1s: want a positive duration"},
		{[]string{"serve", "-addr", "nonsense"}, `qrng: -addr "nonsense": want HOST:PORT`},
		{[]string{"serve", "-addr", "127.0.0.1:99999"}, `qrng: -addr "127.0.0.1:99999": want HOST:PORT`},
		{[]string{"serve", "stray"}, `qrng: unexpected argument "stray"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			assertUsageError(t, runCmd(t, nil, tc.args...), tc.want)
		})
	}
}

// Issue 9, item 23: zero or empty never silently means something else.
func TestZeroAndEmptyValuesAreUsageErrors(t *testing.T) {
	file := t.TempDir() + "/out.bin"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bytes", "-n", "0"}, "qrng: -n 0: want at least 1 byte (omit -n to stream)"},
		{[]string{"bytes", "-n", "0KiB"}, "qrng: -n 0KiB: want at least 1 byte"},
		{[]string{"bytes", "-n", ""}, `qrng: -n "": want a whole number of bytes`},
		{[]string{"ints", "-n", "0"}, "qrng: -n 0: want at least 1"},
		{[]string{"floats", "-n", "0"}, "qrng: -n 0: want at least 1"},
		{[]string{"ints", "-n", "3", "-max", "0"}, "qrng: -max 0: want at least 1 (omit -max for the raw values)"},
		{[]string{"bytes", "-n", "4", "-o", ""}, "qrng: -o: want a file name"},
		{[]string{"serve", "-max-bits", "0"}, "qrng: -max-bits 0 outside 1..64"},
		{[]string{"serve", "-quota-bits", "0"}, "qrng: -quota-bits 0: want a positive number of bits, or a negative one for no quota"},
		{[]string{"serve", "-seed", "0"}, "qrng: -seed 0: want a nonzero seed (omit -seed for crypto/rand numbers)"},
		{[]string{"serve", "-token-ttl", "0s"}, "qrng: -token-ttl 0s: want a positive duration"},
		// Issue 18, item 8: an empty -key or -token, or a -key with no
		// pool to name, was silently ignored.
		{[]string{"bytes", "-key=", "-n", "4"}, `qrng: -key: want a prefix (omit -key for "{qrng}")`},
		{[]string{"ints", "-key", ""}, `qrng: -key: want a prefix`},
		{[]string{"bytes", "-key", "fleet", "-n", "4"}, "qrng: -key fleet needs a pool: give -redis URL or set QRNG_REDIS_URL"},
		{[]string{"floats", "-key", "fleet"}, "qrng: -key fleet needs a pool"},
		{[]string{"ints", "-emulator", "-key", "fleet"}, "qrng: -key fleet names a pool, and -emulator uses none"},
		{[]string{"serve", "-token="}, "qrng: -token: want a token (omit -token for a random one)"},
		{[]string{"ints", "-o", ""}, "qrng: -o: want a file name"},
		{[]string{"probe", "-emulator", "-o", ""}, "qrng: -o: want a file name"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			assertUsageError(t, runCmd(t, nil, tc.args...), tc.want)
		})
	}
	assert.NoFileExists(t, file)
}

// Issue 9, item 23: usage asks the service about the account, so without a
// token it is an error, not the emulator's "0 bits used"; and it accepts
// only the flags it uses.
func TestUsageNeedsATokenAndOnlyItsFlags(t *testing.T) {
	r := runCmd(t, nil, "usage")
	assertUsageError(t, r, "qrng: usage needs QCI_TOKEN")
	assert.NotContains(t, r.stderr, "bits used")

	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	env := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	for _, args := range [][]string{{"-bits", "99"}, {"-bits", "16"}, {"-fallback", "bogus"}, {"-emulator"}} {
		r := runCmd(t, env, append([]string{"usage"}, args...)...)
		assertUsageError(t, r, "flag provided but not defined: "+args[0])
	}
	assert.Zero(t, srv.Counters().UsageRequests, "a usage error asks the service nothing")
}

// Issue 9, item 18: help goes to stdout, exit 0, and documents the rules.
func TestHelp(t *testing.T) {
	r := runCmd(t, nil, "help")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	for _, want := range []string{"bytes", "ints", "floats", "usage", "serve", "K or KiB = 1024", "KB = 1000",
		"130", "143", "run 'qrng help <command>'"} {
		assert.Contains(t, r.stdout, want)
	}
	for _, args := range [][]string{{"help", "bytes"}, {"bytes", "-h"}, {"bytes", "-help"}} {
		r := runCmd(t, nil, args...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Empty(t, r.stderr)
		for _, want := range []string{"usage: qrng bytes [flags]", "-n SIZE", "-o FILE", "-format", "-bits", "-fallback", "-emulator", "needs -n"} {
			assert.Contains(t, r.stdout, want, "%v", args)
		}
	}
	r = runCmd(t, nil, "help", "usage")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "-from")
	assert.NotContains(t, r.stdout, "-bits")
}

// Issue 9, item 24, and issue 18, item 12: qrng's own size rule (not
// coreutils'): K and KiB are 1024, KB is 1000, b is one byte, units in
// any case. TestReadmeSizeTable checks the README's examples.
func TestSizeUnits(t *testing.T) {
	for in, want := range map[string]int{"32": 32, "7B": 7, "7b": 7, "1b": 1, "4k": 4096, "4K": 4096, "4KiB": 4096, "4kib": 4096,
		"4KB": 4000, "4kB": 4000, "4kb": 4000, "1m": 1 << 20, "1MB": 1_000_000, "1 KiB": 1024} {
		r := runCmd(t, nil, "bytes", "-n", in, "-bits", "64")
		require.Equal(t, 0, r.code, "%s: %s", in, r.stderr)
		assert.Len(t, r.stdout, want, in)
	}
	for _, bad := range []string{"1.5K", "K", "4Q", "4 KiBs", "4KiBB", "0x10", "99999999999T", "-1", "+4", "1e3", "1 000", "4kibi"} {
		assertUsageError(t, runCmd(t, nil, "bytes", "-n", bad), "-n")
	}
}

// Issue 9, item 26: an error about QCI_API_URL has one "qrng:" prefix.
func TestEnvironmentErrorHasOnePrefix(t *testing.T) {
	env := map[string]string{"QCI_TOKEN": "secret-token", "QCI_API_URL": "http://example.com"}
	for _, args := range [][]string{{"ints"}, {"bytes", "-n", "1"}, {"floats"}, {"usage"}} {
		t.Run(args[0], func(t *testing.T) {
			r := runCmd(t, env, args...)
			assertUsageError(t, r, `qrng: QCI_API_URL: plain http to non-loopback host "example.com"`)
			assert.NotContains(t, r.stderr, "secret-token")
		})
	}
}

// Issue 18, item 14: 'qrng help pool' shows both pool commands, 'qrng
// help help' is help's own help, and neither is an error.
func TestHelpOfPoolAndOfHelp(t *testing.T) {
	r := runCmd(t, nil, "help", "pool")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "usage: qrng pool fill [flags]")
	assert.Contains(t, r.stdout, "usage: qrng pool status [flags]")
	assert.Contains(t, r.stdout, "-target")
	r = runCmd(t, nil, "help", "help")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "usage: qrng help [command]")
	assert.Empty(t, r.stderr)
	r = runCmd(t, nil, "help")
	require.Equal(t, 0, r.code)
	for _, want := range []string{"  version ", "  help ", "not coreutils'", "129, 130, 131 or 143", "a missing QCI_TOKEN"} {
		assert.Contains(t, r.stdout, want)
	}
	assert.NotContains(t, r.stdout, "as coreutils reads them")
}
