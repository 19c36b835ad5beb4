package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/qrng-go/qrng/metrics"
	"github.com/qrng-go/qrng/redispool"
)

// fillMetrics is pool fill's -metrics server: /metrics (the filler's and
// the pool's collectors) and /healthz (200 while the filler fills).
type fillMetrics struct {
	ln      net.Listener
	srv     *http.Server
	done    chan struct{}
	started atomic.Bool // the filler's OnStart came: it fills
	stopped atomic.Bool // Run returned
}

// listenMetrics binds addr before the filler starts, so that a taken
// address fails at once.
func listenMetrics(addr string) (*fillMetrics, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics %s: %w", addr, err)
	}
	return &fillMetrics{ln: ln, done: make(chan struct{})}, nil
}

// serve serves the filler's metrics until close.
func (m *fillMetrics) serve(f *redispool.Filler, rdb redispool.Redis, prefix string) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewFillerCollector(f), metrics.NewPoolCollector(rdb, prefix))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		code, why := m.health(f)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintln(w, why)
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
}

// health is /healthz's answer: 200 "filling" while the filler fills.
func (m *fillMetrics) health(f *redispool.Filler) (int, string) {
	st := f.Stats()
	switch {
	case m.stopped.Load():
		return http.StatusServiceUnavailable, "not filling: stopped"
	case st.QuotaBlocked:
		return http.StatusServiceUnavailable, "not filling: the month's quota is spent"
	case st.DailyBlocked:
		return http.StatusServiceUnavailable, "not filling: today's share is spent"
	case st.Failing:
		return http.StatusServiceUnavailable, "not filling: failing to fill, with nothing pushed for a heartbeat's lifetime (see the log)"
	case !m.started.Load():
		return http.StatusServiceUnavailable, "not filling: starting"
	}
	return http.StatusOK, "filling"
}

// close stops the server.
func (m *fillMetrics) close() {
	m.stopped.Store(true)
	if m.srv == nil {
		m.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
	<-m.done
}
