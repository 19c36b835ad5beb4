package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/qrng-go/qrng"
)

// usageCmd asks the service about the account: it takes no -emulator,
// -bits or -fallback, which would mean nothing here.
type usageCmd struct {
	from, to string
	days     [2]time.Time
}

func (c *usageCmd) define(fs *flag.FlagSet) {
	now := time.Now().UTC()
	fs.StringVar(&c.from, "from", now.Format("2006-01")+"-01", "first day, YYYY-MM-DD (UTC)")
	fs.StringVar(&c.to, "to", now.Format(time.DateOnly), "last day, YYYY-MM-DD (UTC), included")
}

func (c *usageCmd) check(map[string]bool) error {
	for i, d := range []struct{ name, v string }{{"-from", c.from}, {"-to", c.to}} {
		t, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			return usagef("%s %q: want a date as YYYY-MM-DD", d.name, d.v)
		}
		c.days[i] = t
	}
	if c.days[1].Before(c.days[0]) {
		return usagef("-to %s is before -from %s", c.to, c.from)
	}
	return nil
}

func (c *usageCmd) run(e *env) error {
	token := e.token()
	if token == "" {
		return usagef("usage needs QCI_TOKEN: it asks the service about your account (the emulator has none)")
	}
	base, err := e.serviceURL()
	if err != nil {
		return err
	}
	client, err := qrng.NewClient(qrng.ClientConfig{Token: token, BaseURL: base})
	if err != nil {
		return err
	}
	bits, err := client.Usage(e.ctx, c.days[0], c.days[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d bits used from %s to %s (%.2f%% of a %d-bit month)\n",
		bits, c.from, c.to, 100*float64(bits)/qrng.DefaultQuotaBits, int64(qrng.DefaultQuotaBits))

	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, 1-today.Day())
	month := bits
	if !c.days[0].Equal(first) || !c.days[1].Equal(today) {
		if month, err = client.Usage(e.ctx, first, today); err != nil {
			return err
		}
	}
	day, err := client.Usage(e.ctx, today, today)
	if err != nil {
		return err
	}
	printMonth(e.stdout, today, month, day, qrng.DefaultQuotaBits)
	return nil
}

// printMonth prints this month's use, what remains of quota, the days
// left and the even daily share: what remained at the start of today over
// the days left, today included (the rule a pool's fillers pace
// themselves by, FillerConfig.DailyBits).
func printMonth(w io.Writer, today time.Time, used, dayUsed, quota int64) {
	next := time.Date(today.Year(), today.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	left := int64(next.Sub(today) / (24 * time.Hour))
	remain := max(0, quota-used)
	share := max(0, quota-(used-dayUsed)) / left
	fmt.Fprintf(w, "this month (%s, UTC): %d bits used, %d remain of %d (%.2f%% left)\n",
		today.Format("2006-01"), used, remain, quota, 100*float64(remain)/float64(quota))
	fmt.Fprintf(w, "%d days left, today included: an even share is %d bits (%d bytes) a day; %d used today\n",
		left, share, share/8, dayUsed)
}
