package redispool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The heartbeat: a filler's key with a TTL, the liveness key consumers
// read, the quota or daily key that says why an empty pool stays empty,
// and the pool's settings, checked on every beat.

// blockKind is why filling is paused.
type blockKind int

const (
	blockNone  blockKind = iota
	blockQuota           // the monthly quota is spent
	blockDaily           // today's share is spent
)

// block is a pause of filling, until the quota or the day renews.
type block struct {
	kind   blockKind
	until  time.Time // by the filler's clock, when it ends
	server time.Time // by the server's clock, when it ends: what consumers are told
	retry  time.Time // by the filler's clock, when to try reserving again
}

// stopError is trouble that retrying cannot mend: it stops Run.
type stopError struct{ error }

func (e stopError) Unwrap() error { return e.error }

// dailyRule is how the pool's settings record FillerConfig.DailyBits.
func dailyRule(daily int64) string {
	switch {
	case daily == 0:
		return "even"
	case daily < 0:
		return "off"
	}
	return strconv.FormatInt(daily, 10)
}

// settingNames maps the fields of the pool's settings to FillerConfig's.
var settingNames = map[string]string{"chunk_size": "ChunkSize", "bits": "Bits", "quota_bits": "QuotaBits", "daily": "DailyBits", "auth": "Key"}

// settingFields are the pool's settings, in the heartbeat script's order.
var settingFields = []string{"chunk_size", "bits", "quota_bits", "daily", "auth"}

// beat refreshes the heartbeat and the liveness, quota or failing key,
// checks the pool's settings, and wipes chunks of older generations from
// the head of the pool. A settings mismatch, evictions on a Redis whose
// settings can evict, or a server whose INFO names no generation is a
// stopError. A new run_id (Redis restarted) makes the next reservation
// take the count from the service again.
func (f *Filler) beat(ctx context.Context) error {
	hb, err := f.beatOnce(ctx)
	if err != nil {
		return err
	}
	f.sawRunID(hb.runID)
	f.sawGen(hb.gen)
	if hb.wiped > 0 {
		f.mu.Lock()
		f.stats.Wiped += hb.wiped
		f.mu.Unlock()
		f.log.Warn("redispool: wiped chunks of an older generation from the pool (pushed before Redis restarted or failed over): they are never served",
			"filler", f.id, "chunks", hb.wiped)
	}
	return f.sawEvictions(ctx, hb.evicted)
}

// heartbeatAnswer is what the heartbeat script says of the server.
type heartbeatAnswer struct {
	evicted int64
	runID   string
	gen     generation
	wiped   int64
}

// beatOnce runs the heartbeat script, one beat at a time (so that the
// last state computed is the last written), and returns what the server
// said of its evictions, run_id and generation.
func (f *Filler) beatOnce(ctx context.Context) (heartbeatAnswer, error) {
	f.beatMu.Lock()
	defer f.beatMu.Unlock()
	state := f.state()
	mine := []any{f.chunk, f.bits, f.meter.limit, dailyRule(f.meter.daily), authSetting(f.key)}
	v, err := heartbeatScript.Run(ctx, f.rdb,
		[]string{f.keys.filler(f.id), f.keys.fillers, f.keys.alive, f.keys.meta, f.keys.spent, f.keys.active,
			f.keys.failing, f.keys.pool},
		append([]any{f.ttl.Milliseconds(), f.id, f.info, state}, mine...)...).Slice()
	if err != nil {
		return heartbeatAnswer{}, fmt.Errorf("redispool: heartbeat on %s: %w", f.keys.filler(f.id), err)
	}
	if ok, _ := v[0].(int64); ok == 0 && len(v) == 3 {
		field, _ := v[1].(string)
		have, _ := v[2].(string)
		var value any
		for i, name := range settingFields {
			if name == field {
				value = mine[i]
			}
		}
		if field == "auth" {
			return heartbeatAnswer{}, stopError{fmt.Errorf("redispool: FillerConfig.Key (chunks sealed %q) differs from the pool's (%q in %s, set by its first filler): "+
				"give every filler and consumer of the pool the same key ($%s), or none, or stop every filler and delete %s and %s to set the pool up anew",
				value, have, f.keys.meta, EnvPoolKey, f.keys.meta, f.keys.pool)}
		}
		return heartbeatAnswer{}, stopError{fmt.Errorf("redispool: FillerConfig.%s %v differs from the pool's %s (%s in %s, set by its first filler): "+
			"use the pool's value, or stop every filler and delete %s (and %s, if the chunk size changes) to set the pool up anew",
			settingNames[field], value, have, field, f.keys.meta, f.keys.meta, f.keys.pool)}
	}
	if len(v) != 5 {
		return heartbeatAnswer{}, fmt.Errorf("redispool: heartbeat on %s: unexpected answer %v", f.keys.filler(f.id), v)
	}
	f.mu.Lock()
	f.beaten = state
	f.mu.Unlock()
	var hb heartbeatAnswer
	hb.evicted, _ = strconv.ParseInt(fmt.Sprint(v[1]), 10, 64)
	hb.runID, _ = v[2].(string)
	g, _ := v[3].(string)
	var ok bool
	if hb.gen, ok = genFromHex(g); !ok {
		return heartbeatAnswer{}, stopError{errors.New("redispool: Redis's INFO shows no run_id or master_replid: " +
			"the pool cannot tell a restarted or failed-over server's chunks from its own, so it refuses to fill it")}
	}
	hb.wiped, _ = v[4].(int64)
	return hb, nil
}

// sawGen notes the server's generation, in which the next batches are
// sealed.
func (f *Filler) sawGen(g generation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen, f.genKnown = g, true
}

// sawEvictions compares Redis's count of evicted keys with the last one:
// keys evicted while the pool is filled mean the pool shrank without
// pops (chunks paid for, never served). It logs that and checks the
// settings again: settings that can evict stop the filler.
func (f *Filler) sawEvictions(ctx context.Context, evicted int64) error {
	f.mu.Lock()
	before := f.evicted
	f.evicted = evicted
	if before >= 0 && evicted > before {
		f.stats.EvictedKeys += evicted - before
	}
	f.mu.Unlock()
	if before < 0 || evicted <= before {
		return nil
	}
	f.log.Error("redispool: Redis evicted keys: the pool may have shrunk without pops, losing chunks that were paid for",
		"filler", f.id, "evicted_keys", evicted-before)
	if err := f.checkRedis(ctx, false); err != nil {
		var se stopError
		if errors.As(err, &se) {
			return err
		}
	}
	return nil
}

// state is what the heartbeat says: "ok" while the filler can fill (or
// has a batch in flight), "quota <unix seconds>" or "daily <unix
// seconds>" while the quota or today's share stops it, with when it
// renews by the server's clock, "failing <unix seconds> <last error>"
// once it has failed to fill for failAfter, with no batch pushed.
func (f *Filler) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stateLocked()
}

func (f *Filler) stateLocked() string {
	b := f.block
	if b.kind == blockNone || f.inflight > 0 || !f.now().Before(b.until) {
		if !f.failSince.IsZero() && f.now().Sub(f.failSince) >= f.failAfter() {
			return "failing " + strconv.FormatInt(f.failSince.Unix(), 10) + " " + f.lastFail
		}
		return "ok"
	}
	word := "quota "
	if b.kind == blockDaily {
		word = "daily "
	}
	return word + strconv.FormatInt(b.server.Unix(), 10)
}

// announce beats at once if the state changed since the last beat, so
// consumers learn of a quota stop (or its end) without waiting.
func (f *Filler) announce(ctx context.Context) error {
	f.mu.Lock()
	changed := f.stateLocked() != f.beaten
	f.mu.Unlock()
	if !changed {
		return nil
	}
	err := f.beat(ctx)
	var se stopError
	if errors.As(err, &se) {
		return err
	}
	return nil
}

// heartbeat beats three times per TTL until ctx ends, or a beat finds
// trouble that stops the filler.
func (f *Filler) heartbeat(ctx context.Context) error {
	t := time.NewTicker(f.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := f.beat(ctx)
		var se stopError
		if errors.As(err, &se) {
			f.log.Error("redispool: filler stops", "filler", f.id, "error", err.Error())
			return err
		}
		f.redisResult(ctx, err)
	}
}

// prune drops from the sets of fillers and active fillers the ids whose
// heartbeat has expired (fillers that were killed rather than stopped).
func (f *Filler) prune(ctx context.Context) {
	for _, set := range []string{f.keys.fillers, f.keys.active} {
		ids, err := f.rdb.SMembers(ctx, set).Result()
		if err != nil {
			return
		}
		for _, id := range ids {
			if n, err := f.rdb.Exists(ctx, f.keys.filler(id)).Result(); err == nil && n == 0 {
				f.rdb.SRem(ctx, set, id)
			}
		}
	}
}

// leave removes the filler's heartbeat, and the liveness and quota keys
// if it was the last.
func (f *Filler) leave(ctx context.Context) {
	err := leaveScript.Run(ctx, f.rdb, []string{f.keys.filler(f.id), f.keys.fillers, f.keys.alive, f.keys.active, f.keys.spent, f.keys.failing}, f.id).Err()
	if err != nil {
		f.log.Warn("redispool: could not remove the heartbeat; it expires by itself", "filler", f.id, "error", err.Error())
	}
}

// redisResult logs Redis trouble once when it starts and once when it ends.
func (f *Filler) redisResult(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	was := f.redisDown
	f.redisDown = err != nil
	f.mu.Unlock()
	switch {
	case err != nil && !was:
		f.log.Warn("redispool: Redis unreachable; filling paused", "filler", f.id, "error", err.Error())
	case err == nil && was:
		f.log.Info("redispool: Redis reachable again", "filler", f.id)
	}
}
