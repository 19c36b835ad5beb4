package redispool

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Redis is the part of a go-redis client this package uses. A
// *redis.Client (NewClient, or NewFailoverClient for Sentinel), a
// *redis.ClusterClient or a *redis.Ring satisfies it, as does any other
// type with these methods. On a Redis Cluster every key of a pool must
// share a slot, since the scripts touch several keys at once: the
// default prefix, "{qrng}", is a hash tag, and so must any other prefix
// be there (for example "{pool-a}").
type Redis interface {
	redis.Scripter
	Do(ctx context.Context, args ...any) *redis.Cmd
	LLen(ctx context.Context, key string) *redis.IntCmd
	LMPop(ctx context.Context, direction string, count int64, keys ...string) *redis.KeyValuesCmd
	Get(ctx context.Context, key string) *redis.StringCmd
	HGet(ctx context.Context, key, field string) *redis.StringCmd
	HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd
	SMembers(ctx context.Context, key string) *redis.StringSliceCmd
	SRem(ctx context.Context, key string, members ...any) *redis.IntCmd
	Exists(ctx context.Context, keys ...string) *redis.IntCmd
	PTTL(ctx context.Context, key string) *redis.DurationCmd
	Info(ctx context.Context, section ...string) *redis.StringCmd
	Time(ctx context.Context) *redis.TimeCmd
}

var (
	_ Redis = (*redis.Client)(nil)
	_ Redis = (*redis.ClusterClient)(nil)
	_ Redis = (*redis.Ring)(nil)
)

// DefaultPrefix starts every key of a pool unless a Config says otherwise.
// Its braces make it a hash tag: on a Redis Cluster all the pool's keys
// hash to one slot. Earlier versions used OldDefaultPrefix, whose pools
// are still found (see OldDefaultPrefix).
const DefaultPrefix = "{qrng}"

// keys names a pool's keys. The package documentation lists them.
type keys struct {
	prefix  string
	pool    string // list of chunks
	alive   string // string with a TTL: "ok" while some filler can fill
	spent   string // string with a TTL: Unix time the quota renews, while spent
	meta    string // hash: chunk_size, bits, quota_bits, daily: the pool's settings
	fillers string // set of filler ids
	active  string // set of ids of fillers not stopped by the quota
}

func newKeys(prefix string) keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return keys{prefix: prefix, pool: prefix + ":pool", alive: prefix + ":alive", spent: prefix + ":spent",
		meta: prefix + ":meta", fillers: prefix + ":fillers", active: prefix + ":active"}
}

// quota is the counter of bits reserved in a UTC month ("2026-11").
func (k keys) quota(month string) string { return k.prefix + ":quota:" + month }

// day is the counter of bits reserved in a UTC day ("2026-11-27").
func (k keys) day(day string) string { return k.prefix + ":day:" + day }

// ledger records a month's reservations by token, so that each is
// applied, settled or refunded once.
func (k keys) ledger(month string) string { return k.prefix + ":ledger:" + month }

// filler is one filler's heartbeat.
func (k keys) filler(id string) string { return k.prefix + ":filler:" + id }

// pushed marks a batch as pushed, so that a push sent twice (a client
// retrying after a lost reply) adds its chunks once.
func (k keys) pushed(batch string) string { return k.prefix + ":pushed:" + batch }
