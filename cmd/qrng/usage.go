package main

import (
	"fmt"
	"time"

	"github.com/qrng-go/qrng"
)

func (e *env) usage(args []string) error {
	var c common
	fs := e.flags("usage", &c)
	now := time.Now().UTC()
	from := fs.String("from", now.Format("2006-01")+"-01", "first day, YYYY-MM-DD (UTC)")
	to := fs.String("to", now.Format(time.DateOnly), "last day, YYYY-MM-DD (UTC)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var days [2]time.Time
	for i, d := range []struct{ name, v string }{{"-from", *from}, {"-to", *to}} {
		t, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			return usagef("%s %q: want a date as YYYY-MM-DD", d.name, d.v)
		}
		days[i] = t
	}
	if days[1].Before(days[0]) {
		return usagef("-to %s is before -from %s", *to, *from)
	}
	b := e.backend(&c)
	defer b.close()
	client, err := qrng.NewClient(qrng.ClientConfig{Token: b.token, BaseURL: b.baseURL})
	if err != nil {
		return usagef("QCI_API_URL: %v", err)
	}
	bits, err := client.Usage(e.ctx, days[0], days[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d bits used from %s to %s (%.2f%% of a %d-bit month)\n",
		bits, *from, *to, 100*float64(bits)/qrng.DefaultQuotaBits, int64(qrng.DefaultQuotaBits))
	return nil
}
