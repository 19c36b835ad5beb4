// Package metrics offers Prometheus collectors for qrng: a Source's Stats,
// a redispool Filler's counters, a Consumer's ConsumerStats, and a pool's
// state as redispool.ReadStatus reads it from Redis.
//
// Each collector reads its object's snapshot at every scrape (nothing is
// kept between scrapes) and is safe for concurrent use. Register several
// of one kind under different names (the "source", "consumer" label) or
// ids (a filler's own). Every metric is listed in the README ("Watching a
// pool").
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/redispool"
)

// metric is one value of a snapshot T.
type metric[T any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(T) float64
}

// collector collects the metrics of one snapshot taken by read. Without
// a snapshot (read fails) only upOnly, if set, is reported, as 0.
type collector[T any] struct {
	read    func() (T, bool)
	metrics []metric[T]
	labels  []string
	upOnly  *prometheus.Desc
}

func (c *collector[T]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *collector[T]) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.read()
	if !ok {
		if c.upOnly != nil {
			ch <- prometheus.MustNewConstMetric(c.upOnly, prometheus.GaugeValue, 0, c.labels...)
		}
		return
	}
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st), c.labels...)
	}
}

type builder[T any] struct {
	label string
	c     *collector[T]
}

func (b *builder[T]) add(name, help string, kind prometheus.ValueType, value func(T) float64) {
	var labels []string
	if b.label != "" {
		labels = []string{b.label}
	}
	b.c.metrics = append(b.c.metrics, metric[T]{prometheus.NewDesc(name, help, labels, nil), kind, value})
}

func counter[T any](b *builder[T], name, help string, v func(T) int64) {
	b.add(name, help, prometheus.CounterValue, func(s T) float64 { return float64(v(s)) })
}

func gauge[T any](b *builder[T], name, help string, v func(T) float64) {
	b.add(name, help, prometheus.GaugeValue, v)
}

func boolean(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// NewSourceCollector collects a Source's Stats, labelled source=name.
func NewSourceCollector(name string, s *qrng.Source) prometheus.Collector {
	b := &builder[qrng.Stats]{label: "source", c: &collector[qrng.Stats]{
		read: func() (qrng.Stats, bool) { return s.Stats(), true }, labels: []string{name}}}
	counter(b, "qrng_source_quantum_bytes_total", "Bytes served from the upstream (the service or a pool).", func(s qrng.Stats) int64 { return s.QuantumBytes })
	counter(b, "qrng_source_fallback_bytes_total", "Bytes served from crypto/rand.", func(s qrng.Stats) int64 { return s.FallbackBytes })
	counter(b, "qrng_source_fetched_bytes_total", "Bytes the upstream delivered, rejected batches included.", func(s qrng.Stats) int64 { return s.FetchedBytes })
	counter(b, "qrng_source_requests_total", "HTTP requests sent.", func(s qrng.Stats) int64 { return s.Requests })
	counter(b, "qrng_source_failed_requests_total", "Requests that gave no usable answer.", func(s qrng.Stats) int64 { return s.FailedRequests })
	counter(b, "qrng_source_retries_total", "Requests that were retries.", func(s qrng.Stats) int64 { return s.Retries })
	counter(b, "qrng_source_rejected_batches_total", "Batches refused by the health or replay checks.", func(s qrng.Stats) int64 { return s.RejectedBatches })
	counter(b, "qrng_source_waits_total", "Times a caller found the buffer empty and waited.", func(s qrng.Stats) int64 { return s.Waits })
	counter(b, "qrng_source_fallback_switches_total", "Switches to fallback.", func(s qrng.Stats) int64 { return s.FallbackSwitches })
	gauge(b, "qrng_source_quota_bits_used", "Bits the local meter counts against this UTC month's quota.", func(s qrng.Stats) float64 { return float64(s.QuotaBitsUsed) })
	gauge(b, "qrng_source_buffered_bytes", "Bytes ready to serve.", func(s qrng.Stats) float64 { return float64(s.Buffered) })
	gauge(b, "qrng_source_fallback_active", "1 while fallback is serving.", func(s qrng.Stats) float64 { return boolean(s.FallbackActive) })
	return b.c
}

// NewConsumerCollector collects a pool Consumer's ConsumerStats, labelled
// consumer=name.
func NewConsumerCollector(name string, c *redispool.Consumer) prometheus.Collector {
	b := &builder[redispool.ConsumerStats]{label: "consumer", c: &collector[redispool.ConsumerStats]{
		read: func() (redispool.ConsumerStats, bool) { return c.Stats(), true }, labels: []string{name}}}
	type cs = redispool.ConsumerStats
	counter(b, "qrng_consumer_chunks_total", "Chunks popped from the pool.", func(s cs) int64 { return s.Chunks })
	counter(b, "qrng_consumer_bytes_total", "Bytes returned by Fetch.", func(s cs) int64 { return s.Bytes })
	counter(b, "qrng_consumer_discarded_bytes_total", "Bytes popped that did not fit in Fetch's buffer, erased unserved.", func(s cs) int64 { return s.Discarded })
	counter(b, "qrng_consumer_waits_total", "Fetch calls that found the pool empty and waited for a filler.", func(s cs) int64 { return s.Waits })
	counter(b, "qrng_consumer_stale_chunks_total", "Chunks popped and erased unserved: of an older generation (pushed before Redis restarted or failed over).", func(s cs) int64 { return s.Stale })
	counter(b, "qrng_consumer_foreign_elements_total", "Elements popped and erased unserved: not chunks sealed by a filler (or failing the pool key's MAC).", func(s cs) int64 { return s.Foreign })
	counter(b, "qrng_consumer_unreplicated_chunks_total", "Chunks popped and erased unserved because too few replicas acknowledged the pop.", func(s cs) int64 { return s.Unreplicated })
	return b.c
}

// NewFillerCollector collects a Filler's counters, labelled with its id
// (filler=ID).
func NewFillerCollector(f *redispool.Filler) prometheus.Collector {
	b := &builder[redispool.FillerStats]{label: "filler", c: &collector[redispool.FillerStats]{
		read: func() (redispool.FillerStats, bool) { return f.Stats(), true }, labels: []string{f.ID()}}}
	type fs = redispool.FillerStats
	counter(b, "qrng_filler_batches_pushed_total", "Batches pushed into the pool.", func(s fs) int64 { return s.Batches })
	counter(b, "qrng_filler_chunks_pushed_total", "Chunks pushed into the pool.", func(s fs) int64 { return s.Chunks })
	counter(b, "qrng_filler_bytes_pushed_total", "Bytes pushed into the pool.", func(s fs) int64 { return s.BytesPushed })
	counter(b, "qrng_filler_batches_rejected_total", "Batches refused by the health tests or the replay check.", func(s fs) int64 { return s.Rejected })
	counter(b, "qrng_filler_failed_requests_total", "Requests that gave no usable batch (rejected ones included).", func(s fs) int64 { return s.Failures })
	counter(b, "qrng_filler_push_errors_total", "Batches dropped because no push got through.", func(s fs) int64 { return s.PushErrors })
	counter(b, "qrng_filler_push_retries_total", "Pushes sent again after a failure.", func(s fs) int64 { return s.PushRetries })
	counter(b, "qrng_filler_reserved_bits_total", "Bits reserved on the shared meter.", func(s fs) int64 { return s.ReservedBits })
	counter(b, "qrng_filler_refunded_bits_total", "Bits given back to the shared meter.", func(s fs) int64 { return s.RefundedBits })
	counter(b, "qrng_filler_usage_syncs_total", "Times the month's count was taken from the service's usage.", func(s fs) int64 { return s.Syncs })
	counter(b, "qrng_filler_evicted_keys_total", "Keys Redis evicted while the filler ran (evictions detected).", func(s fs) int64 { return s.EvictedKeys })
	counter(b, "qrng_filler_batches_replayed_total", "Batches the pool's shared replay memory refused (pushed before, by some filler).", func(s fs) int64 { return s.Replayed })
	counter(b, "qrng_filler_batches_dropped_total", "Batches dropped unpushed: Redis restarted or failed over after a push whose outcome is unknown.", func(s fs) int64 { return s.Dropped })
	counter(b, "qrng_filler_chunks_wiped_total", "Chunks of older generations wiped from the pool's head.", func(s fs) int64 { return s.Wiped })
	gauge(b, "qrng_filler_quota_blocked", "1 while filling is paused because the monthly quota is spent.", func(s fs) float64 { return boolean(s.QuotaBlocked) })
	gauge(b, "qrng_filler_daily_blocked", "1 while filling is paused because today's share is spent.", func(s fs) float64 { return boolean(s.DailyBlocked) })
	gauge(b, "qrng_filler_failing", "1 while the filler has failed to fill for a heartbeat's lifetime with nothing pushed.", func(s fs) float64 { return boolean(s.Failing) })
	return b.c
}

// StatusTimeout bounds each scrape's ReadStatus.
const StatusTimeout = 5 * time.Second

// NewPoolCollector collects the pool's state from Redis at each scrape
// (redispool.ReadStatus, within StatusTimeout), labelled prefix=the
// pool's prefix as given ("" for the default). qrng_pool_status_up is 0
// when the status cannot be read, and then the only metric reported.
func NewPoolCollector(rdb redispool.Redis, prefix string) prometheus.Collector {
	type st = redispool.Status
	b := &builder[st]{label: "prefix", c: &collector[st]{labels: []string{prefix}}}
	b.c.read = func() (st, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), StatusTimeout)
		defer cancel()
		s, err := redispool.ReadStatus(ctx, rdb, prefix)
		return s, err == nil
	}
	gauge(b, "qrng_pool_status_up", "1 if the pool's status could be read from Redis at this scrape.", func(st) float64 { return 1 })
	up := b.c.metrics[0].desc
	gauge(b, "qrng_pool_chunks", "Chunks in the pool (its length).", func(s st) float64 { return float64(s.Chunks) })
	gauge(b, "qrng_pool_bytes", "Bytes in the pool.", func(s st) float64 { return float64(s.Bytes) })
	gauge(b, "qrng_pool_quota_used_bits", "Bits reserved this UTC month by all fillers, net of refunds.", func(s st) float64 { return float64(s.QuotaUsed) })
	gauge(b, "qrng_pool_quota_limit_bits", "The monthly quota the fillers enforce (0: none recorded; negative: no limit).", func(s st) float64 { return float64(s.QuotaLimit) })
	gauge(b, "qrng_pool_day_used_bits", "Bits reserved this UTC day by all fillers, net of refunds.", func(s st) float64 { return float64(s.DayUsed) })
	gauge(b, "qrng_pool_daily_share_bits", "Today's share in bits (negative: no daily limit).", func(s st) float64 { return float64(s.DailyShare) })
	gauge(b, "qrng_pool_daily_share_left_bits", "Bits of today's share not yet reserved (negative: no daily limit).", func(s st) float64 {
		if s.DailyShare < 0 {
			return -1
		}
		return float64(max(s.DailyShare-s.DayUsed, 0))
	})
	gauge(b, "qrng_pool_fillers", "Fillers with a live heartbeat.", func(s st) float64 { return float64(len(s.Fillers)) })
	gauge(b, "qrng_pool_filling", "1 while some filler can fill.", func(s st) float64 { return boolean(s.Filling) })
	b.c.upOnly = up
	return b.c
}
