// Package redispool lets a fleet of processes share one uQRNG token and
// one monthly quota through Redis.
//
// Fillers hold the API token. Each one fetches batches from the service
// through a qrng.Client, runs the same health tests and replay check as a
// qrng.Source, cuts every batch into chunks and pushes them onto a Redis
// list, keeping it between a low and a high mark so that consumers rarely
// wait. Before each request a filler reserves its bits on one shared meter
// in Redis: a counter per UTC month and per UTC day of the Redis server's
// clock, kept by Lua scripts that refuse a reservation that would pass the
// monthly quota or, by default, the day's even share of what remains of
// it (the quota left at the start of the day over the days left, today
// included; FillerConfig.DailyBits). Two fillers (for availability) or ten
// never spend more between them. A request that never left (a refused
// connection) or got an error status is refunded; a 200 answer that was
// cut, malformed or rejected stays counted, as the service counted it, and
// so does a request sent whole that got no answer (timed out, a reset
// connection, cancelled by a stop): the service may have served it.
//
// Consumers need no token. A Consumer is a qrng.Upstream: give it to a
// Source (Config.Upstream), which health-checks, mixes, erases and falls
// back as it does for the service. Each Fetch pops as many whole chunks as
// fit in its buffer, so a Source's batch should be a whole number of
// chunks: a smaller buffer gets part of one chunk and the rest is erased
// unserved. A Consumer takes the pool's chunk size from the pool's
// settings, which its first filler records.
//
// # What the pool guarantees
//
//   - At most once per chunk. A chunk leaves the list by the same atomic
//     command (LMPOP) that hands it to one consumer; a batch enters it by
//     one script that Redis runs whole or not at all, and a batch marker
//     makes a push that reaches Redis twice (a client retrying after a
//     lost reply, or after Redis refused it for want of memory) add its
//     chunks once. Across restarts (with or without persistence) and
//     failovers too: see "Restarts and failovers". Nothing is redelivered and nothing is acknowledged: a
//     chunk popped by a consumer that then crashes, or whose reply is
//     lost, is gone, never reused. Losing a chunk costs quota and nothing
//     else; serving one twice is the failure this design rules out.
//   - Every chunk comes from one batch the service sent whole, which
//     passed the health tests (SP 800-90B repetition count and adaptive
//     proportion, false alarms 2^-40, 7 bits of min-entropy per byte
//     assumed) and repeated no run of bytes of itself or of the filler's last 16
//     batches, at any offset (the same replay check as a Source's), nor
//     a sample of the bytes of any batch pushed by any filler of the pool
//     in the last 24 hours (the shared replay memory, {qrng}:seen, checked
//     and set inside the push script; at most seenCap entries).
//   - The fillers of a pool never reserve more than its quota in a UTC
//     month, nor (unless DailyBits says otherwise) more than the day's
//     share in a UTC day, however many they are and however hard
//     consumers pull. Month and day are the Redis server's (TIME, inside
//     the scripts), whatever each filler's clock says.
//   - The meter is exact and fails closed. Each reservation carries a
//     token recorded in the month's ledger; its reservation, settlement
//     (answered or in doubt: it stays counted) and refund (never sent, or
//     an error status: given back) are each applied once, however often a
//     retry or a stalled connection
//     delivers them, and a reservation that arrives after its own refund
//     is not applied. The counter goes down only by the refund of a
//     reservation. A filler keeps floors under it (the highest count it
//     has seen, the service's own usage) and takes the count from the
//     service's usage when it starts and whenever Redis shows a sign of
//     losing data (its run_id changed, or the ledger fell below a floor,
//     as after a restart from an older snapshot). While that usage cannot
//     be read, a filler reserves nothing (consumers still get what is
//     pooled).
//   - The pool's quota, chunk size, bit width and daily rule are recorded
//     by its first filler; a filler started with other values refuses to
//     run, naming both.
//   - A Redis that would lose the pool is refused before anything is
//     spent (see "Redis settings"). A push Redis refuses for want of memory
//     is sent again, with its marker; oomTries refusals in a row, or keys
//     evicted while filling (the pool shrinking without pops, logged),
//     stop the filler with an error that says so.
//   - A filler stopped by its context pushes the batch it holds, whole,
//     and removes its heartbeat; one killed leaves only whole batches.
//   - An empty pool with a filler able to fill makes Fetch wait (until its
//     context ends); with none running, Fetch says so at once
//     (ErrPoolEmpty); with the quota spent, or today's share, it returns
//     an error matching qrng.ErrQuotaExceeded (and ErrDailyShareSpent)
//     that says when it renews, but only after a last pop finds the pool
//     still empty, and a refund that makes room lifts a filler's pause at
//     once. A filler that is killed rather than stopped counts as running
//     until its heartbeat expires. Fillers that run but have failed to
//     fill for their heartbeat TTL, with nothing pushed, make Fetch
//     return ErrNotFilling with their last error.
//   - Every Redis call honours its context's deadline (the clients must
//     set ContextTimeoutEnabled), and a consumer's calls have deadlines of
//     their own, so Fetch ends with its context even on a hung Redis.
//
// # Restarts and failovers
//
// Each chunk is sealed with the generation of the primary it was pushed
// to (see seal.go: the SHA-1 of the server's run_id and master_replid), and
// the push script refuses a server of another generation. After each pop
// a consumer reads the server's generation (a script in the pop's
// pipeline, or right after a blocking pop) and serves only the chunks of
// that generation; the others are erased unserved (ConsumerStats.Stale).
// A server restarted from RDB or AOF files, a promoted replica, or an old
// primary promoted again each have a new generation, so chunks popped (and
// served) before the crash or the failover, which the next server holds
// again, are never served: they cost quota, never a second use. Fillers
// wipe older generations from the head of the pool at each heartbeat
// (FillerStats.Wiped). A push whose outcome is unknown when the
// generation changes is dropped, not sent again (FillerStats.Dropped). With
// ConsumerConfig.Replicas, a pop also waits (WAIT) for that many replicas
// and its chunks are erased unserved unless they acknowledged it.
//
// # What it does not guarantee
//
//   - Secrecy from Redis. Whoever can read Redis's memory, its replicas,
//     its persistence files or its network traffic can read every pooled
//     byte. Turn persistence off for the pool's server (--save ""
//     --appendonly no), use TLS (rediss://) and ACL users, and set
//     Config.Mix on Sources that make secrets, so that the bytes they
//     serve are never the pooled bytes alone.
//   - Erasure inside Redis. Redis frees a chunk's memory when it pops it
//     but does not zero it. On the Go side, a Consumer zeroes the strings
//     go-redis made for the chunks it popped, and a Filler zeroes its
//     batch buffers after each push; copies in the clients' I/O buffers
//     and the kernel's are out of reach.
//   - Exactness against the service beyond the meter's rule. The meter
//     counts every request the service may have served: one answered with
//     200 (a filler watches for that status, since a 200 body cut short
//     looks like any transport failure) and one sent whole that got no
//     status line (in doubt); so it may count more than the service did,
//     by the requests in doubt, never less for that reason. A filler
//     killed with requests in flight leaves their reservations counted (at
//     most one batch per worker; the ledger shows them in state r): the
//     service may have served them. A count taken from the service's usage
//     while batches are in flight may count those twice.
//   - Order or fairness between consumers.
//
// # Redis settings
//
// A pool needs, in one place:
//
//   - maxmemory-policy noeviction, or maxmemory 0 (no limit). Any other
//     policy evicts the pool's chunks (allkeys-*) or its quota counters
//     and heartbeats, which have TTLs (volatile-*), when memory runs
//     short. Run refuses it, naming the policy.
//   - A maxmemory (when set) that leaves room for the pool: at start, the
//     target and one batch per worker, plus a quarter for Redis's own
//     overhead, must fit in maxmemory minus the memory used by everything
//     but the pool. Run refuses less, naming maxmemory.
//   - Redis 7.0 or later (LMPOP, ACL selectors): a Filler, a Consumer and
//     ReadStatus ask the server's version (HELLO) first and refuse an
//     older one, naming its version (ErrRedisTooOld). And for the filler the
//     commands of its ACL below, TIME and INFO included: the filler reads
//     maxmemory and maxmemory-policy from INFO memory, so it needs no
//     CONFIG permission (managed services often withhold CONFIG); a filler
//     refused INFO refuses to run.
//   - Persistence off (--save "" --appendonly no), for the secrecy of the
//     pooled bytes (with it on, chunks are still never served twice: see
//     "Restarts and failovers").
//
// # Keys
//
// Every key starts with a prefix, "{qrng}" by default (shown here). Its
// braces make it a Redis Cluster hash tag: every key of the pool hashes to
// one slot, as the scripts need (each touches several keys); on a Cluster
// any other prefix must be a hash tag too. Earlier versions' default was
// "qrng" (OldDefaultPrefix): given no prefix, a Filler, a Consumer and
// ReadStatus use it instead where Redis holds a pool under it and none
// under "{qrng}", on a server that is not a cluster, and log so once.
//
//	{qrng}:pool               list    sealed chunks of random bytes (see "Restarts and failovers"); fillers
//	                                RPUSH, consumers LMPOP or BLMPOP from the left
//	{qrng}:quota:2026-11      string  bits reserved in that UTC month, net of refunds; expires 7 days after the month
//	{qrng}:day:2026-11-27     string  bits reserved in that UTC day, net of refunds; expires 2 days after the day
//	{qrng}:ledger:2026-11     hash    the month's reservations: "t:<token>" = "<day> <bits> <state> <filler>" (state r
//	                                in flight, s answered, f refunded) and "reserved", bits ever reserved, never
//	                                lowered; expires with the month's counter
//	{qrng}:alive            string  "ok" while some filler can fill; TTL: the heartbeat's
//	{qrng}:spent            string  "quota <unix>" or "daily <unix>": the quota or today's share stops the fillers
//	                                until then (by the server's clock); TTL: the heartbeat's
//	{qrng}:failing            string  "failing <unix> <last error>": a filler has failed to fill since then, with no
//	                                batch pushed, for longer than its heartbeat TTL; TTL: the heartbeat's
//	{qrng}:filler:<id>        string  one filler's heartbeat: host, pid, start time, sizes; TTL (default 5 s)
//	{qrng}:fillers            set     ids of fillers, pruned of expired ones
//	{qrng}:active             set     ids of fillers not stopped by the quota or the day's share
//	{qrng}:meta               hash    the pool's settings, recorded by its first filler: chunk_size, bits,
//	                                quota_bits, daily ("even", "off" or bits a day), auth ("none" or
//	                                "hmac-sha256 <key id>": see FillerConfig.Key)
//	{qrng}:seen               zset    the shared replay memory: digests of sampled anchors of pushed batches,
//	                                scored by expiry (24 h), at most 8192; TTL 24 h
//	{qrng}:pushed:<batch>     string  push marker of one batch; TTL 5 min
//
// A consumer that finds the pool empty reads {qrng}:alive (present: wait for
// the refill, blocked in BLMPOP), then {qrng}:spent (present: the quota or
// the day's share is spent), then {qrng}:failing (present: ErrNotFilling,
// with the fillers' last error), else reports ErrPoolEmpty; each report
// comes only after one more pop finds nothing. To change a pool's settings, stop every filler
// and delete {qrng}:meta (and {qrng}:pool, if the chunk size changes).
//
// # ACL
//
// Consumers need only LMPOP and BLMPOP on the pool, EVAL and INFO (for
// the script that reads the server's generation, in the pipeline of each
// pop: see "Restarts and failovers"), GET on the three keys that say why
// it is empty and HGET on the settings (for the chunk size). With
// Redis 7 selectors keep GET and HGET away from the pool, so a consumer
// cannot read a chunk without removing it, nor add one:
//
//	ACL SETUSER qrng-consumer on >CONSUMER-PASSWORD resetkeys resetchannels -@all +lmpop +blmpop +eval +info ~{qrng}:pool (+get %R~{qrng}:alive %R~{qrng}:spent %R~{qrng}:failing) (+hget %R~{qrng}:meta)
//	ACL SETUSER qrng-filler on >FILLER-PASSWORD resetkeys resetchannels -@all ~{qrng}:* +evalsha +eval +llen +smembers +srem +exists +get +set +rpush +incrby +decrby +expireat +sadd +scard +del +hset +hsetnx +hget +hgetall +hincrby +time +info +lindex +lpop +zadd +zscore +zcard +zremrangebyscore +zremrangebyrank +pexpire +pttl
//	ACL SETUSER qrng-status on >STATUS-PASSWORD resetkeys resetchannels -@all %R~{qrng}:* +llen +hgetall +get +exists +smembers +pttl +time
//
// The filler's list includes the commands its scripts call. A consumer
// whose ACL lacks the HGET learns the chunk size from the first chunk it
// pops (popping one chunk until then). Status reads the pool's length,
// never its contents.
package redispool
