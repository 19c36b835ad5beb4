// Package qrngtest provides a local emulator of QCI's uQRNG HTTP API for
// tests, examples and offline use, shaped like net/http/httptest.
//
// The emulator implements the API as this module documents it (the access
// token exchange, random numbers, usage, a monthly quota, FastAPI-style 422
// errors) and lets a test script faults per request: error statuses,
// latency, slow, truncated, malformed or endless bodies, wrong counts,
// out-of-range values, replayed batches and reset connections.
//
// Its numbers come from crypto/rand, or from a seeded ChaCha8 generator when
// Options.Seed is set. They are never quantum.
package qrngtest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures an Emulator. Every zero field means its default.
type Options struct {
	// Token is the API token the emulator accepts. Default: a random one.
	Token string
	// Seed, when nonzero, makes the numbers reproducible: they come from
	// ChaCha8 seeded with it, in request order. A client that sends
	// requests concurrently (a qrng.Source with more than one worker) gets
	// them in an order that varies, so use Workers: 1 where a stream must
	// repeat. Default: crypto/rand.
	Seed uint64
	// AccessTokenTTL is the lifetime of issued access tokens. Default 1 h.
	AccessTokenTTL time.Duration
	// QuotaBits is the monthly allowance in bits. Default 1,000,000,000;
	// negative means unlimited.
	QuotaBits int64
	// MaxBits is the largest n_bits accepted. Default 64.
	MaxBits int
	// MaxSamples is the largest n_samples accepted. Default 1,000,000.
	MaxSamples int
	// Record keeps every batch of values served intact, for Batches.
	// Default off.
	Record bool
	// Now is the emulator's clock. Default time.Now.
	Now func() time.Time
	// Rate, when positive, is how many bits per second the emulated
	// device produces: a request for n values of b bits is answered
	// n*b/Rate after it arrives (QCI's device is said to make about
	// 100,000 bits a second). Each request takes that long on its own,
	// whatever else is in flight. A request whose context ends first (the
	// client gave up) gets no answer and is not counted as served.
	// Default 0: answers come at once.
	Rate int64

	// The options below make the emulator differ from what this module
	// assumes about the live service (README, "What is unknown about the
	// live API"), so that a test can show how a client or `qrng probe`
	// copes with a service that turns out otherwise.

	// ExpiresInRelative makes the token answer's expires_in the access
	// token's lifetime in seconds instead of an absolute Unix time (the form
	// QCI's guide shows). expires_at_rfc3339 stays absolute. Default off.
	ExpiresInRelative bool
	// QuotaStatus is the status of the answer to a request that would pass
	// the monthly quota; its message still mentions "quota" and it still
	// carries Retry-After. Default 429. It must be 400..599.
	QuotaStatus int
	// UsageInBytes makes the usage endpoint count bytes (the bits served,
	// divided by 8) in its n_bits field, rather than n_samples * n_bits.
	// The quota is still counted in bits. Default off.
	UsageInBytes bool
	// WrapAnswers makes every 200 answer of the random-numbers endpoint
	// {"data": [...]} instead of a bare array, as Fault.Wrap does for one
	// answer. Default off.
	WrapAnswers bool
}

// Paths of the emulated endpoints.
const (
	PathAccessToken   = "/auth/v1/access-tokens"
	PathRandomNumbers = "/qrng/random_numbers"
	PathUsage         = "/qrng/usage"
)

// Counters are what the emulator has seen and served.
type Counters struct {
	TokenRequests  int   // calls to the access-token endpoint
	RandomRequests int   // calls to the random-numbers endpoint
	UsageRequests  int   // calls to the usage endpoint
	ValuesServed   int64 // values in 200 answers of the random-numbers endpoint
	BitsServed     int64 // n_samples * n_bits of those answers
}

// Emulator is an http.Handler that speaks the uQRNG API. It is safe for
// concurrent use. Use NewServer for a started server on loopback, or New to
// mount the handler yourself.
type Emulator struct {
	opts  Options
	token string
	done  chan struct{} // closed by Shutdown: ends sleeps and endless bodies

	mu       sync.Mutex // guards everything below
	rng      *mrand.ChaCha8
	access   map[string]time.Time // access token -> expiry
	usage    map[string]int64     // UTC day -> bits served
	faults   []Fault
	counters Counters
	last     []uint64   // the previous batch, for Replay
	batches  [][]uint64 // with Options.Record
	closed   bool
}

// New returns an Emulator for opts. It panics if opts is invalid (a
// negative duration or Rate, MaxBits outside 1..64, QuotaStatus outside
// 400..599), which is a programming error.
func New(opts Options) *Emulator {
	if opts.AccessTokenTTL < 0 || opts.MaxBits < 0 || opts.MaxBits > 64 || opts.MaxSamples < 0 || opts.Rate < 0 ||
		opts.QuotaStatus != 0 && (opts.QuotaStatus < 400 || opts.QuotaStatus > 599) {
		panic(fmt.Sprintf("qrngtest: invalid Options (AccessTokenTTL %s, MaxBits %d, MaxSamples %d, QuotaStatus %d, Rate %d)",
			opts.AccessTokenTTL, opts.MaxBits, opts.MaxSamples, opts.QuotaStatus, opts.Rate))
	}
	if opts.QuotaStatus == 0 {
		opts.QuotaStatus = http.StatusTooManyRequests
	}
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.QuotaBits == 0 {
		opts.QuotaBits = 1_000_000_000
	}
	if opts.MaxBits == 0 {
		opts.MaxBits = 64
	}
	if opts.MaxSamples == 0 {
		opts.MaxSamples = 1_000_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Emulator{opts: opts, token: opts.Token, done: make(chan struct{}),
		access: map[string]time.Time{}, usage: map[string]int64{}}
	if e.token == "" {
		e.token = "qrngtest-" + randomHex(16)
	}
	if opts.Seed != 0 {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], opts.Seed)
		e.rng = mrand.NewChaCha8(seed)
	}
	return e
}

// Token returns the API token the emulator accepts.
func (e *Emulator) Token() string { return e.token }

// Counters returns a snapshot of the counters.
func (e *Emulator) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counters
}

// Batches returns copies of the batches served intact so far
// (Options.Record): answers with a body fault (Truncate, WrongCount,
// OutOfRange, Malformed, Endless, ZeroValues, Replay) are left out.
func (e *Emulator) Batches() [][]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([][]uint64, len(e.batches))
	for i, b := range e.batches {
		out[i] = append([]uint64(nil), b...)
	}
	return out
}

// Shutdown ends pending latencies, slow and endless bodies at once. The
// emulator answers 503 afterwards.
func (e *Emulator) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
}

// ServeHTTP implements the API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path {
	case PathAccessToken, PathRandomNumbers, PathUsage:
	default:
		writeDetail(w, http.StatusNotFound, "Not Found")
		return
	}
	if r.Method != http.MethodPost {
		writeDetail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	e.mu.Lock()
	switch path {
	case PathAccessToken:
		e.counters.TokenRequests++
	case PathRandomNumbers:
		e.counters.RandomRequests++
	case PathUsage:
		e.counters.UsageRequests++
	}
	f, hasFault := e.nextFault(path)
	closed := e.closed
	e.mu.Unlock()
	if closed {
		writeDetail(w, http.StatusServiceUnavailable, "emulator shut down")
		return
	}
	if hasFault && !e.preamble(w, r, f) {
		return
	}
	switch path {
	case PathAccessToken:
		e.serveToken(w, r)
	case PathRandomNumbers:
		e.serveRandom(w, r, f)
	case PathUsage:
		e.serveUsage(w, r)
	}
}

func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken *string `json:"refresh_token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.RefreshToken == nil {
		writeValidation(w, "refresh_token", "field required")
		return
	}
	if *req.RefreshToken != e.token {
		writeDetail(w, http.StatusUnauthorized, "invalid refresh token")
		return
	}
	tok := "at-" + randomHex(24)
	exp := e.opts.Now().Add(e.opts.AccessTokenTTL)
	e.mu.Lock()
	e.access[tok] = exp
	e.mu.Unlock()
	expiresIn := exp.Unix()
	if e.opts.ExpiresInRelative {
		expiresIn = int64(e.opts.AccessTokenTTL / time.Second)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":       tok,
		"expires_in":         expiresIn,
		"expires_at_rfc3339": exp.UTC().Format(time.RFC3339),
		"scope":              "access_token",
		"token_type":         "bearer",
	})
}

// authorized checks the bearer token and answers 401 when it is not valid.
func (e *Emulator) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.mu.Lock()
	exp, known := e.access[tok]
	e.mu.Unlock()
	if !ok || !known || !e.opts.Now().Before(exp) {
		writeDetail(w, http.StatusUnauthorized, "invalid or expired access token")
		return false
	}
	return true
}

type randomRequest struct {
	Distribution *string `json:"distribution"`
	OutputType   *string `json:"output_type"`
	NSamples     *int64  `json:"n_samples"`
	NBits        *int64  `json:"n_bits"`
}

func (e *Emulator) serveRandom(w http.ResponseWriter, r *http.Request, f Fault) {
	if !e.authorized(w, r) {
		return
	}
	var req randomRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeValidation(w, "", "body is not a valid request: "+err.Error())
		return
	}
	switch {
	case req.Distribution == nil:
		writeValidation(w, "distribution", "field required")
		return
	case *req.Distribution != "uniform_discrete":
		writeValidation(w, "distribution", "unsupported distribution "+strconv.Quote(*req.Distribution))
		return
	case req.OutputType == nil:
		writeValidation(w, "output_type", "field required")
		return
	case *req.OutputType != "decimal":
		writeValidation(w, "output_type", "unsupported output_type "+strconv.Quote(*req.OutputType))
		return
	case req.NSamples == nil:
		writeValidation(w, "n_samples", "field required")
		return
	case *req.NSamples < 1 || *req.NSamples > int64(e.opts.MaxSamples):
		writeValidation(w, "n_samples", fmt.Sprintf("ensure this value is between 1 and %d", e.opts.MaxSamples))
		return
	case req.NBits == nil:
		writeValidation(w, "n_bits", "field required")
		return
	case *req.NBits < 1 || *req.NBits > int64(e.opts.MaxBits):
		writeValidation(w, "n_bits", fmt.Sprintf("ensure this value is between 1 and %d", e.opts.MaxBits))
		return
	}
	n, bits := int(*req.NSamples), int(*req.NBits)
	if e.overQuota(w, n*bits) {
		return
	}
	if e.opts.Rate > 0 {
		d := time.Duration(float64(n*bits) / float64(e.opts.Rate) * float64(time.Second))
		if !e.pause(r, d) {
			return // the client gave up, or Shutdown: no answer, nothing served
		}
	}

	e.mu.Lock()
	if e.overQuotaLocked(n * bits) { // again: others may have spent it meanwhile
		e.mu.Unlock()
		e.writeQuotaError(w)
		return
	}
	var values []uint64
	replayed := f.Replay && len(e.last) > 0
	if replayed {
		// The previous batch's values again, from its first: cut to this
		// request's count, or followed by fresh values.
		values = append(make([]uint64, 0, n), e.last[:min(n, len(e.last))]...)
		values = append(values, e.draw(n-len(values), bits, false)...)
	} else {
		values = e.draw(n, bits, f.ZeroValues)
	}
	now := e.opts.Now().UTC()
	e.last = values
	intact := !(replayed || f.Truncate || f.WrongCount != 0 || f.OutOfRange || f.Malformed || f.Endless || f.ZeroValues)
	e.usage[now.Format(time.DateOnly)] += int64(n * bits)
	e.counters.ValuesServed += int64(n)
	e.counters.BitsServed += int64(n * bits)
	if e.opts.Record && intact {
		e.batches = append(e.batches, values)
	}
	e.mu.Unlock()
	if e.opts.WrapAnswers {
		f.Wrap = true
	}
	e.writeValues(w, r, values, bits, f)
}

// overQuota answers the quota error if a request of bits would pass the
// monthly quota, and reports whether it did.
func (e *Emulator) overQuota(w http.ResponseWriter, bits int) bool {
	e.mu.Lock()
	over := e.overQuotaLocked(bits)
	e.mu.Unlock()
	if over {
		e.writeQuotaError(w)
	}
	return over
}

// overQuotaLocked reports whether a request of bits would pass the
// monthly quota; the caller holds e.mu.
func (e *Emulator) overQuotaLocked(bits int) bool {
	return e.opts.QuotaBits > 0 && e.monthUsage(e.opts.Now().UTC())+int64(bits) > e.opts.QuotaBits
}

// writeQuotaError answers that the monthly quota is spent, until when.
func (e *Emulator) writeQuotaError(w http.ResponseWriter) {
	now := e.opts.Now().UTC()
	next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	w.Header().Set("Retry-After", strconv.FormatInt(int64(next.Sub(now).Seconds())+1, 10))
	writeDetail(w, e.opts.QuotaStatus, "monthly quota exceeded: "+strconv.FormatInt(e.opts.QuotaBits, 10)+" bits")
}

// draw makes n values of bits bits; the caller holds e.mu. It draws only
// the bits needed, in blocks (see fillValues).
func (e *Emulator) draw(n, bits int, zero bool) []uint64 {
	values := make([]uint64, n)
	if zero {
		return values
	}
	random := func(p []byte) { rand.Read(p) }
	if e.rng != nil {
		random = func(p []byte) { e.rng.Read(p) }
	}
	fillValues(values, bits, random)
	return values
}

// monthUsage sums the bits served in now's UTC month; the caller holds e.mu.
func (e *Emulator) monthUsage(now time.Time) int64 {
	prefix := now.Format("2006-01-")
	var sum int64
	for day, bits := range e.usage {
		if strings.HasPrefix(day, prefix) {
			sum += bits
		}
	}
	return sum
}

func (e *Emulator) serveUsage(w http.ResponseWriter, r *http.Request) {
	if !e.authorized(w, r) {
		return
	}
	var req struct {
		Start *string `json:"start_date"`
		End   *string `json:"end_date"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeValidation(w, "", "body is not a valid request: "+err.Error())
		return
	}
	var days [2]time.Time
	for i, d := range []struct {
		name string
		v    *string
	}{{"start_date", req.Start}, {"end_date", req.End}} {
		if d.v == nil {
			writeValidation(w, d.name, "field required")
			return
		}
		t, err := time.Parse(time.DateOnly, *d.v)
		if err != nil {
			writeValidation(w, d.name, "invalid date format, want YYYY-MM-DD")
			return
		}
		days[i] = t
	}
	var sum int64
	e.mu.Lock()
	for day, bits := range e.usage {
		t, _ := time.Parse(time.DateOnly, day)
		if !t.Before(days[0]) && !t.After(days[1]) {
			sum += bits
		}
	}
	e.mu.Unlock()
	if e.opts.UsageInBytes {
		sum /= 8
	}
	writeJSON(w, http.StatusOK, map[string]int64{"n_bits": sum})
}

// writeValues streams values as the API does: "[5845, 7686, 2788]". It
// formats runs of values in bulk and writes chunks of 64 KiB (16 KiB with
// SlowBody, which pauses after each).
func (e *Emulator) writeValues(w http.ResponseWriter, r *http.Request, values []uint64, bits int, f Fault) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	chunk := 64 << 10
	if f.SlowBody > 0 {
		chunk = 16 << 10
	}
	out := make([]byte, 0, chunk+64)
	flush := func() bool {
		_, err := w.Write(out)
		out = out[:0]
		if err != nil {
			return false
		}
		if f.SlowBody > 0 {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			return e.pause(r, f.SlowBody)
		}
		return true
	}
	if f.Malformed {
		out = append(out, `[1, 2, "three", {`...)
		flush()
		return
	}
	if f.Wrap {
		out = append(out, `{"data": `...)
	}
	out = append(out, '[')
	count := len(values) + f.WrongCount
	cut, bad := -1, -1 // where Truncate closes the connection; OutOfRange's value
	if f.Truncate {
		cut = len(values) / 2
	}
	if f.OutOfRange {
		bad = len(values) / 2
	}
	for i := 0; i < count || f.Endless; {
		switch i {
		case cut:
			flush()
			panic(http.ErrAbortHandler) // close the connection mid-body
		case bad:
			if i > 0 {
				out = append(out, ", "...)
			}
			if bits == 64 {
				out = append(out, "18446744073709551616"...)
			} else {
				out = strconv.AppendUint(out, 1<<bits, 10)
			}
			i++
			continue
		}
		// A run of values that stops at the next special index, at the
		// batch's end (later values repeat the batch: WrongCount, Endless),
		// or when the chunk is full (22 bytes a value at most).
		j := min(i+max(1, (chunk-len(out))/22), (i/len(values)+1)*len(values))
		if !f.Endless {
			j = min(j, count)
		}
		for _, stop := range []int{cut, bad} {
			if stop > i {
				j = min(j, stop)
			}
		}
		k := i % len(values)
		out = appendValues(out, values[k:k+j-i], i == 0)
		i = j
		if len(out) < chunk {
			continue
		}
		if !flush() {
			return
		}
		if f.Endless {
			select {
			case <-r.Context().Done():
				return
			case <-e.done:
				return
			default:
			}
		}
	}
	out = append(out, ']')
	if f.Wrap {
		out = append(out, '}')
	}
	flush()
}

// pause sleeps for d unless the request or the emulator ends first.
func (e *Emulator) pause(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-e.done:
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// writeValidation answers 422 in FastAPI's shape.
func writeValidation(w http.ResponseWriter, field, msg string) {
	loc := []string{"body"}
	if field != "" {
		loc = append(loc, field)
	}
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"detail": []map[string]any{{"loc": loc, "msg": msg, "type": "value_error"}},
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
