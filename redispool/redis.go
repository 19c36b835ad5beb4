package redispool

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis is the part of a go-redis client this package uses. A
// *redis.Client (NewClient, or NewFailoverClient for Sentinel), a
// *redis.ClusterClient or a *redis.Ring satisfies it, as does any other
// type with these methods. On a Redis Cluster every key of a pool must
// share a slot, since the scripts touch several keys at once: the
// default prefix, "{qrng}", is a hash tag, and so must any other prefix
// be there (for example "{pool-a}").
//
// Every client given to this package must honour its contexts' deadlines:
// set ContextTimeoutEnabled in its options (go-redis ignores deadlines
// otherwise, and a hung Redis holds each call for its read timeout, and
// again for each retry). NewFiller and NewConsumer refuse a
// *redis.Client, *redis.ClusterClient or *redis.Ring without it; for
// other types it is the caller's duty.
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
	Process(ctx context.Context, cmd redis.Cmder) error
	Pipeline() redis.Pipeliner
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
	failing string // string with a TTL: "failing <unix> <last error>" while the fillers fail to fill
	seen    string // sorted set: the shared replay memory, digests of pushed batches' anchors by expiry
	meta    string // hash: chunk_size, bits, quota_bits, daily: the pool's settings
	fillers string // set of filler ids
	active  string // set of ids of fillers not stopped by the quota
}

func newKeys(prefix string) keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return keys{prefix: prefix, pool: prefix + ":pool", alive: prefix + ":alive", spent: prefix + ":spent",
		failing: prefix + ":failing", seen: prefix + ":seen",
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

// checkContextTimeouts refuses a go-redis client that ignores its
// contexts' deadlines (ContextTimeoutEnabled off): a hung Redis would
// then hold each call for the client's read timeout, whatever the
// caller's context says. field names the configuration field.
func checkContextTimeouts(field string, rdb Redis) error {
	var on bool
	switch c := rdb.(type) {
	case *redis.Client:
		on = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		on = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		on = c.Options().ContextTimeoutEnabled
	default:
		return nil // the caller's duty (see Redis)
	}
	if !on {
		return fmt.Errorf("redispool: %s has ContextTimeoutEnabled off: go-redis then ignores contexts' deadlines "+
			"and a hung Redis holds every call for its read timeout; set ContextTimeoutEnabled: true in its options", field)
	}
	return nil
}
