package main

// The probe's checks, in the order they run (see plan). Each fills in its
// line of the table.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
