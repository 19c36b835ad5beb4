package redispool

import "github.com/redis/go-redis/v9"

// The scripts, each run with Script.Run (EVALSHA, then EVAL when the server
// does not have it cached). Every key a script touches is passed in KEYS.

// reserveScript counts ARGV[1] bits on the month's counter KEYS[1] if the
// total stays within ARGV[2] (a negative limit: no limit), and sets the
// counter to expire at ARGV[3] (Unix seconds). With ARGV[4] = "1" a missing
// counter is not created: the caller first raises it to the service's own
// count. It returns {status, used}: status 1 reserved, 0 refused (used is
// the count that refused it), -1 counter missing.
var reserveScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  if ARGV[4] == '1' then return {-1, 0} end
  cur = 0
end
cur = tonumber(cur)
local bits = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 and cur + bits > limit then return {0, cur} end
local used = redis.call('INCRBY', KEYS[1], bits)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return {1, used}
`)

// refundScript gives back ARGV[1] bits on the counter KEYS[1], never going
// below zero, and does nothing if the counter is gone (expired, or Redis
// restarted without persistence). It returns the count after the refund.
var refundScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local bits = math.min(tonumber(ARGV[1]), tonumber(cur))
return redis.call('DECRBY', KEYS[1], bits)
`)

// raiseScript sets the counter KEYS[1] to ARGV[1] if that is higher, and to
// expire at ARGV[2]. It returns the count. It records the service's own
// usage, or that the service declared the quota spent.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  cur = v
end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return cur
`)

// pushScript appends the chunks ARGV[2..] to the list KEYS[1], unless the
// batch marker KEYS[2] exists: it is set here, for ARGV[1] milliseconds, so
// a push that reaches Redis twice adds its chunks once. The script runs
// whole or not at all, so a batch is either entirely in the list or not in
// it. It returns the list's length, or -1 for a repeated push.
var pushScript = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return -1 end
local n = redis.call('LLEN', KEYS[1])
for i = 2, #ARGV, 1000 do
  n = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return n
`)

// heartbeatScript refreshes one filler's key KEYS[1] (value ARGV[3]) for
// ARGV[1] milliseconds, adds its id ARGV[2] to the set of fillers KEYS[2]
// and records the pool's chunk size, bit width and quota in the hash
// KEYS[4]. A filler able to fill (ARGV[4] = "ok") joins the set of active
// fillers KEYS[6] and refreshes the liveness key KEYS[3]; one stopped by
// the quota (ARGV[4] = "quota <unix time>") refreshes the key KEYS[5] with
// that time, leaves the active set and, if it was the last active filler,
// deletes the liveness key: consumers then learn at once that the quota,
// not a refill under way, is why the pool is empty.
var heartbeatScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[4], 'chunk_size', ARGV[5], 'bits', ARGV[6], 'quota_bits', ARGV[7])
if ARGV[4] == 'ok' then
  redis.call('SADD', KEYS[6], ARGV[2])
  redis.call('SET', KEYS[3], 'ok', 'PX', ARGV[1])
else
  redis.call('SET', KEYS[5], string.sub(ARGV[4], 7), 'PX', ARGV[1])
  redis.call('SREM', KEYS[6], ARGV[2])
  if redis.call('SCARD', KEYS[6]) == 0 then redis.call('DEL', KEYS[3]) end
end
return 1
`)

// leaveScript removes a stopping filler: its key KEYS[1], its id ARGV[1]
// from the sets of fillers KEYS[2] and active fillers KEYS[4]. When no
// active filler is left the liveness key KEYS[3] goes, and when no filler
// at all, the quota key KEYS[5]: consumers learn at once that nobody is
// filling.
var leaveScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('SCARD', KEYS[4]) == 0 then redis.call('DEL', KEYS[3]) end
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[5]) end
return 1
`)
