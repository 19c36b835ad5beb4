package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 16, item 5: -reseed needs -seeded, and a size of at least 8 bytes
// in the -n syntax; each mistake is a usage error naming it.
func TestSeededFlagsUsageErrors(t *testing.T) {
	for _, cmd := range [][]string{{"bytes", "-n", "32"}, {"ints", "-n", "3"}, {"floats", "-n", "3"}} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-reseed", "4K"}, "qrng: -reseed 4K needs -seeded"},
			{[]string{"-seeded", "-reseed", "7"}, "qrng: -reseed 7: want at least 8 bytes"},
			{[]string{"-seeded", "-reseed", "0"}, "qrng: -reseed 0: want at least 8 bytes"},
			{[]string{"-seeded", "-reseed", ""}, `qrng: -reseed "": want a whole number of bytes`},
			{[]string{"-seeded", "-reseed", "-8"}, `qrng: -reseed "-8": want a whole number of bytes`},
			{[]string{"-seeded", "-reseed", "1Q"}, `qrng: -reseed "1Q": want a whole number of bytes`},
			{[]string{"-seeded", "-reseed", "9999999T"}, `qrng: -reseed "9999999T": too large`},
			{[]string{"-seeded=maybe"}, `invalid boolean value "maybe" for -seeded`},
		} {
			args := append(append([]string{}, cmd...), tc.args...)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				srv := qrngtest.NewServer(qrngtest.Options{})
				defer srv.Close()
				r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, args...)
				assertUsageError(t, r, tc.want)
				assert.Zero(t, srv.Counters().RandomRequests, "checked before anything is fetched")
			})
		}
	}
}

// streamOf is the byte stream a Source makes of batches of 16-bit values:
// each value big-endian, back to back.
func streamOf(batches [][]uint64) []byte {
	var s []byte
	for _, b := range batches {
		for _, v := range b {
			s = append(s, byte(v>>8), byte(v))
		}
	}
	return s
}

// chacha8Under is the output of a Seeded that takes its seeds from
// stream, every every bytes of output: n bytes.
func chacha8Under(stream []byte, every, n int) []byte {
	out := make([]byte, 0, n)
	for k := 0; len(out) < n; k++ {
		p := make([]byte, min(every, n-len(out)))
		rand.NewChaCha8([32]byte(stream[32*k : 32*k+32])).Read(p)
		out = append(out, p...)
	}
	return out
}

// Issue 16, item 5: -seeded output is ChaCha8 under the service's bytes,
// 32 of them per key, a new key every -reseed bytes of output; floats and
// ints read that output as they read the Source's bytes. Stderr says once
// what the output is.
func TestSeededOutputIsChaCha8UnderTheServicesSeeds(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		every  int
		n      int // bytes of output
		banner string
	}{
		{[]string{"bytes", "-n", "3000", "-format", "hex", "-seeded", "-reseed", "1000"}, 1000, 3000, "reseeded every 1 KB"},
		{[]string{"bytes", "-n", "1KiB", "-format", "hex", "-seeded"}, 1 << 20, 1024, "reseeded every 1 MiB"},
		{[]string{"bytes", "-n", "100", "-format", "hex", "-seeded", "-reseed", "8"}, 8, 100, "reseeded every 8 bytes"},
		{[]string{"bytes", "-n", "4096", "-format", "hex", "-seeded", "-reseed", "2K"}, 2048, 4096, "reseeded every 2 KiB"},
		{[]string{"floats", "-n", "300", "-seeded", "-reseed", "1001"}, 1001, 2400, "reseeded every 1001 bytes"},
		{[]string{"ints", "-n", "300", "-bits", "16", "-seeded", "-reseed", "100"}, 100, 600, "reseeded every 100 bytes"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := qrngtest.NewServer(qrngtest.Options{Record: true})
			defer srv.Close()
			r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, tc.args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, "qrng: quantum-seeded ChaCha8: ChaCha8 output under keys from the service, not quantum numbers, "+
				tc.banner+"\n", r.stderr, "said once, and nothing else without -v")

			want := chacha8Under(streamOf(srv.Batches()), tc.every, tc.n)
			var got []byte
			switch tc.args[0] {
			case "bytes":
				var err error
				got, err = hex.DecodeString(strings.TrimSuffix(r.stdout, "\n"))
				require.NoError(t, err)
			case "floats":
				for i, l := range lines(r.stdout) {
					v := binary.BigEndian.Uint64(want[8*i:])
					assert.Equal(t, strconv.FormatFloat(float64(v>>11)/(1<<53), 'g', -1, 64), l, "float %d", i)
				}
				got = want[:8*len(lines(r.stdout))]
			case "ints":
				for i, l := range lines(r.stdout) {
					assert.Equal(t, strconv.Itoa(int(binary.BigEndian.Uint16(want[2*i:]))), l, "int %d", i)
				}
				got = want[:2*len(lines(r.stdout))]
			}
			assert.Equal(t, want, got, "ChaCha8 under each 32 bytes the service sent, in turn")
		})
	}
}

// Issue 16, item 5: at -v, the seeds taken and how many were quantum,
// after the line of what was fetched (the seeds: bytes served).
func TestSeededVerboseCountsTheReseeds(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	r := runCmd(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL},
		"bytes", "-n", "10000", "-format", "hex", "-seeded", "-reseed", "1000", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, r.stdout, 20001)
	bits := srv.Counters().BitsServed
	assert.Equal(t, []string{
		"qrng: quantum-seeded ChaCha8: ChaCha8 output under keys from the service, not quantum numbers, reseeded every 1 KB",
		"qrng: fetched " + strconv.FormatInt(bits, 10) + " bits (" + strconv.FormatInt(bits/8, 10) + " bytes) from the service; served 320 bytes",
		"qrng: 10 reseeds of 32 bytes, 10 quantum (from the service) and 0 from crypto/rand, for 10000 bytes of ChaCha8 output",
	}, stderrLines(r.stderr))

	r = runCmd(t, nil, "floats", "-n", "2", "-seeded", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, []string{
		"qrng: no QCI_TOKEN set: using the built-in emulator; these numbers are NOT quantum (crypto/rand)",
		"qrng: ChaCha8 seeded from the built-in emulator (NOT quantum-seeded), reseeded every 1 MiB",
		"qrng: fetched 4096 bits (512 bytes) from the built-in emulator; served 32 bytes",
		"qrng: 1 reseed of 32 bytes, 1 from the built-in emulator (not quantum) and 0 from crypto/rand, for 16 bytes of ChaCha8 output",
	}, stderrLines(r.stderr))
}

// floatLines counts the lines floats writes and checks the first
// floatsChecked of them: each a float in [0, 1). It keeps their sum.
// (Parsing all of 10 million lines under the race detector would take
// longer than the command's run.)
type floatLines struct {
	mu      sync.Mutex
	rest    []byte // a checked line not yet ended
	n       int    // lines ended
	last    byte   // the last byte written
	sum     float64
	invalid string // the first checked line that is not a float in [0, 1)
}

const floatsChecked = 100_000

func (w *floatLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) > 0 {
		w.last = p[len(p)-1]
	}
	if w.n >= floatsChecked {
		w.n += bytes.Count(p, []byte("\n"))
		return len(p), nil
	}
	data := append(w.rest, p...)
	for w.n < floatsChecked {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		v, err := strconv.ParseFloat(string(data[:i]), 64)
		if (err != nil || v < 0 || v >= 1) && w.invalid == "" {
			w.invalid = string(data[:i])
		}
		w.n++
		w.sum += v
		data = data[i+1:]
	}
	if w.n >= floatsChecked {
		w.n += bytes.Count(data, []byte("\n"))
		data = nil
	}
	w.rest = append(w.rest[:0], data...)
	return len(p), nil
}

// Issue 16, item 5: qrng floats -n 10000000 -seeded spends less than 1
// Mbit: 77 seeds of 32 bytes, fetched in the slow start's few small
// requests, where the same floats without -seeded take 640 Mbit.
func TestSeededTenMillionFloatsSpendUnderAMegabit(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	envv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	const n = 10_000_000
	w := &floatLines{}
	var errb bytes.Buffer
	code := run(context.Background(), []string{"floats", "-n", strconv.Itoa(n), "-seeded", "-v"}, w, &errb,
		func(k string) string { return envv[k] })
	require.Equal(t, 0, code, errb.String())
	assert.Equal(t, n, w.n, "lines written")
	assert.Equal(t, byte('\n'), w.last, "the last line ends")
	assert.Empty(t, w.invalid, "a line that is not a float in [0, 1)")
	assert.InDelta(t, 0.5, w.sum/floatsChecked, 0.01, "the mean of the first %d", floatsChecked)

	bits := srv.Counters().BitsServed
	assert.Less(t, bits, int64(1_000_000), "bits the service sent")
	// What the README shows: on demand, five requests of one 512-byte
	// window bring the 2,464 bytes of seeds.
	assert.EqualValues(t, 8*5*512, bits)
	ls := stderrLines(errb.String())
	require.Len(t, ls, 3, errb.String())
	assert.Equal(t, "qrng: fetched "+strconv.FormatInt(bits, 10)+" bits ("+strconv.FormatInt(bits/8, 10)+
		" bytes) from the service; served 2464 bytes", ls[1], "the -v line says what was fetched")
	assert.Equal(t, "qrng: 77 reseeds of 32 bytes, 77 quantum (from the service) and 0 from crypto/rand, "+
		"for 80000000 bytes of ChaCha8 output", ls[2])
}

// Issue 16, item 5: seeds the Source serves from crypto/rand are counted
// as such on stderr, with -v and without; with -fallback never (the
// default) a seed that cannot be had ends the run, after the output the
// keys before it served, and nothing past it.
func TestSeededFallbackAndFailedReseeds(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: 100}) // every request is past the quota
	defer srv.Close()
	envv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	r := runCmd(t, envv, "bytes", "-n", "3000", "-format", "hex", "-seeded", "-reseed", "1000", "-fallback", "quota")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, r.stdout, 6001)
	assert.Contains(t, r.stderr, "qrng: 96 of 96 bytes came from crypto/rand, not the quantum service")
	assert.Contains(t, r.stderr, "\nqrng: 3 of 3 seeds came from crypto/rand, not the quantum service\n")

	r = runCmd(t, envv, "bytes", "-n", "3000", "-format", "hex", "-seeded", "-reseed", "1000", "-fallback", "quota", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "\nqrng: 3 reseeds of 32 bytes, 0 quantum (from the service) and 3 from crypto/rand, for 3000 bytes of ChaCha8 output\n")
	assert.NotContains(t, r.stderr, "seeds came from", "-v says it in its line")

	r = runCmd(t, envv, "floats", "-n", "3", "-seeded")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	assert.Regexp(t, `\nqrng: no seed for the seeded generator: .*monthly quota exceeded.* \(after 0 of 3 values written\)\n$`, r.stderr)

	// The first request is served (512 bytes: 16 seeds), every later one
	// refused: 16 keys of 1000 bytes, then the error.
	r = runCmd(t, oneBatchServer(t), "bytes", "-n", "100000", "-format", "hex", "-seeded", "-reseed", "1000")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Len(t, r.stdout, 2*16000+1, "the output of the 16 keys, and nothing past them")
	assert.Regexp(t, `\nqrng: no seed for the seeded generator: .*refused.* \(after 16000 of 100000 bytes written\)\n$`, r.stderr)
}

// An interrupt ends a -seeded run that waits for a seed (the service
// hangs) at once, as it ends any run, though a Seeded's Read takes no
// context.
func TestSeededInterruptedWhileWaitingForASeed(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	srv.Inject(qrngtest.Fault{}, qrngtest.Fault{Latency: time.Hour, Times: -1}) // the first request only
	envv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &countingWriter{}
	var errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"bytes", "-n", "10MB", "-seeded", "-reseed", "64"}, w, &errb, func(k string) string { return envv[k] })
	}()
	require.Eventually(t, func() bool { return srv.Counters().RandomRequests >= 2 }, time.Minute, time.Millisecond)
	cancel(signalled{syscall.SIGINT})
	select {
	case code := <-done:
		assert.Equal(t, 130, code, errb.String())
	case <-time.After(waitTimeout / 2): // a Read that ignored the interrupt would wait waitTimeout for the seed
		t.Fatal("the interrupt did not end the wait for a seed")
	}
	assert.Regexp(t, `\nqrng: interrupted by SIGINT after 1024 of 10000000 bytes\n$`, errb.String(), "16 keys of 64 bytes")
	assert.Equal(t, 1024, w.n)
}

// The reseed sizes stderr shows, in the unit the user wrote.
func TestSeededSizeText(t *testing.T) {
	for _, tc := range []struct {
		n      int64
		binary bool
		want   string
	}{
		{1 << 20, true, "1 MiB"}, {64 << 10, true, "64 KiB"}, {3 << 30, true, "3 GiB"}, {1 << 40, true, "1 TiB"},
		{1536, true, "1536 bytes"}, {3072, true, "3 KiB"},
		{1e6, false, "1 MB"}, {1000, false, "1 KB"}, {1001, false, "1001 bytes"}, {8, false, "8 bytes"},
		{2e9, false, "2 GB"}, {1500, true, "1500 bytes"},
	} {
		assert.Equal(t, tc.want, sizeText(tc.n, tc.binary), "%d", tc.n)
	}
	assert.True(t, regexp.MustCompile(`^\d+ bytes$`).MatchString(sizeText(9223372036854775807, true)))
}

// Issue 16, item 5: the help of bytes, ints and floats documents -seeded
// and -reseed; the overview names -reseed among the sizes.
func TestSeededHelp(t *testing.T) {
	for _, cmd := range []string{"bytes", "ints", "floats"} {
		r := runCmd(t, nil, "help", cmd)
		require.Equal(t, 0, r.code, r.stderr)
		for _, want := range []string{"-seeded\n", "-reseed SIZE", `(default "1MiB")`, "quantum-seeded, not quantum",
			"floats -n 10000000 -seeded fetches 77 seeds"} {
			assert.Contains(t, r.stdout, want, cmd)
		}
	}
	r := runCmd(t, nil, "help")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "sizes (bytes -n, -reseed)")
}

// Issue 16, item 5: -seeded over a pool takes its seeds from the pool's
// chunks, and says so.
func TestSeededFromAPool(t *testing.T) {
	url := startRedis(t)
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		run(ctx, []string{"pool", "fill", "-target", "1MiB"}, io.Discard, io.Discard,
			func(k string) string {
				return map[string]string{"QCI_API_URL": srv.URL, "QCI_TOKEN": srv.Token, "QRNG_REDIS_URL": url}[k]
			})
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	consumer := map[string]string{"QRNG_REDIS_URL": url}
	require.Eventually(t, func() bool {
		r := runCmd(t, consumer, "pool", "status")
		return r.code == 0 && !strings.HasPrefix(r.stdout, "pool: 0 bytes")
	}, 30*time.Second, 20*time.Millisecond)

	r := runCmd(t, consumer, "bytes", "-n", "3000", "-format", "hex", "-seeded", "-reseed", "1000", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, r.stdout, 6001)
	assert.Equal(t, []string{
		"qrng: quantum-seeded ChaCha8: ChaCha8 output under keys from the pool, not quantum numbers, reseeded every 1 KB",
		"qrng: fetched 131072 bits (16384 bytes) from the pool (1 chunk); served 96 bytes",
		"qrng: 3 reseeds of 32 bytes, 3 quantum (from the pool) and 0 from crypto/rand, for 3000 bytes of ChaCha8 output",
	}, stderrLines(r.stderr))
}

// A -seeded stream (bytes without -n) fetches its seeds on demand too:
// 10 MiB of output take 10 or 11 seeds, one request of 512 bytes, where a
// Source that prefetched would fetch ahead.
func TestSeededStreamFetchesOnDemand(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	envv := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	w := &countingWriter{limit: 10 << 20} // then fails as a closed pipe
	var errb bytes.Buffer
	code := run(context.Background(), []string{"bytes", "-seeded", "-v"}, w, &errb, func(k string) string { return envv[k] })
	require.Equal(t, 0, code, errb.String())
	assert.Equal(t, 10<<20, w.n)
	assert.EqualValues(t, 4096, srv.Counters().BitsServed, "one request of 512 bytes: 16 seeds")
	assert.Regexp(t, `\nqrng: fetched 4096 bits \(512 bytes\) from the service; served 3[25]2 bytes\n`+
		`qrng: 1[01] reseeds of 32 bytes, 1[01] quantum \(from the service\) and 0 from crypto/rand, for \d+ bytes of ChaCha8 output\n$`, errb.String())
}
