package qrng

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Read fills p with random bytes and returns len(p) and a nil error, unless
// the Source is closed (ErrClosed) or quantum data cannot be had and the
// fallback policy forbids crypto/rand; then it returns the bytes it did
// serve and the reason (for example ErrQuotaExceeded, or the last fetch
// error). It waits only when the buffer is empty, each time for at most
// Config.WaitTimeout. Reads of any size are served across batches; reads
// of up to 256 bytes take no lock while the Source has bytes ready. A
// Read of nothing starts nothing and fetches nothing (after Close it
// returns ErrClosed).
func (s *Source) Read(p []byte) (int, error) {
	if n := len(p); n > 0 && n <= maxClaim {
		sl := s.slotFor()
		if w := sl.w.Load(); w != nil {
			end := w.off.Add(int64(n))
			if end < int64(len(w.b)) && s.trace == nil {
				src := w.b[end-int64(n) : end]
				copy(p, src)
				clear(src)
				return n, nil
			}
			k := s.settle(sl, w, end, p) // the window's end: settle withdraws it
			return s.readRest(sl, p, k)
		}
		return s.readRest(sl, p, 0)
	}
	return s.read(context.Background(), p)
}

// readRest completes a small read whose first k bytes are served; sl is
// the caller's slot.
func (s *Source) readRest(sl *slot, p []byte, k int) (int, error) {
	k += s.serveWindows(sl, p[k:])
	if k == len(p) {
		return k, nil
	}
	n, err := s.read(context.Background(), p[k:])
	return k + n, err
}

// ReadContext is Read with a context: if ctx ends while the caller waits
// for data, it returns the bytes served so far and ctx.Err(), whatever the
// fallback policy.
func (s *Source) ReadContext(ctx context.Context, p []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.read(ctx, p)
}

// read is Read's general path: waiting, fallback, mixing, events. The
// lock is held only to take bytes and decide; crypto/rand work (mixing,
// fallback bytes) and callbacks run after it is released.
func (s *Source) read(ctx context.Context, p []byte) (int, error) {
	var (
		n        int // p[:n] came from the buffer
		fallback bool
		err      error
		deadline time.Time
		waited   bool
	)
	s.mu.Lock()
	if s.closed {
		err = ErrClosed // even for an empty p
	} else if len(p) == 0 {
		s.mu.Unlock()
		return 0, nil // no demand: nothing is started or fetched
	}
loop:
	for err == nil && n < len(p) {
		if s.closed {
			err = ErrClosed
			break
		}
		if m := s.drainWindowsLocked(p[n:]); m > 0 {
			n += m // bytes already cut into windows come first: stream order
			continue
		}
		if s.buf.n > 0 {
			n += s.takeLocked(p[n:])
			deadline = time.Time{} // progress: a later wait gets its own WaitTimeout
			if s.fallback {
				s.fallback = false
				s.events = append(s.events, FallbackEvent{Active: false, Time: s.now()})
			}
			continue
		}
		// The buffer is empty.
		s.demandLocked(len(p) - n)
		s.kickLocked(true)
		now := s.now()
		quota, cooling := s.blockedLocked(now)
		var cause error
		switch {
		case s.inflight > 0 && (quota || cooling) && (deadline.IsZero() || now.Before(deadline)):
			// Batches already on their way are served before the quota or
			// an outage is declared.
		case quota:
			cause = s.quotaErr
		case cooling:
			cause = s.lastErr // an outage: no data is coming soon
		case !deadline.IsZero() && !now.Before(deadline):
			cause = &waitError{wait: s.wait, last: s.lastErr}
		case s.fallback && s.policy.allows(false):
			// Already serving fallback for an outage and still no batch:
			// waiting WaitTimeout again on every call would make the
			// Source unusable while the service hangs. The workers keep
			// trying; the first batch to arrive ends the fallback.
			cause = s.lastErr
			if cause == nil {
				cause = &waitError{wait: s.wait}
			}
		}
		if cause != nil {
			if !s.policy.allows(quota) {
				err = cause
				break loop
			}
			if !s.fallback {
				s.fallback = true
				s.stats.FallbackSwitches++
				s.events = append(s.events, FallbackEvent{Active: true, Reason: cause, Time: now})
			}
			s.stats.FallbackBytes += int64(len(p) - n)
			fallback = true
			break loop
		}
		if deadline.IsZero() {
			deadline = now.Add(s.wait)
		}
		if !waited {
			waited = true
			s.stats.Waits++
		}
		ready := s.ready
		s.mu.Unlock()
		timer := time.NewTimer(deadline.Sub(s.now()))
		select {
		case <-ready:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		s.mu.Lock()
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
	}
	if err == nil {
		s.kickLocked(false) // if the bytes ready are below the mark
	}
	report := len(s.events) > 0
	s.mu.Unlock()

	if s.mix {
		mixCrypto(p[:n])
	}
	if fallback {
		fillFallback(p[n:])
		n = len(p)
	}
	if report {
		s.deliver()
	}
	return n, err
}

// waitError: no data arrived within Config.WaitTimeout. It matches
// context.DeadlineExceeded, and unwraps to the last fetch error, if any.
type waitError struct {
	wait time.Duration
	last error
}

func (e *waitError) Error() string {
	msg := fmt.Sprintf("qrng: no random data within %s", e.wait)
	if e.last != nil {
		msg += " (last error: " + e.last.Error() + ")"
	}
	return msg
}
func (e *waitError) Is(target error) bool { return target == context.DeadlineExceeded }
func (e *waitError) Unwrap() error        { return e.last }
func (e *waitError) Timeout() bool        { return true }

// deliver reports queued fallback switches in the order they happened.
// Whoever holds reportMu delivers every queued event, including those
// queued while it delivers; a caller that finds it held leaves its events
// to the holder, so a callback that reads from the Source cannot deadlock.
func (s *Source) deliver() {
	for {
		if !s.reportMu.TryLock() {
			return
		}
		for {
			s.mu.Lock()
			q := s.events
			s.events = nil
			s.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, e := range q {
				s.reportSafely(e)
			}
		}
		s.reportMu.Unlock()
		// An event queued after the last look, by a caller whose TryLock
		// failed, is ours to deliver.
		s.mu.Lock()
		more := len(s.events) > 0
		s.mu.Unlock()
		if !more {
			return
		}
	}
}

// reportSafely reports e on a goroutine of its own and waits for it, so
// that a Logger or an OnFallback that panics or calls runtime.Goexit
// neither reaches the caller of Read nor stops later events. The first
// such failure is logged; later ones are not.
func (s *Source) reportSafely(e FallbackEvent) {
	var failure any
	done := make(chan struct{})
	go func() {
		returned := false
		defer func() {
			if !returned {
				if failure = recover(); failure == nil {
					failure = "runtime.Goexit called"
				}
			}
			close(done)
		}()
		s.report(e)
		returned = true
	}()
	<-done
	if failure != nil && s.cbFailed.CompareAndSwap(false, true) {
		func() {
			defer func() { recover() }() // a Logger that panics again is not our caller's problem
			s.log.Error("qrng: a fallback report failed (Logger or OnFallback); recovered, later events are still delivered, later failures not logged",
				slog.String("failure", fmt.Sprintf("%.200v", failure)))
		}()
	}
}

// takeLocked serves buffered bytes into p.
func (s *Source) takeLocked(p []byte) int {
	m := s.buf.take(p)
	if s.tap != nil || s.trace != nil {
		c := bytes.Clone(p[:m]) // a copy: p must not escape
		if s.tap != nil {
			s.tap(s.served, c)
		}
		if s.trace != nil {
			s.trace(s.served, c)
		}
	}
	s.served += int64(m)
	s.stats.QuantumBytes += int64(m)
	return m
}

// mixCrypto XORs p with crypto/rand bytes (SP 800-90C's XOR construction).
func mixCrypto(p []byte) {
	var pad [256]byte // crypto/rand.Read does not let it escape (Go 1.24+)
	for len(p) > 0 {
		k := min(len(p), len(pad))
		rand.Read(pad[:k])
		for i := range k {
			p[i] ^= pad[i]
		}
		p = p[k:]
	}
	clear(pad[:])
}

// report logs a fallback switch and tells Config.OnFallback.
func (s *Source) report(e FallbackEvent) {
	if e.Active {
		s.log.Warn("qrng: serving crypto/rand bytes instead of quantum bytes",
			slog.String("policy", s.policy.String()), slog.String("reason", errText(e.Reason)))
	} else {
		s.log.Info("qrng: quantum bytes again")
	}
	if s.onFallback != nil {
		s.onFallback(e)
	}
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

func errorIsQuota(err error) bool { return errors.Is(err, ErrQuotaExceeded) }
