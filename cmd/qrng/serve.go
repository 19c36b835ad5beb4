package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
)

type serveCmd struct {
	addr, token string
	seed        uint64
	quota       int64
	maxBits     int
	ttl         time.Duration
	rate        int64
}

func (c *serveCmd) define(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`HOST:PORT` to listen on (port 0: any free port)")
	fs.StringVar(&c.token, "token", "", "API token to accept (default: a random one, printed)")
	fs.Uint64Var(&c.seed, "seed", 0, "reproducible numbers from this nonzero seed (default: crypto/rand)")
	fs.Int64Var(&c.quota, "quota-bits", 1_000_000_000, "monthly quota in bits; negative: none")
	fs.IntVar(&c.maxBits, "max-bits", 64, "largest n_bits accepted, 1..64")
	fs.DurationVar(&c.ttl, "token-ttl", time.Hour, "access-token lifetime")
	fs.Int64Var(&c.rate, "rate", 0, "`BITS` per second the emulated device makes: a request of n values of b bits is answered n*b/BITS seconds later (default: at once)")
}

func (c *serveCmd) check(given map[string]bool) error {
	if _, port, err := net.SplitHostPort(c.addr); err != nil || !validPort(port) {
		return usagef("-addr %q: want HOST:PORT", c.addr)
	}
	switch {
	case given["token"] && c.token == "":
		return usagef("-token: want a token (omit -token for a random one)")
	case given["seed"] && c.seed == 0:
		return usagef("-seed 0: want a nonzero seed (omit -seed for crypto/rand numbers)")
	case c.quota == 0:
		return usagef("-quota-bits 0: want a positive number of bits, or a negative one for no quota")
	case c.maxBits < 1 || c.maxBits > 64:
		return usagef("-max-bits %d outside 1..64", c.maxBits)
	case c.ttl <= 0:
		return usagef("-token-ttl %s: want a positive duration", c.ttl)
	case given["rate"] && c.rate <= 0:
		return usagef("-rate %d: want a positive number of bits per second (omit -rate for answers at once)", c.rate)
	}
	return nil
}

func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n <= 65535
}

// run serves until the context ends (SIGINT, SIGTERM): a clean stop,
// status 0.
func (c *serveCmd) run(e *env) error {
	em := qrngtest.New(qrngtest.Options{Token: c.token, Seed: c.seed, QuotaBits: c.quota, MaxBits: c.maxBits, AccessTokenTTL: c.ttl, Rate: c.rate})
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("qrng: serve: %w", err)
	}
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "qrng emulator listening on %s (numbers are NOT quantum)\n", url)
	fmt.Fprintf(e.stdout, "API token: %s\n", em.Token())
	fmt.Fprintf(e.stdout, "try: export QCI_API_URL=%s QCI_TOKEN=%s; qrng ints -n 5\n", url, em.Token())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("qrng: serve: %w", err)
	case <-e.ctx.Done():
	}
	em.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("qrng: serve: %w", err)
	}
	return nil
}
