// Package redispool lets a fleet of processes share one uQRNG token and
// one monthly quota through Redis.
//
// Fillers hold the API token. Each one fetches batches from the service
// through a qrng.Client, runs the same health tests and replay check as a
// qrng.Source, cuts every batch into chunks and pushes them onto a Redis
// list, keeping it between a low and a high mark so that consumers rarely
// wait. Before each request a filler reserves its bits on one shared
// counter per UTC month, in a Lua script that refuses a reservation that
// would pass the quota: two fillers (for availability) or ten never spend
// more than one quota between them. A request that got no 200 answer (a
// transport failure before the response, an error status) is refunded; a
// 200 answer that was cut, malformed or rejected stays counted, as the
// service counted it.
//
// Consumers need no token. A Consumer is a qrng.Upstream: give it to a
// Source (Config.Upstream), which health-checks, mixes, erases and falls
// back as it does for the service. Each Fetch pops as many whole chunks as
// fit in its buffer, so a Source's batch should be at least one chunk
// (16 KiB by default): a smaller buffer gets part of a chunk and the rest
// is erased unserved.
//
// # What the pool guarantees
//
//   - At most once per chunk. A chunk leaves the list by the same atomic
//     command (LMPOP) that hands it to one consumer; a batch enters it by
//     one script that Redis runs whole or not at all, and a batch marker
//     makes a push that reaches Redis twice (a client retrying after a
//     lost reply) add its chunks once. Nothing is redelivered and nothing
//     is acknowledged: a chunk popped by a consumer that then crashes, or
//     whose reply is lost, is gone, never reused. Losing a chunk costs
//     quota and nothing else; serving one twice is the failure this
//     design rules out.
//   - Every chunk comes from one batch the service sent whole, which
//     passed the health tests (SP 800-90B repetition count and adaptive
//     proportion, false alarms 2^-40, 7 bits of min-entropy per byte
//     assumed) and repeated no run of bytes of itself or of the filler's last 16
//     batches, at any offset (the same replay check as a Source's).
//   - The fillers of a pool never reserve more than its quota in a UTC
//     month, however many they are.
//   - A filler stopped by its context pushes the batch it holds, whole,
//     and removes its heartbeat; one killed leaves only whole batches.
//   - An empty pool with a filler able to fill makes Fetch wait (until its
//     context ends); with none running, Fetch says so at once
//     (ErrPoolEmpty); with the quota spent, it returns an error matching
//     qrng.ErrQuotaExceeded. A filler that is killed rather than stopped
//     counts as running until its heartbeat expires.
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
//   - Exactness of the meter against the service. The meter assumes the
//     service counts a request when, and only when, it sends a 200 status
//     (a filler watches for that status, since a 200 body cut short looks
//     like any transport failure). The counter lives in Redis, so a Redis
//     restart without persistence loses it: a filler then restarts the
//     month's count from the service's own usage, unless SkipUsageSync.
//   - Order or fairness between consumers.
//
// # Keys
//
// Every key starts with a prefix, "qrng" by default (shown here). On a
// Redis Cluster, use a prefix with a hash tag, such as "{qrng}".
//
//	qrng:pool            list    chunks of random bytes; fillers RPUSH, consumers LMPOP from the left
//	qrng:quota:2026-11   string  bits reserved in that UTC month (an integer); expires 7 days after the month
//	qrng:alive           string  "ok" while some filler can fill; TTL: the heartbeat's
//	qrng:spent           string  Unix time the quota renews, while it stops a filler; TTL: the heartbeat's
//	qrng:filler:<id>     string  one filler's heartbeat: host, pid, start time, sizes; TTL (default 5 s)
//	qrng:fillers         set     ids of fillers, pruned of expired ones
//	qrng:active          set     ids of fillers not stopped by the quota
//	qrng:meta            hash    chunk_size, bits, quota_bits, as the fillers last wrote them
//	qrng:pushed:<batch>  string  push marker of one batch; TTL 5 min
//
// A consumer that finds the pool empty reads qrng:alive (present: wait for
// the refill), then qrng:spent (present: the quota is spent), else reports
// ErrPoolEmpty.
//
// # ACL
//
// Consumers need only LMPOP on the pool and GET on the two keys that say
// why it is empty. With Redis 7 a selector keeps GET away from the pool,
// so a consumer cannot read a chunk without removing it, nor add one:
//
//	ACL SETUSER qrng-consumer on >CONSUMER-PASSWORD resetkeys resetchannels -@all +lmpop ~qrng:pool (+get %R~qrng:alive %R~qrng:spent) (+hget %R~qrng:meta)
//	ACL SETUSER qrng-filler on >FILLER-PASSWORD resetkeys resetchannels -@all ~qrng:* +evalsha +eval +llen +smembers +srem +exists +get +set +rpush +incrby +decrby +expireat +sadd +scard +del +hset +hsetnx +hget +hgetall +hincrby +time +info
//	ACL SETUSER qrng-status on >STATUS-PASSWORD resetkeys resetchannels -@all %R~qrng:* +llen +hgetall +get +exists +smembers +pttl +time
//
// The filler's list includes the commands its scripts call. Status reads
// the pool's length, never its contents.
package redispool
