package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// qrng usage prints this month's use, what remains, the days left and the
// even daily share (what remained at the start of today over the days
// left, today included), whatever range -from and -to ask about.
func TestUsagePrintsTheMonthAndTheShare(t *testing.T) {
	srv := qrngtest.NewServer(qrngtest.Options{})
	defer srv.Close()
	env := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	require.Equal(t, 0, runCmd(t, env, "bytes", "-n", "2KiB").code)
	used := srv.Counters().BitsServed
	require.Positive(t, used)

	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	left := int64(time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Sub(today) / (24 * time.Hour))
	remain := qrng.DefaultQuotaBits - used
	share := int64(qrng.DefaultQuotaBits) / left // all of it spent today: nothing before today
	for _, args := range [][]string{nil, {"-from", "2020-01-01", "-to", "2020-01-31"}} {
		r := runCmd(t, env, append([]string{"usage"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		ls := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, ls, 3, r.stdout)
		assert.Equal(t, fmt.Sprintf("this month (%s, UTC): %d bits used, %d remain of %d (%.2f%% left)",
			now.Format("2006-01"), used, remain, int64(qrng.DefaultQuotaBits), 100*float64(remain)/qrng.DefaultQuotaBits), ls[1])
		assert.Equal(t, fmt.Sprintf("%d days left, today included: an even share is %d bits (%d bytes) a day; %d used today",
			left, share, share/8, used), ls[2])
	}
}
