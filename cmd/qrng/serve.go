package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
)

func (e *env) serve(args []string) error {
	fs := flag.NewFlagSet("qrng serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	token := fs.String("token", "", "API token to accept (default: a random one, printed)")
	seed := fs.Uint64("seed", 0, "nonzero: reproducible numbers from this seed")
	quota := fs.Int64("quota-bits", 0, "monthly quota in bits (default 1000000000; negative: none)")
	maxBits := fs.Int("max-bits", 0, "largest n_bits accepted, 1..64 (default 64)")
	ttl := fs.Duration("token-ttl", 0, "access-token lifetime (default 1h)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *maxBits < 0 || *maxBits > 64 {
		return usagef("-max-bits %d outside 1..64", *maxBits)
	}
	if *ttl < 0 {
		return usagef("-token-ttl %s is negative", *ttl)
	}
	em := qrngtest.New(qrngtest.Options{Token: *token, Seed: *seed, QuotaBits: *quota, MaxBits: *maxBits, AccessTokenTTL: *ttl})
	ln, err := net.Listen("tcp", *addr)
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
