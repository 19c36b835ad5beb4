package redispool

import "github.com/redis/go-redis/v9"

// The scripts, each run with Script.Run (EVALSHA, then EVAL when the server
// does not have it cached). Every key a script touches is passed in KEYS,
// so that on a Redis Cluster a prefix with a hash tag keeps them on one
// node.
//
// The meter's scripts read the server's clock (TIME) and refuse to act when
// it is outside the UTC day [ARGV dayStart, dayEnd) whose keys the caller
// passed: the month and the day are the Redis server's, not the caller's,
// and a caller whose clock is off learns the server's time from the answer
// and asks again. Each also reads the server's run_id (INFO server), which
// changes when Redis restarts. The last ARGV of each is a shift of the
// server's clock in milliseconds, zero outside tests.

// meterPrelude is the start of the meter's scripts: now (server time in
// milliseconds, shifted by the last ARGV), runid, and inDay(start, end).
const meterPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[#ARGV])
local runid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
local function inDay(s, e) return now >= tonumber(s) * 1000 and now < tonumber(e) * 1000 end
local function num(v) return tonumber(v or '0') or 0 end
`

// reserveScript reserves ARGV[2] bits for the reservation token ARGV[1] on
// the month's counter KEYS[1] and the day's counter KEYS[2], recording the
// token in the month's ledger KEYS[3] (field "t:<token>", value
// "<day> <bits> <state> <filler>"; state r: reserved, s: settled, f:
// refunded; field "reserved": the month's reservations, never lowered).
//
// ARGV: 1 token, 2 bits, 3 monthly limit (negative: none), 4 daily rule (0:
// the even share, negative: none, positive: that many bits), 5 and 6 the
// day's start and end (Unix seconds), 7 UTC days left in the month (today
// included), 8 and 9 when the month's keys and the day's expire (Unix
// seconds), 10 the caller's floor for "reserved", 11 its floor for the
// counter (the service's usage), 12 the run_id the caller knows ("":
// none), 13 "1" if a missing counter must first be synced, 14 the day
// ("2026-11-27"), 15 the filler's id, 16 the clock shift.
//
// It returns {status, counter, day counter, server time (ms), run_id,
// share, reserved}. Status: 1 reserved (or reserved before, by this token:
// a repeated request is applied once); 0 refused by the monthly limit; 2
// refused by the daily share; 3 the server's clock is outside the day; 4
// Redis may have lost data (run_id changed, a counter missing or below a
// floor): sync first; 6 the token was refunded already (a late copy of a
// request, not applied).
var reserveScript = redis.NewScript(meterPrelude + `
local function answer(status, cur, day, share, reserved)
  return {status, cur or 0, day or 0, now, runid, share or -1, reserved or 0}
end
local prior = redis.call('HGET', KEYS[3], 't:' .. ARGV[1])
if prior then
  local status = 1
  if string.match(prior, '^%S+ %S+ f') then status = 6 end
  return answer(status, num(redis.call('GET', KEYS[1])), num(redis.call('GET', KEYS[2])), -1,
    num(redis.call('HGET', KEYS[3], 'reserved')))
end
if not inDay(ARGV[5], ARGV[6]) then return answer(3) end
if ARGV[12] ~= '' and ARGV[12] ~= runid then return answer(4) end
local raw = redis.call('GET', KEYS[1])
if not raw and ARGV[13] == '1' then return answer(4) end
local cur = num(raw)
local day = num(redis.call('GET', KEYS[2]))
local reserved = num(redis.call('HGET', KEYS[3], 'reserved'))
if reserved < tonumber(ARGV[10]) or cur < tonumber(ARGV[11]) then return answer(4, cur, day, -1, reserved) end
local bits = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local rule = tonumber(ARGV[4])
local share = -1
if rule > 0 then
  share = rule
elseif rule == 0 and limit >= 0 then
  share = math.floor(math.max(0, limit - (cur - day)) / tonumber(ARGV[7]))
end
if limit >= 0 and cur + bits > limit then return answer(0, cur, day, share, reserved) end
if share >= 0 and day + bits > share then return answer(2, cur, day, share, reserved) end
cur = redis.call('INCRBY', KEYS[1], bits)
redis.call('EXPIREAT', KEYS[1], ARGV[8])
day = redis.call('INCRBY', KEYS[2], bits)
redis.call('EXPIREAT', KEYS[2], ARGV[9])
reserved = redis.call('HINCRBY', KEYS[3], 'reserved', bits)
redis.call('HSET', KEYS[3], 't:' .. ARGV[1], ARGV[14] .. ' ' .. ARGV[2] .. ' r ' .. ARGV[15])
redis.call('EXPIREAT', KEYS[3], ARGV[8])
return answer(1, cur, day, share, reserved)
`)

// settleScript marks the reservation ARGV[1] in the ledger KEYS[1] as
// settled: its request got an answer, so it stays counted. Applied once,
// however often it arrives; a reservation refunded already stays refunded.
var settleScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 't:' .. ARGV[1])
if v then
  local day, bits, state, who = string.match(v, '^(%S+) (%S+) (%S+) ?(.*)$')
  if state == 'r' then redis.call('HSET', KEYS[1], 't:' .. ARGV[1], day .. ' ' .. bits .. ' s ' .. who) end
end
return 1
`)

// refundScript gives back the reservation ARGV[1], recorded in the ledger
// KEYS[3], on the month's counter KEYS[1] and its day's counter KEYS[2]
// (never below zero), once: a refund that arrives twice, or after the
// reservation was settled, changes nothing. A token the ledger does not
// know (Redis lost it, or the reservation never arrived) is recorded as
// refunded, so that a late copy of its reservation is not applied; ARGV[2]
// is when the ledger expires. It returns the bits given back by this
// token's refund, the same to every copy of it (0 for a settled or an
// unknown reservation).
var refundScript = redis.NewScript(`
local f = 't:' .. ARGV[1]
local v = redis.call('HGET', KEYS[3], f)
if not v then
  redis.call('HSET', KEYS[3], f, '- 0 f')
  redis.call('EXPIREAT', KEYS[3], ARGV[2])
  return 0
end
local day, bits, state, who = string.match(v, '^(%S+) (%S+) (%S+) ?(.*)$')
if state == 'f' then return tonumber(bits) end
if state ~= 'r' then return 0 end
bits = tonumber(bits)
for _, k in ipairs({KEYS[1], KEYS[2]}) do
  local cur = tonumber(redis.call('GET', k) or '0')
  if cur > 0 then redis.call('DECRBY', k, math.min(bits, cur)) end
end
redis.call('HSET', KEYS[3], f, day .. ' ' .. bits .. ' f ' .. who)
return bits
`)

// raiseScript lifts the month's counter KEYS[1] and the day's counter
// KEYS[2] to what the service's usage and the caller's floors say, after
// a sign that Redis lost data or when the service's usage is read. A
// counter below the service's usage (ARGV[1] for the month, ARGV[2] for
// the day) lost reservations: it becomes that usage plus the bits of the
// reservations in flight (state r in the ledger KEYS[3]; those of the day
// for the day's counter), which the service has not counted yet, or has
// just now (then they count twice, the safe way). Each counter is also at
// least the caller's highest seen (ARGV[3], ARGV[4]); neither is ever
// lowered. The caller first re-records its own reservations in flight,
// in pairs from ARGV[11] on (token, bits), where the ledger lost them; the
// ledger's "reserved" becomes at least ARGV[5]. ARGV: 6, 7 the day's
// bounds, 8, 9 when the month's and the day's keys expire, 10 the day
// ("2026-11-27"), then the pairs, then the filler's id and the clock
// shift. It returns {status, counter, day counter, server time (ms),
// run_id, -1, reserved} with status 1, or 3 when the server's clock is
// outside the day.
var raiseScript = redis.NewScript(meterPrelude + `
if not inDay(ARGV[6], ARGV[7]) then return {3, 0, 0, now, runid, -1, 0} end
local who = ARGV[#ARGV - 1]
for i = 11, #ARGV - 3, 2 do
  local f = 't:' .. ARGV[i]
  if not redis.call('HGET', KEYS[3], f) then
    redis.call('HSET', KEYS[3], f, ARGV[10] .. ' ' .. ARGV[i + 1] .. ' r ' .. who)
  end
end
local inflight, today = 0, 0
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' then
    local day, bits, state = string.match(all[i + 1], '^(%S+) (%S+) (%S+)')
    if state == 'r' then
      inflight = inflight + tonumber(bits)
      if day == ARGV[10] then today = today + tonumber(bits) end
    end
  end
end
local function lift(key, usage, inflight, highest, expire)
  local cur = num(redis.call('GET', key))
  if tonumber(usage) > cur then cur = tonumber(usage) + inflight end
  cur = math.max(cur, tonumber(highest))
  redis.call('SET', key, cur, 'EXAT', expire)
  return cur
end
local cur = lift(KEYS[1], ARGV[1], inflight, ARGV[3], ARGV[8])
local day = lift(KEYS[2], ARGV[2], today, ARGV[4], ARGV[9])
local reserved = math.max(num(redis.call('HGET', KEYS[3], 'reserved')), tonumber(ARGV[5]))
redis.call('HSET', KEYS[3], 'reserved', reserved)
redis.call('EXPIREAT', KEYS[3], ARGV[8])
return {1, cur, day, now, runid, -1, reserved}
`)

// readMeterScript reads the month's counter KEYS[1] and the day's KEYS[2]
// with the server's clock, changing nothing. ARGV: 1, 2 the day's bounds,
// 3 the clock shift. It returns {status, counter, day counter, server time
// (ms), run_id}, status 1, or 3 when the server's clock is outside the day.
var readMeterScript = redis.NewScript(meterPrelude + `
if not inDay(ARGV[1], ARGV[2]) then return {3, 0, 0, now, runid} end
return {1, num(redis.call('GET', KEYS[1])), num(redis.call('GET', KEYS[2])), now, runid}
`)

// genPrelude computes gen, the server's generation (see seal.go): the
// SHA-1, in hex, of its run_id and replication ID, or ” if INFO shows
// neither.
const genPrelude = `
local runid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or ''
local gen = ''
if runid ~= '' and replid ~= '' then gen = redis.sha1hex(runid .. ':' .. replid) end
`

// genScript returns the server's generation. KEYS[1], the pool, is not
// touched: it routes the script, in the consumer's pipeline, to the
// node that holds the pool.
var genScript = redis.NewScript(genSource)

// genSource is genScript's text, for EVAL in a pipeline.
const genSource = genPrelude + `return gen`

// pushScript appends the sealed chunks of one batch to the list KEYS[1],
// once, into the generation they were sealed for, and only if the pool's
// shared replay memory KEYS[3] holds none of the batch's fingerprints.
//
// ARGV: 1 the batch marker's lifetime (ms), 2 the replay memory's
// lifetime (ms), 3 its capacity (fingerprints), 4 the generation the
// chunks are sealed for (hex), 5 the number d of fingerprints, 6..5+d the
// fingerprints, then the sealed chunks.
//
// The batch marker KEYS[2] makes a push that reaches Redis twice (a retry
// after a lost reply or an OOM) add its chunks once: {0, 0}. A server of
// another generation (restarted, or another primary since a failover)
// pushes nothing and returns {2, its generation}. A fingerprint the
// memory holds (unexpired: each lives ARGV[2] ms, and the oldest go past
// the capacity) means the service sent these bytes before, to this
// filler or another: nothing is pushed, {3, the fingerprint's index, from
// 1}. Otherwise the fingerprints are remembered, the marker set and the
// chunks pushed, whole (the script runs whole or not at all): {1, the
// list's length}.
var pushScript = redis.NewScript(genPrelude + `
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0} end
if gen ~= ARGV[4] then return {2, gen} end
local nd = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 6, 5 + nd do
  local exp = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if exp and tonumber(exp) > now then return {3, i - 5} end
end
-- The first write must be one that Redis refuses for want of memory:
-- once a script has written, Redis lets it write on past maxmemory.
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if nd > 0 then
  local exp = now + tonumber(ARGV[2])
  local args = {}
  for i = 6, 5 + nd do
    args[#args + 1] = exp
    args[#args + 1] = ARGV[i]
  end
  redis.call('ZADD', KEYS[3], unpack(args))
  local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[3])
  if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1) end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
local n = redis.call('LLEN', KEYS[1])
for i = 6 + nd, #ARGV, 1000 do
  n = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return {1, n}
`)

// heartbeatScript refreshes one filler's key KEYS[1] (value ARGV[3]) for
// ARGV[1] milliseconds and adds its id ARGV[2] to the set of fillers
// KEYS[2]. It checks the filler's settings against the pool's, in the hash
// KEYS[4]: chunk_size ARGV[5], bits ARGV[6], quota_bits ARGV[7], daily
// ARGV[8], auth ARGV[9] ("none" or "hmac-sha256 <key id>"). A field the hash lacks is set (the first filler sets them all);
// a field that differs stops the script, which returns {0, field, the
// pool's value} and changes nothing else. A filler able to fill (ARGV[4] =
// "ok") joins the set of active fillers KEYS[6], refreshes the liveness
// key KEYS[3] and deletes the failing key KEYS[7]. One that is not
// filling leaves the active set and, if it was the last active filler,
// deletes the liveness key, so that consumers learn at once why the pool
// is empty: stopped by the quota or the daily share (ARGV[4] = "quota
// <unix time>" or "daily <unix time>", when it renews), it refreshes the
// key KEYS[5] with that state; failing to fill (ARGV[4] = "failing <unix
// time> <last error>", since when), the key KEYS[7].
//
// Then it wipes, from the head of the pool KEYS[8], the chunks sealed in
// another generation than the server's (pushed before a restart or a
// failover; see seal.go), at most 10,000. It returns {1, evicted_keys,
// run_id, generation, chunks wiped} from the server's INFO.
var heartbeatScript = redis.NewScript(genPrelude + `
local want = {chunk_size = ARGV[5], bits = ARGV[6], quota_bits = ARGV[7], daily = ARGV[8], auth = ARGV[9]}
local names = {'chunk_size', 'bits', 'quota_bits', 'daily', 'auth'}
for _, field in ipairs(names) do
  local have = redis.call('HGET', KEYS[4], field)
  if have and have ~= want[field] then return {0, field, have} end
end
for _, field in ipairs(names) do
  redis.call('HSETNX', KEYS[4], field, want[field])
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if ARGV[4] == 'ok' then
  redis.call('SADD', KEYS[6], ARGV[2])
  redis.call('SET', KEYS[3], 'ok', 'PX', ARGV[1])
  redis.call('DEL', KEYS[7])
else
  if string.sub(ARGV[4], 1, 8) == 'failing ' then
    redis.call('SET', KEYS[7], ARGV[4], 'PX', ARGV[1])
  else
    redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[1])
  end
  redis.call('SREM', KEYS[6], ARGV[2])
  if redis.call('SCARD', KEYS[6]) == 0 then redis.call('DEL', KEYS[3]) end
end
local evicted = string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)') or '0'
local wiped = 0
if gen ~= '' then
  local bin = string.gsub(gen, '..', function(h) return string.char(tonumber(h, 16)) end)
  while wiped < 10000 do
    local v = redis.call('LINDEX', KEYS[8], 0)
    if not v or string.sub(v, 2, 21) == bin then break end
    redis.call('LPOP', KEYS[8])
    wiped = wiped + 1
  end
end
return {1, evicted, runid, gen, wiped}
`)

// leaveScript removes a stopping filler: its key KEYS[1], its id ARGV[1]
// from the sets of fillers KEYS[2] and active fillers KEYS[4]. When no
// active filler is left the liveness key KEYS[3] goes, and when no filler
// at all, the quota key KEYS[5] and the failing key KEYS[6]: consumers
// learn at once that nobody is filling.
var leaveScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('SCARD', KEYS[4]) == 0 then redis.call('DEL', KEYS[3]) end
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[5], KEYS[6]) end
return 1
`)
