package main

// qrng probe: check what the library assumes about the live service
// (api.go; README, "What is unknown about the live API") with a short, fixed
// sequence of raw requests, and print one table line per assumption. The
// probe only reports: it changes no setting and saves nothing for the
// library to pick up.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
)

// The probe's plan. Its worst case, every request served, is
// probeMaxSpend() bits, far below probeBudget.
const (
	probeBudget         = 10_000                               // most bits the probe may spend
	probeFakeToken      = "qrng-probe-fake-token-not-a-secret" // sent as a wrong bearer token
	probeWidthSamples   = 4                                    // values asked at each width
	probeUsageSamples   = 256                                  // the known request of the usage line
	probeUsageBits      = 16                                   // their width
	probeSmallBits      = 16                                   // the one-value requests (fake token, quota)
	probeTooMany        = qrng.MaxSamples + 1                  // n_samples that must be refused
	probeMaxBody        = 1 << 20                              // longest answer read
	probeAnswerInJSON   = 400                                  // longest answer text kept in the report
	probeUsageRereads   = 3                                    // re-reads of a usage count that has not moved
	probeDefaultTimeout = 60 * time.Second                     // the library's AttemptTimeout default
)

var (
	probeWidths    = []int{1, 8, 16, 32, 64} // must be accepted
	probeBadWidths = []int{0, 65}            // must be refused
)

// probeSpendBefore is what the probe spends, before its quota request, on a
// service that accepts n_bits up to maxBits. With -emulator the built-in
// emulator's quota is set to it, so that the quota request meets the
// quota's answer.
func probeSpendBefore(maxBits int) int64 {
	var bits int64
	for _, b := range probeWidths {
		if b <= maxBits {
			bits += int64(probeWidthSamples * b)
		}
	}
	return bits + probeUsageSamples*probeUsageBits
}

// probeMaxSpend is what the probe would spend if the service served every
// request it sent, even those it should refuse (n_bits 65, a fake token).
// The n_samples request asks for 0-bit values, so it can cost nothing.
func probeMaxSpend() int64 {
	bits := probeSpendBefore(64) + probeSmallBits + probeSmallBits // fake token, quota
	for _, b := range probeBadWidths {
		bits += int64(b)
	}
	return bits
}

// Verdicts of a line.
const (
	verdictHolds   = "holds"
	verdictDiffers = "differs"
	verdictUnknown = "could not tell"
)

// probeLine is one assumption checked: one line of the table.
type probeLine struct {
	ID         string          `json:"id"`
	Assumption string          `json:"assumption"`
	Sent       string          `json:"sent"`
	CameBack   string          `json:"came_back"`
	Verdict    string          `json:"verdict"`
	Setting    string          `json:"setting,omitempty"`    // what to change, when it differs
	Error      string          `json:"error,omitempty"`      // why it could not be checked, when a request failed
	LatencyMS  float64         `json:"latency_ms,omitempty"` // slowest of its requests
	Requests   []*probeRequest `json:"requests"`
}

func (l *probeLine) holds(came string) { l.CameBack, l.Verdict = came, verdictHolds }
func (l *probeLine) differs(came, setting string) {
	l.CameBack, l.Verdict, l.Setting = came, verdictDiffers, setting
}
func (l *probeLine) unknown(came, err string) {
	l.CameBack, l.Verdict, l.Error = came, verdictUnknown, err
}

// probeRequest is one request sent and its answer, tokens redacted.
type probeRequest struct {
	Path      string  `json:"path"`
	Auth      string  `json:"auth,omitempty"`
	Sent      string  `json:"sent"`
	Status    int     `json:"status,omitempty"`
	Answer    string  `json:"answer,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`

	body       []byte
	latency    time.Duration
	timedOut   bool
	retryAfter string
}

// probeReport is the whole result, printed as a table or as JSON.
type probeReport struct {
	Service      string       `json:"service"`
	Emulator     bool         `json:"emulator"`
	Started      time.Time    `json:"started"`
	BitsSpent    int64        `json:"bits_spent"`   // n_samples * n_bits of the answers with values
	BitsAtMost   int64        `json:"bits_at_most"` // had every request been served
	Holds        int          `json:"holds"`        // lines by verdict
	Differs      int          `json:"differs"`
	CouldNotTell int          `json:"could_not_tell"`
	Lines        []*probeLine `json:"lines"`
}

// prober sends the probe's requests and keeps what it learns. It is used by
// one goroutine.
type prober struct {
	base      string
	hc        *http.Client
	token     string   // the API token
	access    string   // the access token, once exchanged
	secrets   []string // never printed: the API token and access token
	timeout   time.Duration
	usageWait time.Duration // pause before re-reading a usage count that has not moved
	now       func() time.Time

	rep       *probeReport
	requests  []*probeRequest
	answers   []probeAnswer // 200 answers of the width line
	usedBits  int64         // this month's usage, as last read; -1 if unknown
	tokenBody map[string]json.RawMessage
	tokenAt   time.Time // when the token answer came
}

// probeAnswer is a 200 answer to a request for n values of bits bits.
type probeAnswer struct {
	x       *probeRequest
	n, bits int
}

// probeCmd is 'qrng probe'.
type probeCmd struct {
	emulator bool
	asJSON   bool
	out      string
	timeout  time.Duration
}

func (c *probeCmd) define(fs *flag.FlagSet) {
	fs.BoolVar(&c.emulator, "emulator", false, "probe the built-in emulator, not the live service (for tests)")
	fs.BoolVar(&c.asJSON, "json", false, "print one JSON object instead of the table")
	fs.StringVar(&c.out, "o", "", "write the table (or JSON) to this file instead of stdout")
	fs.DurationVar(&c.timeout, "timeout", probeDefaultTimeout, "longest wait for one answer")
}

func (c *probeCmd) check(given map[string]bool) error {
	if c.timeout <= 0 {
		return usagef("-timeout %s: want a positive duration", c.timeout)
	}
	if given["o"] {
		if c.out == "" {
			return usagef("-o: want a file name")
		}
		return checkOutFile(c.out)
	}
	return nil
}

func (c *probeCmd) run(e *env) error {
	emulator, asJSON, out, timeout := &c.emulator, &c.asJSON, &c.out, &c.timeout
	token, base := e.token(), e.getenv("QCI_API_URL")
	if token == "" && !*emulator {
		return usagef("probe needs QCI_TOKEN: it checks the live service (-emulator probes the built-in emulator)")
	}
	if !*emulator {
		if base == "" {
			base = qrng.DefaultBaseURL
		}
		if _, err := qrng.NewClient(qrng.ClientConfig{BaseURL: base, Token: token}); err != nil {
			return usagef("QCI_API_URL: %s", bare(err))
		}
	}
	var file *outFile
	if *out != "" {
		// Opened before the first request: a file that cannot be written
		// is refused before any quota is spent on a result it would lose.
		// The report holds no secret (tokens are redacted): 0644 if new.
		f, err := createOutFile(*out, 0o644)
		if err != nil {
			return err
		}
		defer f.discard()
		file = f
	}
	if *emulator {
		// The quota runs out at the probe's last request, so that the table
		// shows the quota's answer too.
		srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: probeSpendBefore(64)})
		defer srv.Close()
		token, base = srv.Token, srv.URL
		fmt.Fprintln(e.stderr, "qrng: -emulator given: probing the built-in emulator, not the live service")
	}
	p := newProber(base, token, *timeout)
	defer p.hc.CloseIdleConnections()
	rep := p.run(e.ctx)
	rep.Emulator = *emulator

	var buf bytes.Buffer
	if *asJSON {
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("qrng: probe: %w", err)
		}
	} else {
		rep.table(&buf)
	}
	text := []byte(p.redact(buf.String())) // a last pass: no token leaves, whatever a field holds
	if file != nil {
		if _, err := file.Write(text); err != nil {
			return fmt.Errorf("qrng: probe: %s; %s", bare(err), file.kept())
		}
		if err := file.commit(); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "qrng: probe: %s; written to %s\n", rep.summary(), *out)
	} else if _, err := e.stdout.Write(text); err != nil && !isBrokenPipe(err) {
		return fmt.Errorf("qrng: writing output: %w", err)
	}
	return rep.err() // a closed pipe on stdout is no error; the verdicts still are
}

func newProber(base, token string, timeout time.Duration) *prober {
	hc := &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// The library's redirect rules: at most 5, never to plain http
		// except on loopback, no Authorization header to another host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("qrng: refused redirect: more than 5")
			}
			if err := probeCheckScheme(req.URL); err != nil {
				return fmt.Errorf("qrng: refused redirect: %w", err)
			}
			if req.URL.Host != via[0].URL.Host {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
	return &prober{base: strings.TrimRight(base, "/"), hc: hc, token: token, secrets: []string{token},
		timeout: timeout, usageWait: time.Second, now: time.Now, usedBits: -1}
}

// probeCheckScheme allows https anywhere and plain http to loopback only.
func probeCheckScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("plain http to non-loopback host %q", host)
	}
	return fmt.Errorf("unsupported URL scheme %q", u.Scheme)
}

// probeCheck is one line of the plan.
type probeCheck struct {
	id, assumption, sent string
	run                  func(ctx context.Context, l *probeLine)
	needsAccess          bool
}

func (p *prober) plan() []probeCheck {
	return []probeCheck{
		{"token", "token answer has access_token, bearer, expiry",
			"POST /auth/v1/access-tokens", p.checkToken, false},
		{"expires_in", "expires_in is an absolute Unix time", "(the token answer)", p.checkExpiresIn, true},
		{"wrong_token", "a wrong access token gets 401", fmt.Sprintf("1 x %d bits, a fake bearer token", probeSmallBits), p.checkWrongToken, true},
		{"n_bits_accepted", "n_bits 1, 8, 16, 32 and 64 are accepted",
			fmt.Sprintf("%d values at each width", probeWidthSamples), p.checkWidths, true},
		{"n_bits_refused", "n_bits 0 and 65 are refused", "1 value at each width", p.checkBadWidths, true},
		{"n_samples_refused", `n_samples 1,000,001 gets 422 {"detail": [...]}`,
			fmt.Sprintf("n_samples %d, n_bits 0", probeTooMany), p.checkTooMany, true},
		{"answer_shape", "answers are bare arrays of n_samples values < 2^n_bits",
			"(the answers to the n_bits line)", p.checkShape, true},
		{"error_bodies", `error bodies are {"detail": ...}`, "(the refused requests above)", p.checkErrorBodies, true},
		{"usage", "usage grows by n_samples x n_bits",
			fmt.Sprintf("usage; %d x %d bits; usage", probeUsageSamples, probeUsageBits), p.checkUsage, true},
		{"quota", `a spent quota gets 429 mentioning "quota"`,
			fmt.Sprintf("1 x %d bits, last", probeSmallBits), p.checkQuota, true},
		{"latency", "every answer comes within " + p.timeout.String(), "(every request above)", p.checkLatency, false},
	}
}

// run sends the plan's requests and returns the report.
func (p *prober) run(ctx context.Context) *probeReport {
	p.rep = &probeReport{Service: p.base, Started: p.now().UTC().Truncate(time.Second), BitsAtMost: probeMaxSpend()}
	for _, c := range p.plan() {
		l := &probeLine{ID: c.id, Assumption: c.assumption, Sent: c.sent, Requests: []*probeRequest{}}
		switch {
		case ctx.Err() != nil:
			l.unknown("not sent", "interrupted")
		case c.needsAccess && p.access == "":
			l.unknown("not sent", "no access token")
		default:
			c.run(ctx, l)
		}
		for _, x := range l.Requests {
			l.LatencyMS = max(l.LatencyMS, x.LatencyMS)
		}
		p.rep.Lines = append(p.rep.Lines, l)
	}
	for _, x := range p.requests {
		x.Answer = p.clean(string(x.body), probeAnswerInJSON)
	}
	for _, l := range p.rep.Lines {
		l.CameBack, l.Setting, l.Error = p.redact(l.CameBack), p.redact(l.Setting), p.redact(l.Error)
		switch l.Verdict {
		case verdictHolds:
			p.rep.Holds++
		case verdictDiffers:
			p.rep.Differs++
		default:
			p.rep.CouldNotTell++
		}
	}
	return p.rep
}

// post sends one request with body as JSON. bearer is the access token,
// probeFakeToken, or "" for none. It never fails: errors are recorded.
func (p *prober) post(ctx context.Context, l *probeLine, path, bearer string, body any) *probeRequest {
	b, _ := json.Marshal(body)
	x := &probeRequest{Path: path, Sent: p.redact(string(b))}
	p.requests = append(p.requests, x)
	l.Requests = append(l.Requests, x)
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.base+path, bytes.NewReader(b))
	if err != nil {
		x.Error = p.clean(err.Error(), 300)
		return x
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "qrng-go/"+qrng.Version+" probe (+https://github.com/qrng-go/qrng)")
	switch bearer {
	case "":
	case probeFakeToken:
		x.Auth = "Bearer " + probeFakeToken
	default:
		x.Auth = "Bearer [REDACTED]"
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	resp, err := p.hc.Do(req)
	if err == nil {
		x.Status = resp.StatusCode
		x.retryAfter = resp.Header.Get("Retry-After")
		x.body, err = io.ReadAll(io.LimitReader(resp.Body, probeMaxBody))
		resp.Body.Close()
	}
	x.latency = time.Since(start)
	x.LatencyMS = float64(x.latency.Microseconds()/10) / 100
	if err != nil {
		x.timedOut = errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		if x.timedOut {
			x.Error = fmt.Sprintf("no answer within %s", p.timeout)
		} else {
			x.Error = p.clean(err.Error(), 300)
		}
	}
	return x
}

// numbers asks for n values of bits bits with the given bearer token.
func (p *prober) numbers(ctx context.Context, l *probeLine, n, bits int, bearer string) *probeRequest {
	x := p.post(ctx, l, "/qrng/random_numbers", bearer, map[string]any{
		"distribution": "uniform_discrete", "output_type": "decimal", "n_samples": n, "n_bits": bits})
	if x.Status == http.StatusOK && bits > 0 {
		p.rep.BitsSpent += int64(n * bits)
	}
	return x
}

// redact replaces every secret in s.
func (p *prober) redact(s string) string {
	for _, secret := range p.secrets {
		if len(secret) >= 6 {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return s
}

// clean redacts s, folds white space and control characters, and
// shortens it to n bytes.
func (p *prober) clean(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(p.redact(s), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}

// status is a request's outcome in a few words: "422 ensure this ...".
func (p *prober) status(x *probeRequest) string {
	if x.Error != "" {
		return x.Error
	}
	s := strconv.Itoa(x.Status)
	if x.Status != http.StatusOK {
		if msg := p.clean(readDetail(x.body).msg, 60); msg != "" {
			s += " " + msg
		}
	}
	return s
}

// failed reports why x could not be judged: a transport error, a refused
// token, the quota, rate limiting or a server failure. "" when x has a
// judgeable answer.
func (p *prober) failed(x *probeRequest) string {
	switch {
	case x.Error != "":
		return x.Error
	case x.Status == http.StatusUnauthorized, x.Status == http.StatusTooManyRequests, x.Status >= 500,
		mentionsQuota(x):
		return fmt.Sprintf("%s: %s", x.Path, p.status(x))
	}
	return ""
}

func mentionsQuota(x *probeRequest) bool {
	return x.Status >= 400 && strings.Contains(strings.ToLower(readDetail(x.body).msg), "quota")
}

// detailInfo is what an error body says, in FastAPI's shape or not.
type detailInfo struct {
	shape string   // "detail string", "detail list", "detail of another type", "JSON without detail", "not JSON", "empty"
	msg   string   // the message, or the body itself
	locs  []string // with a list: each item's loc joined with dots
}

func readDetail(body []byte) detailInfo {
	var v map[string]json.RawMessage
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return detailInfo{shape: "empty"}
	case json.Unmarshal(body, &v) != nil:
		return detailInfo{shape: "not JSON", msg: string(body)}
	}
	raw, ok := v["detail"]
	if !ok {
		return detailInfo{shape: "JSON without detail", msg: string(body)}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return detailInfo{shape: "detail string", msg: s}
	}
	var items []struct {
		Loc []any  `json:"loc"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return detailInfo{shape: "detail of another type", msg: string(raw)}
	}
	d := detailInfo{shape: "detail list"}
	var msgs []string
	for _, it := range items {
		loc := make([]string, len(it.Loc))
		for i, part := range it.Loc {
			loc[i] = fmt.Sprint(part)
		}
		d.locs = append(d.locs, strings.Join(loc, "."))
		msgs = append(msgs, strings.Join(loc, ".")+": "+it.Msg)
	}
	d.msg = strings.Join(msgs, "; ")
	return d
}

// table prints the report for people.
func (r *probeReport) table(w io.Writer) {
	where := r.Service
	if r.Emulator {
		where += " (the built-in emulator, NOT the live service)"
	}
	fmt.Fprintf(w, "qrng probe of %s at %s\n\n", where, r.Started.Format(time.RFC3339))
	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tassumption\tsent\tcame back\tverdict\tlatency\tsetting")
	for i, l := range r.Lines {
		lat := "-"
		if len(l.Requests) > 0 {
			lat = formatMS(l.LatencyMS)
		}
		setting := l.Setting
		if l.Error != "" {
			setting = strings.TrimSpace(setting + " (" + l.Error + ")")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, l.Assumption, l.Sent, l.CameBack, l.Verdict, lat, setting)
	}
	tw.Flush()
	for line := range strings.Lines(tb.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	fmt.Fprintf(w, "\n%s.\n", r.summary())
	if r.Differs > 0 {
		fmt.Fprintln(w, "Where a line differs, its setting says what to change in your configuration; the probe changed nothing.")
	}
}

func formatMS(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
	if ms >= 10 {
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	if ms >= 1 {
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
}

func (r *probeReport) summary() string {
	return fmt.Sprintf("%d lines: %d hold, %d differ, %d could not tell; %d bits spent (at most %d)",
		len(r.Lines), r.Holds, r.Differs, r.CouldNotTell, r.BitsSpent, r.BitsAtMost)
}

// err is the command's error: nil when no line differs and every request
// that mattered was answered.
func (r *probeReport) err() error {
	var differ, failed []string
	firstErr := ""
	for _, l := range r.Lines {
		if l.Verdict == verdictDiffers {
			differ = append(differ, l.ID)
		}
		if l.Error != "" {
			failed = append(failed, l.ID)
			if firstErr == "" {
				firstErr = l.Error
			}
		}
	}
	var parts []string
	if len(differ) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d assumptions differ (%s): see the setting column",
			len(differ), len(r.Lines), strings.Join(differ, ", ")))
	}
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("could not check %s: %s", strings.Join(failed, ", "), firstErr))
	}
	if len(parts) == 0 {
		return nil
	}
	return errors.New("qrng: probe: " + strings.Join(parts, "; "))
}

// sortedKeys lists m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
