package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/qrng-go/qrng/redispool"
)

// statusJSON is 'pool status -json': the same facts as the text, one
// object, snake_case names, times in RFC 3339 (UTC), durations in
// milliseconds. A field is never dropped: zero values are printed.
type statusJSON struct {
	Prefix          string       `json:"prefix"`
	RedisVersion    string       `json:"redis_version"`
	Chunks          int64        `json:"chunks"`
	ChunkSize       int          `json:"chunk_size"`
	Bytes           int64        `json:"bytes"`
	Month           string       `json:"month"`
	Day             string       `json:"day"`
	QuotaUsed       int64        `json:"quota_used_bits"`
	QuotaLimit      int64        `json:"quota_limit_bits"`
	DayUsed         int64        `json:"day_used_bits"`
	DailyShare      int64        `json:"daily_share_bits"`
	Daily           string       `json:"daily"`
	DaysLeft        int          `json:"days_left"`
	DayRenews       string       `json:"day_renews"`
	MonthRenews     string       `json:"month_renews"`
	QuotaSpentUntil string       `json:"quota_spent_until"` // "" while not spent
	DailySpent      bool         `json:"daily_spent"`
	Filling         bool         `json:"filling"`
	Fillers         []fillerJSON `json:"fillers"`
}

type fillerJSON struct {
	ID    string `json:"id"`
	Info  string `json:"info"`
	TTLms int64  `json:"heartbeat_ttl_ms"`
}

func writeStatusJSON(w io.Writer, st redispool.Status) error {
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	out := statusJSON{Prefix: st.Prefix, RedisVersion: st.RedisVersion, Chunks: st.Chunks, ChunkSize: st.ChunkSize,
		Bytes: st.Bytes, Month: st.Month, Day: st.Day, QuotaUsed: st.QuotaUsed, QuotaLimit: st.QuotaLimit,
		DayUsed: st.DayUsed, DailyShare: st.DailyShare, Daily: st.Daily, DaysLeft: st.DaysLeft,
		DayRenews: when(st.DayRenews), MonthRenews: when(st.MonthRenews), QuotaSpentUntil: when(st.QuotaSpentUntil),
		DailySpent: st.DailySpent, Filling: st.Filling, Fillers: []fillerJSON{}}
	for _, f := range st.Fillers {
		out.Fillers = append(out.Fillers, fillerJSON{ID: f.ID, Info: f.Info, TTLms: f.TTL.Milliseconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
