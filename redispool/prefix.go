package redispool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The server a pool lives on, as a Filler, a Consumer or ReadStatus first
// finds it: its version (HELLO, which every ACL user may run), whether it
// is a cluster, and which prefix a pool given no Prefix uses.

// OldDefaultPrefix is the default prefix of earlier versions, without a
// hash tag. A Filler, Consumer or ReadStatus given no prefix uses it
// instead of DefaultPrefix when Redis holds a pool under it and none
// under DefaultPrefix (or when the client's ACL lets it touch only the
// old keys), on a Redis that is not a cluster; it logs so once.
const OldDefaultPrefix = "qrng"

// MinRedisVersion is the oldest Redis a pool works on: LMPOP and ACL
// selectors came in Redis 7.0.
const MinRedisVersion = "7.0"

// ErrRedisTooOld: the server is older than MinRedisVersion. The error a
// Filler, a Consumer or ReadStatus returns then matches it and names the
// version found.
var ErrRedisTooOld = errors.New("redispool: Redis too old")

type tooOldError struct{ found string }

func (e *tooOldError) Error() string {
	return fmt.Sprintf("redispool: Redis %s is too old: a pool needs Redis %s or later (LMPOP, ACL selectors)", e.found, MinRedisVersion)
}

func (e *tooOldError) Is(target error) bool { return target == ErrRedisTooOld }

// server is what HELLO says of a server.
type server struct {
	version string // "7.0.15"
	mode    string // standalone, cluster or sentinel
}

// hello asks the server its version and mode. HELLO without arguments
// changes nothing on the connection, and ACLs do not withhold it; a server
// without HELLO is older than Redis 6.
func hello(ctx context.Context, rdb Redis) (server, error) {
	v, err := rdb.Do(ctx, "HELLO").Result()
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "unknown command") {
			return server{}, &tooOldError{found: "older than 6.0 (no HELLO command)"}
		}
		return server{}, fmt.Errorf("redispool: ask Redis its version (HELLO): %w", err)
	}
	var s server
	field := func(k, v any) {
		switch fmt.Sprint(k) {
		case "version":
			s.version = fmt.Sprint(v)
		case "mode":
			s.mode = fmt.Sprint(v)
		}
	}
	switch r := v.(type) {
	case map[any]any: // RESP3
		for k, v := range r {
			field(k, v)
		}
	case []any: // RESP2: field, value, ...
		for i := 0; i+1 < len(r); i += 2 {
			field(r[i], r[i+1])
		}
	}
	if s.version == "" {
		return s, fmt.Errorf("redispool: ask Redis its version (HELLO): no version in the answer %v", v)
	}
	return s, nil
}

// check refuses a server older than MinRedisVersion, and a Sentinel
// taken for the pool's server.
func (s server) check() error {
	if s.mode == "sentinel" {
		return errors.New("redispool: this address is a Redis Sentinel, not the pool's server: " +
			"reach the primary through the sentinels (go-redis's NewFailoverClient; qrng: -sentinel-master NAME)")
	}
	if !versionAtLeast(s.version, 7, 0) {
		return &tooOldError{found: s.version}
	}
	return nil
}

// versionAtLeast reports whether v ("7.0.15") is at least major.minor.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	ma, err := strconv.Atoi(parts[0])
	if err != nil {
		return false
	}
	mi := 0
	if len(parts) > 1 {
		if mi, err = strconv.Atoi(parts[1]); err != nil {
			return false
		}
	}
	return ma > major || ma == major && mi >= minor
}

// clustered reports whether keys of one pool may live on several servers:
// a cluster client, a ring, or a server in cluster mode. There the old
// default prefix cannot work (its keys hash to several slots).
func clustered(rdb Redis, s server) bool {
	switch rdb.(type) {
	case *redis.ClusterClient, *redis.Ring:
		return true
	}
	return s.mode == "cluster"
}

// presence is what a probe found of a pool under one prefix.
type presence int

const (
	absent  presence = iota
	present          // the pool's settings are there
	denied           // the client's ACL forbids the key
)

// probe looks for a pool's settings under k.
type probe func(ctx context.Context, rdb Redis, k keys) (presence, error)

// probeByHGet is a consumer's probe: its ACL may HGET the settings.
func probeByHGet(ctx context.Context, rdb Redis, k keys) (presence, error) {
	err := rdb.HGet(ctx, k.meta, "chunk_size").Err()
	return presenceOf(err, err == nil)
}

// probeByExists is a filler's and a status reader's probe.
func probeByExists(ctx context.Context, rdb Redis, k keys) (presence, error) {
	n, err := rdb.Exists(ctx, k.meta).Result()
	return presenceOf(err, n > 0)
}

func presenceOf(err error, found bool) (presence, error) {
	switch {
	case err == nil && found:
		return present, nil
	case err == nil || errors.Is(err, redis.Nil):
		return absent, nil
	case strings.Contains(err.Error(), "NOPERM"):
		return denied, nil
	}
	return absent, err
}

// choosePrefix picks the prefix of a pool given none: DefaultPrefix,
// unless, on a server that is not a cluster, there is a pool under
// OldDefaultPrefix and none under DefaultPrefix, or the client may touch
// only the old keys. why says why the old one was chosen ("" for the new).
func choosePrefix(ctx context.Context, rdb Redis, s server, look probe) (prefix, why string, err error) {
	now, err := look(ctx, rdb, newKeys(DefaultPrefix))
	if err != nil || now == present || clustered(rdb, s) {
		return DefaultPrefix, "", err
	}
	old, err := look(ctx, rdb, newKeys(OldDefaultPrefix))
	switch {
	case err != nil:
		return DefaultPrefix, "", err
	case old == present:
		return OldDefaultPrefix, fmt.Sprintf("Redis holds a pool under the old default prefix %q and none under %q", OldDefaultPrefix, DefaultPrefix), nil
	case now == denied && old == absent:
		return OldDefaultPrefix, fmt.Sprintf("this client's ACL allows the keys of the old default prefix %q, not those of %q", OldDefaultPrefix, DefaultPrefix), nil
	}
	return DefaultPrefix, "", nil
}

// oldPrefixNotice is what a Filler or Consumer logs, once, when it uses
// the old default prefix.
const oldPrefixNotice = "redispool: using the keys of the old default prefix " + `"` + OldDefaultPrefix + `"` +
	`: set the prefix to "` + OldDefaultPrefix + `" to keep them, or drain that pool and move to "` + DefaultPrefix +
	`" (the README, "Sharing a pool", says how); on a Redis Cluster only "` + DefaultPrefix + `" works`

// ready checks the server once (its version: MinRedisVersion at least)
// and, with no Prefix given, picks the pool's prefix (choosePrefix). No
// lock is held across the Redis calls: callers at the same moment may
// each ask, and the first to finish decides. keys is written only here,
// before isReady is set, and read only after ready returned.
func (c *Consumer) ready(ctx context.Context) error {
	if c.isReady.Load() {
		return nil
	}
	s, err := hello(ctx, c.rdb)
	if err == nil {
		err = s.check()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	prefix, why := "", ""
	if c.auto {
		if prefix, why, err = choosePrefix(ctx, c.rdb, s, probeByHGet); err != nil {
			return c.failed(ctx, "read", newKeys(DefaultPrefix).meta, err)
		}
	}
	k := c.keys
	if why != "" {
		k = newKeys(prefix)
	}
	if err := c.checkAuth(ctx, k); err != nil {
		return err
	}
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.isReady.Load() {
		return nil
	}
	if why != "" {
		c.keys = k
		c.log.Warn(oldPrefixNotice, "reason", why)
	}
	c.isReady.Store(true)
	return nil
}

// checkAuth compares the pool's keying, as its first filler recorded it
// (auth in the settings), with this consumer's key, before anything is
// popped: with another key, or a key where the pool has none (or none
// where it has one), every chunk would fail and be erased, and the
// fillers would spend the quota refilling a pool that this consumer
// empties. Settings that cannot be read (an ACL without HGET on them, no
// filler yet) leave the check to each chunk.
func (c *Consumer) checkAuth(ctx context.Context, k keys) error {
	have, err := c.rdb.HGet(ctx, k.meta, "auth").Result()
	switch {
	case errors.Is(err, redis.Nil), err != nil && strings.Contains(err.Error(), "NOPERM"):
		return nil
	case err != nil:
		return c.failed(ctx, "read", k.meta, err)
	}
	want := authSetting(c.key)
	if have == want {
		return nil
	}
	mine := "no key"
	if c.key != nil {
		mine = "a key with id " + keyID(c.key)
	}
	return fmt.Errorf("redispool: the pool's chunks are sealed with %q (auth in %s) and this consumer has %s: "+
		"give it the pool's key (ConsumerConfig.Key, $QRNG_POOL_KEY or $QRNG_POOL_KEY_FILE); nothing was popped", have, k.meta, mine)
}

// ready is a Filler's check of the server (as a Consumer's), run as Run
// starts and by Budget: a server older than MinRedisVersion, or a
// Sentinel, is a stopError.
func (f *Filler) ready(ctx context.Context) error {
	if f.isReady.Load() {
		return nil
	}
	s, err := hello(ctx, f.rdb)
	if err == nil {
		if err = s.check(); err != nil {
			err = stopError{err}
		}
	}
	if err != nil {
		return err
	}
	prefix, why := "", ""
	if f.auto {
		if prefix, why, err = choosePrefix(ctx, f.rdb, s, probeByExists); err != nil {
			return fmt.Errorf("redispool: read %s: %w", newKeys(DefaultPrefix).meta, err)
		}
	}
	f.readyMu.Lock()
	defer f.readyMu.Unlock()
	if f.isReady.Load() {
		return nil
	}
	if why != "" {
		f.keys = newKeys(prefix)
		f.meter.keys = f.keys
		f.log.Warn(oldPrefixNotice, "filler", f.id, "reason", why)
	}
	f.isReady.Store(true)
	return nil
}
