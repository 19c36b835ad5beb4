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
	"os"
	"path/filepath"
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

func (e *env) probe(args []string) error {
	fs := flag.NewFlagSet("qrng probe", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	emulator := fs.Bool("emulator", false, "probe the built-in emulator, not the live service (for tests)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	out := fs.String("o", "", "write the table (or JSON) to this file instead of stdout")
	timeout := fs.Duration("timeout", probeDefaultTimeout, "longest wait for one answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("-timeout %s: want a positive duration", *timeout)
	}
	token, base := e.getenv("QCI_TOKEN"), e.getenv("QCI_API_URL")
	switch {
	case *emulator:
		// The quota runs out at the probe's last request, so that the table
		// shows the quota's answer too.
		srv := qrngtest.NewServer(qrngtest.Options{QuotaBits: probeSpendBefore(64)})
		defer srv.Close()
		token, base = srv.Token, srv.URL
		fmt.Fprintln(e.stderr, "qrng: -emulator given: probing the built-in emulator, not the live service")
	case token == "":
		return errors.New("qrng: probe: no QCI_TOKEN set: the probe checks the live service (-emulator probes the built-in emulator)")
	}
	if base == "" {
		base = qrng.DefaultBaseURL
	}
	if _, err := qrng.NewClient(qrng.ClientConfig{BaseURL: base, Token: token}); err != nil {
		return usagef("QCI_API_URL: %v", err)
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
	if *out != "" {
		if err := writeFileAtomic(*out, text); err != nil {
			return fmt.Errorf("qrng: probe: %w", err)
		}
		fmt.Fprintf(e.stderr, "qrng: probe: %s; written to %s\n", rep.summary(), *out)
	} else if _, err := e.stdout.Write(text); err != nil {
		return fmt.Errorf("qrng: writing output: %w", err)
	}
	return rep.err()
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

// writeFileAtomic writes data to a temporary file beside name, then renames
// it, so that name is never left half written.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
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

// The checks, in the order they run. Each fills in its line.

func (p *prober) checkToken(ctx context.Context, l *probeLine) {
	x := p.post(ctx, l, "/auth/v1/access-tokens", "", map[string]string{"refresh_token": p.token})
	p.tokenAt = p.now()
	if x.Error != "" || x.Status != http.StatusOK {
		l.unknown(p.status(x), "the token exchange failed: "+p.status(x))
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(x.body, &fields) != nil {
		l.differs("200, not a JSON object", "none: the library cannot read this answer; report it")
		l.Error = "no access token"
		return
	}
	p.tokenBody = fields
	var access, tokenType, expAt string
	json.Unmarshal(fields["access_token"], &access)
	json.Unmarshal(fields["token_type"], &tokenType)
	json.Unmarshal(fields["expires_at_rfc3339"], &expAt)
	if access != "" {
		p.access = access
		p.secrets = append(p.secrets, access)
	}
	var missing []string
	for _, k := range []string{"access_token", "token_type", "expires_at_rfc3339", "expires_in"} {
		if _, ok := fields[k]; !ok {
			missing = append(missing, k)
		}
	}
	came := "200: the four fields"
	if len(missing) > 0 {
		came = "200: no " + strings.Join(missing, ", no ")
	}
	came += ", token_type " + strconv.Quote(p.clean(tokenType, 20))
	at, atErr := time.Parse(time.RFC3339, expAt)
	if atErr == nil {
		came += fmt.Sprintf(", lasts %s", approx(at.Sub(p.tokenAt)))
	}
	_, hasIn := fields["expires_in"]
	switch {
	case access == "":
		l.differs(came, "none: the library needs access_token; report it")
		l.Error = "no access token"
	case !strings.EqualFold(tokenType, "bearer"):
		l.differs(came, "none: the library sends the token as Bearer; report it")
	case atErr != nil && hasIn:
		l.differs(came, "none needed: without expires_at_rfc3339 the library reads expires_in")
	case atErr != nil:
		l.differs(came, "none needed: with no expiry the library assumes 5 minutes and renews on a 401")
	default:
		l.holds(came)
	}
}

func (p *prober) checkExpiresIn(ctx context.Context, l *probeLine) {
	raw, ok := p.tokenBody["expires_in"]
	if !ok {
		l.unknown("no expires_in", "")
		return
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	f, err := 0.0, dec.Decode(&n)
	if err == nil {
		f, err = n.Float64()
	}
	if err != nil || f <= 0 {
		l.differs(fmt.Sprintf("%s: not a positive number", p.clean(string(raw), 30)),
			"none needed: the library then reads expires_at_rfc3339, or assumes 5 minutes")
		return
	}
	var expAt string
	json.Unmarshal(p.tokenBody["expires_at_rfc3339"], &expAt)
	at, atErr := time.Parse(time.RFC3339, expAt)
	now := p.tokenAt
	if f > 1e9 {
		t := time.Unix(int64(f), 0)
		came := fmt.Sprintf("%s = now + %s", n, approx(t.Sub(now)))
		switch d := t.Sub(at).Abs(); {
		case atErr == nil && d > 2*time.Second:
			l.differs(came+fmt.Sprintf(", %s from expires_at_rfc3339", d.Round(time.Second)),
				"none needed: the library prefers expires_at_rfc3339")
		case !t.After(now):
			l.differs(came+", already past", "set this machine's clock right: token expiries are compared with it")
		default:
			l.holds(came)
		}
		return
	}
	life := time.Duration(f * float64(time.Second))
	came := fmt.Sprintf("%s: seconds from now (%s)", n, approx(life))
	if atErr == nil && (now.Add(life).Sub(at)).Abs() <= time.Minute {
		came += ", as expires_at_rfc3339 says"
	}
	l.differs(came, "none needed: the library reads expires_in below 10^9 as seconds, and prefers expires_at_rfc3339")
}

func (p *prober) checkWrongToken(ctx context.Context, l *probeLine) {
	x := p.numbers(ctx, l, 1, probeSmallBits, probeFakeToken)
	switch {
	case x.Error != "":
		l.unknown(p.status(x), x.Error)
	case x.Status == http.StatusUnauthorized:
		l.holds(p.status(x))
	case x.Status == http.StatusOK:
		l.differs("200: a fake token was accepted", "none: report it to QCI")
	default:
		l.differs(p.status(x), "ClientConfig.RefreshMargin: 10m (renew early: the library renews an access token early or after a 401)")
	}
}

func (p *prober) checkWidths(ctx context.Context, l *probeLine) {
	var parts, refused []string
	widest, fail := 0, ""
	for _, b := range probeWidths {
		x := p.numbers(ctx, l, probeWidthSamples, b, p.access)
		parts = append(parts, fmt.Sprintf("%d:%s", b, strconv.Itoa(x.Status)))
		switch {
		case p.failed(x) != "":
			fail = cmpStr(fail, p.failed(x))
		case x.Status == http.StatusOK:
			widest = b
			p.answers = append(p.answers, probeAnswer{x, probeWidthSamples, b})
		default:
			refused = append(refused, strconv.Itoa(b))
		}
	}
	came := strings.Join(parts, " ")
	switch {
	case fail != "":
		l.unknown(came, fail)
	case len(refused) == 0:
		l.holds(came)
	case widest == 0:
		l.differs(came, "none: no width was accepted; report it")
	default:
		l.differs(came, fmt.Sprintf("Config.Bits: %d (the widest accepted; %s refused)", widest, strings.Join(refused, ", ")))
	}
}

func (p *prober) checkBadWidths(ctx context.Context, l *probeLine) {
	var parts, accepted []string
	fail := ""
	for _, b := range probeBadWidths {
		x := p.numbers(ctx, l, 1, b, p.access)
		parts = append(parts, fmt.Sprintf("%d:%s", b, strconv.Itoa(x.Status)))
		switch {
		case p.failed(x) != "":
			fail = cmpStr(fail, p.failed(x))
		case x.Status == http.StatusOK:
			accepted = append(accepted, strconv.Itoa(b))
		}
	}
	came := strings.Join(parts, " ")
	switch {
	case fail != "":
		l.unknown(came, fail)
	case len(accepted) > 0:
		l.differs(came, "none needed: the library sends n_bits 1..64 only")
	default:
		l.holds(came)
	}
}

func (p *prober) checkTooMany(ctx context.Context, l *probeLine) {
	// n_bits 0 keeps the cost at nothing should the service serve it;
	// FastAPI lists every invalid field, so n_samples is still reported.
	x := p.numbers(ctx, l, probeTooMany, 0, p.access)
	d := readDetail(x.body)
	aboutSamples := slices.ContainsFunc(d.locs, func(loc string) bool { return strings.HasSuffix(loc, "n_samples") })
	const setting = "none needed: the library asks for at most 1,000,000 (Config.BatchSize) and reads any 4xx as ErrBadRequest"
	switch {
	case p.failed(x) != "":
		l.unknown(p.status(x), p.failed(x))
	case x.Status == http.StatusOK:
		l.differs("200: accepted", setting)
	case x.Status == http.StatusUnprocessableEntity && d.shape == "detail list" && aboutSamples:
		l.holds("422 detail list: " + p.clean(d.msg, 45))
	case x.Status == http.StatusUnprocessableEntity && d.shape == "detail list":
		l.unknown("422 detail list, n_samples not named: "+p.clean(d.msg, 40), "")
	default:
		l.differs(fmt.Sprintf("%d %s: %s", x.Status, d.shape, p.clean(d.msg, 40)), setting)
	}
}

func (p *prober) checkShape(ctx context.Context, l *probeLine) {
	if len(p.answers) == 0 {
		l.unknown("no answer with values", "")
		return
	}
	wrapped, bad := 0, ""
	for _, a := range p.answers {
		isWrapped, err := checkValues(a.x.body, a.n, a.bits)
		if err != nil && bad == "" {
			bad = fmt.Sprintf("n_bits %d: %v", a.bits, err)
		}
		if isWrapped {
			wrapped++
		}
	}
	switch {
	case bad != "":
		l.differs(p.clean(bad, 80), "none: the library refuses such answers (ErrInvalidResponse); report it")
	case wrapped > 0:
		l.differs(fmt.Sprintf(`{"data": [...]} (%d of %d), counts and ranges right`, wrapped, len(p.answers)),
			`none needed: the library also reads {"data": [...]}`)
	default:
		l.holds(fmt.Sprintf("bare arrays, counts and ranges right (%d answers)", len(p.answers)))
	}
}

// checkValues checks an answer of n values below 2^bits: a bare array or
// one wrapped in {"data": ...}.
func checkValues(body []byte, n, bits int) (wrapped bool, err error) {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		var v map[string]json.RawMessage
		if err := json.Unmarshal(t, &v); err != nil {
			return false, fmt.Errorf("not JSON: %v", err)
		}
		data, ok := v["data"]
		if !ok {
			return false, fmt.Errorf("an object without data: %s", strings.Join(sortedKeys(v), ", "))
		}
		body, wrapped = data, true
	}
	var nums []json.Number
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&nums); err != nil {
		return wrapped, fmt.Errorf("not an array of numbers: %v", err)
	}
	if len(nums) != n {
		return wrapped, fmt.Errorf("%d values, asked for %d", len(nums), n)
	}
	for _, num := range nums {
		v, err := strconv.ParseUint(num.String(), 10, 64)
		if err != nil || bits < 64 && v>>bits != 0 {
			return wrapped, fmt.Errorf("value %s is not an integer in [0, 2^%d)", num, bits)
		}
	}
	return wrapped, nil
}

func (p *prober) checkErrorBodies(ctx context.Context, l *probeLine) {
	counts := map[string]int{}
	holds := true
	for _, x := range p.requests {
		if x.Error != "" || x.Status < 400 {
			continue
		}
		d := readDetail(x.body)
		counts[fmt.Sprintf("%d %s", x.Status, d.shape)]++
		holds = holds && (d.shape == "detail string" || d.shape == "detail list")
	}
	if len(counts) == 0 {
		l.unknown("no refusal to look at", "")
		return
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		if counts[k] > 1 {
			k += fmt.Sprintf(" (x%d)", counts[k])
		}
		parts = append(parts, k)
	}
	came := strings.Join(parts, "; ")
	if holds {
		l.holds(came)
		return
	}
	l.differs(came, "none needed: the library shows any other error body as text")
}

func (p *prober) checkUsage(ctx context.Context, l *probeLine) {
	today := p.now().UTC()
	period := map[string]string{
		"start_date": today.Format("2006-01") + "-01",
		"end_date":   today.Format(time.DateOnly),
	}
	read := func() (int64, string) {
		x := p.post(ctx, l, "/qrng/usage", p.access, period)
		if f := p.failed(x); f != "" || x.Status != http.StatusOK {
			return 0, cmpStr(f, p.status(x))
		}
		var v struct {
			NBits *json.Number `json:"n_bits"`
		}
		if json.Unmarshal(x.body, &v) != nil || v.NBits == nil {
			return 0, "no n_bits in the usage answer"
		}
		n, err := strconv.ParseInt(v.NBits.String(), 10, 64)
		if err != nil {
			return 0, fmt.Sprintf("usage n_bits %q is not a count", p.clean(v.NBits.String(), 30))
		}
		return n, ""
	}
	before, bad := read()
	if bad != "" {
		l.unknown(bad, bad)
		return
	}
	p.usedBits = before
	x := p.numbers(ctx, l, probeUsageSamples, probeUsageBits, p.access)
	if x.Status != http.StatusOK {
		l.unknown("known request: "+p.status(x), cmpStr(p.failed(x), "the known request was refused: "+p.status(x)))
		return
	}
	after, bad := read()
	for i := 0; bad == "" && after == before && i < probeUsageRereads; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(p.usageWait):
		}
		after, bad = read()
	}
	if bad != "" {
		l.unknown(bad, bad)
		return
	}
	p.usedBits = after
	const known = probeUsageSamples * probeUsageBits
	delta := after - before
	came := fmt.Sprintf("%d -> %d (%+d)", before, after, delta)
	const setting = "leave Config.SyncUsage off: the meter's count differs from usage"
	switch delta {
	case known:
		l.holds(came)
	case 0:
		l.unknown(came+": not moved yet", "")
	case known / 8:
		l.differs(came+": bytes, not bits", setting+" (it counts bytes)")
	case probeUsageSamples:
		l.differs(came+": values, not bits", setting+" (it counts values)")
	case probeUsageSamples * 64:
		l.differs(came+": 64 bits a value", setting+" (it counts 64 bits a value)")
	default:
		l.differs(fmt.Sprintf("%s, not %+d (another program using the token?)", came, known), setting)
	}
}

func (p *prober) checkQuota(ctx context.Context, l *probeLine) {
	x := p.numbers(ctx, l, 1, probeSmallBits, p.access)
	came := p.status(x)
	if x.retryAfter != "" {
		came += ", Retry-After " + p.clean(x.retryAfter, 30)
	}
	switch {
	case x.Error != "":
		l.unknown(came, x.Error)
	case x.Status == http.StatusOK:
		used := ""
		if p.usedBits >= 0 {
			used = fmt.Sprintf(" (%d bits used this month)", p.usedBits)
		}
		l.unknown("200: the quota is not spent"+used, "")
	case mentionsQuota(x) && x.Status == http.StatusTooManyRequests:
		l.holds(came)
	case mentionsQuota(x) && (x.Status == http.StatusPaymentRequired || x.Status == http.StatusForbidden):
		l.differs(came, `none needed: the library also reads 402 and 403 mentioning "quota" as the quota's answer`)
	case mentionsQuota(x):
		l.differs(came, "Config.Fallback: qrng.FallbackOnError (this answer is not recognised as the quota's; Config.QuotaBits still limits)")
	default:
		l.unknown(came, p.failed(x))
	}
}

func (p *prober) checkLatency(ctx context.Context, l *probeLine) {
	var lat []time.Duration
	var slow *probeRequest
	for _, x := range p.requests {
		if x.timedOut {
			l.differs(fmt.Sprintf("%s: no answer within %s", x.Path, p.timeout),
				fmt.Sprintf("ClientConfig.AttemptTimeout: more than %s", p.timeout))
			return
		}
		if x.Error == "" {
			lat = append(lat, x.latency)
			if slow == nil || x.latency > slow.latency {
				slow = x
			}
		}
	}
	if len(lat) == 0 {
		l.unknown("no answer", "")
		return
	}
	slices.Sort(lat)
	l.holds(fmt.Sprintf("%d answers: median %s, slowest %s (%s)", len(lat),
		formatMS(float64(lat[len(lat)/2].Microseconds())/1000), formatMS(slow.LatencyMS), slow.Path))
}

// approx rounds a token lifetime for reading: to the minute above ten
// minutes (expiry times are given to the second), else to the second.
func approx(d time.Duration) time.Duration {
	if d.Abs() > 10*time.Minute {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// cmpStr returns s, or def when s is empty.
func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
