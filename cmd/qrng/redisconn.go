package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/qrng-go/qrng/redispool"
	"github.com/redis/go-redis/v9"
)

// How the command reaches the pool's Redis: one node, a Cluster (found
// from any node's URL, or named by addr= seeds) or a primary behind
// Sentinels (-sentinel-master), over TLS with a CA and a client
// certificate of the user's, the URL from a flag, a file or the
// environment.

// redisFlags name a pool: -redis URL (default $QRNG_REDIS_URL), or
// -redis-file FILE, the keys' prefix -key, -sentinel-master NAME and the
// TLS files.
type redisFlags struct {
	url      string
	given    bool   // -redis was on the command line
	file     string // -redis-file
	key      string
	sentinel string // -sentinel-master
	ca       string // -redis-ca
	cert     string // -redis-cert
	certKey  string // -redis-key
}

func (r *redisFlags) define(fs *flag.FlagSet) {
	fs.Func("redis", "the pool's Redis, as a URL: redis://, rediss:// (TLS) or unix:// (default $QRNG_REDIS_URL); "+
		"any node of a Cluster, or more seeds as ?addr=host:port",
		func(v string) error {
			if v == "" {
				return errors.New("want a URL")
			}
			r.url, r.given = v, true
			return nil
		})
	fs.StringVar(&r.file, "redis-file", "", "read the pool's Redis URL from `FILE` (keeps its password off the command line)")
	fs.StringVar(&r.key, "key", "", "the prefix of the pool's keys (default "+redispool.DefaultPrefix+", or "+
		redispool.OldDefaultPrefix+" where Redis holds a pool an earlier version made under that prefix)")
	fs.StringVar(&r.sentinel, "sentinel-master", "", "reach the primary `NAME` through the Sentinels the URL names "+
		"(its host, and more as ?addr=host:port)")
	fs.StringVar(&r.ca, "redis-ca", "", "trust the Redis server's certificate if signed by the CA in `FILE` (PEM; rediss:// only)")
	fs.StringVar(&r.cert, "redis-cert", "", "present the client certificate in `FILE` (PEM; with -redis-key; rediss:// only)")
	fs.StringVar(&r.certKey, "redis-key", "", "the private key of -redis-cert, in `FILE` (PEM)")
}

// checkKey refuses an empty -key (omitted, the library picks the prefix).
func (r *redisFlags) checkKey(given map[string]bool) error {
	if given["key"] && r.key == "" {
		return usagef("-key: want a prefix (omit -key for %q)", redispool.DefaultPrefix)
	}
	return nil
}

// redisTarget is a resolved -redis: the options of one kind of client.
type redisTarget struct {
	raw      string // the URL, for redaction only
	from     string // what gave it: "-redis", "-redis-file FILE" or "QRNG_REDIS_URL"
	node     *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
	tls      *tls.Config // nil: plaintext
	dial     time.Duration
}

// resolve finds the URL (-redis, -redis-file, then $QRNG_REDIS_URL) and
// parses it with the other flags. Nil, nil: no pool named, and none
// required.
func (r *redisFlags) resolve(e *env, required bool) (*redisTarget, error) {
	t := &redisTarget{from: "-redis"}
	switch {
	case r.url != "" && r.file != "":
		return nil, usagef("-redis and -redis-file exclude each other: give the URL once")
	case r.file != "":
		u, err := readURLFile(r.file)
		if err != nil {
			return nil, err
		}
		r.url, t.from = u, "-redis-file "+r.file
	case r.url == "":
		r.url, t.from = e.getenv("QRNG_REDIS_URL"), "QRNG_REDIS_URL"
	}
	if r.url == "" {
		if required {
			return nil, usagef("-redis: want the pool's Redis URL (or -redis-file FILE, or set QRNG_REDIS_URL)")
		}
		if r.sentinel != "" || r.ca != "" || r.cert != "" || r.certKey != "" {
			return nil, usagef("-sentinel-master and -redis-ca, -redis-cert, -redis-key need a pool: give -redis URL or set QRNG_REDIS_URL")
		}
		return nil, nil
	}
	t.raw = r.url
	if err := t.parse(r.url, r.sentinel); err != nil {
		return nil, err
	}
	if err := r.applyTLS(t); err != nil {
		return nil, err
	}
	return t, nil
}

// readURLFile reads a URL file: one line (surrounding space ignored).
// Its text never appears in an error.
func readURLFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", usagef("-redis-file %s: %v", name, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", usagef("-redis-file %s: %v", name, err)
	}
	u := strings.TrimSpace(string(b))
	switch {
	case u == "":
		return "", usagef("-redis-file %s is empty: want the pool's Redis URL on one line", name)
	case strings.ContainsAny(u, "\r\n"):
		return "", usagef("-redis-file %s holds more than one line: want the pool's Redis URL on one line", name)
	}
	return u, nil
}

// parse reads the URL as go-redis does: ParseFailoverURL with a
// Sentinel master named, ParseClusterURL when addr= seeds are given,
// ParseURL otherwise. The parser's own text is never shown: it may quote
// the URL, password and all.
func (t *redisTarget) parse(raw, master string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return t.notAURL("")
	}
	seeds := u.Query().Has("addr")
	switch {
	case master != "":
		if u.Scheme == "unix" {
			return usagef("-sentinel-master: the Sentinels are reached by redis:// or rediss://, not unix://")
		}
		o, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return t.notAURL(err.Error())
		}
		if o.MasterName != "" && o.MasterName != master {
			return usagef("-sentinel-master %s: %s names master_name %s", master, t.from, o.MasterName)
		}
		o.MasterName = master
		t.failover, t.tls, t.dial = o, o.TLSConfig, o.DialTimeout
	case seeds:
		o, err := redis.ParseClusterURL(raw)
		if err != nil {
			return t.notAURL(err.Error())
		}
		t.cluster, t.tls, t.dial = o, o.TLSConfig, o.DialTimeout
	default:
		o, err := redis.ParseURL(raw)
		if err != nil {
			return t.notAURL(err.Error())
		}
		t.node, t.tls, t.dial = o, o.TLSConfig, o.DialTimeout
	}
	if t.dial <= 0 {
		t.dial = 5 * time.Second // go-redis's default
	}
	return nil
}

// notAURL is the error for a URL go-redis refuses; detail is go-redis's
// reason, kept where it names an option (never the URL).
func (t *redisTarget) notAURL(detail string) error {
	why := ""
	if r, ok := strings.CutPrefix(detail, "redis: "); ok && (strings.HasPrefix(r, "unexpected option") ||
		strings.HasPrefix(r, "invalid URL scheme") || strings.HasPrefix(r, "unable to parse addr param")) {
		why = ": " + redactURL(r, t.raw)
	}
	return usagef("%s: not a Redis URL (want redis://, rediss:// or unix://, as go-redis reads them)%s", t.from, why)
}

// applyTLS adds the CA and the client certificate to a rediss:// target.
func (r *redisFlags) applyTLS(t *redisTarget) error {
	if r.ca == "" && r.cert == "" && r.certKey == "" {
		return nil
	}
	if t.tls == nil {
		return usagef("-redis-ca, -redis-cert and -redis-key are for TLS: %s needs a rediss:// URL", t.from)
	}
	if (r.cert == "") != (r.certKey == "") {
		return usagef("-redis-cert and -redis-key go together: the certificate and its private key")
	}
	if r.ca != "" {
		pem, err := os.ReadFile(r.ca)
		if err != nil {
			return usagef("-redis-ca %s: %v", r.ca, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usagef("-redis-ca %s: no PEM certificate in it", r.ca)
		}
		t.tls.RootCAs = pool
	}
	if r.cert != "" {
		pair, err := tls.LoadX509KeyPair(r.cert, r.certKey)
		if err != nil {
			return usagef("-redis-cert %s, -redis-key %s: %v", r.cert, r.certKey, err)
		}
		t.tls.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// noRetry turns go-redis's retries off, so that an unreachable Redis is
// reported at once.
func (t *redisTarget) noRetry() {
	switch {
	case t.node != nil:
		t.node.MaxRetries = -1
	case t.cluster != nil:
		t.cluster.MaxRetries = -1
	case t.failover != nil:
		t.failover.MaxRetries = -1
	}
}

// open makes the client. Over TLS it first shakes hands with the first
// address, once, within the dial timeout, so that a rediss:// URL for a
// plaintext port fails at once with an error that says TLS, not after
// go-redis's retries; every later dial is bounded the same way. A
// redis:// or rediss:// URL of one node that answers as a Cluster node
// gets a cluster client seeded with it.
func (e *env) openRedis(t *redisTarget) (redis.UniversalClient, error) {
	if t.tls != nil {
		d := tlsDialer(t.tls, t.dial)
		first := ""
		switch {
		case t.node != nil:
			t.node.Dialer, first = d, t.node.Addr
		case t.cluster != nil:
			t.cluster.Dialer, first = d, t.cluster.Addrs[0]
		case t.failover != nil:
			t.failover.Dialer, first = d, t.failover.SentinelAddrs[0]
		}
		ctx, cancel := context.WithTimeout(e.ctx, t.dial)
		c, err := d(ctx, "tcp", first)
		cancel()
		if err != nil {
			var he *handshakeError
			if errors.As(err, &he) {
				return nil, fmt.Errorf("%s: %w", t.from, err)
			}
			// Not reachable at all: the pool's client reports it as usual.
		} else {
			c.Close()
		}
	}
	// Every client honours its contexts' deadlines: redispool refuses one
	// that does not (a hung Redis would hold each call for its read
	// timeout).
	switch {
	case t.failover != nil:
		t.failover.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(t.failover), nil
	case t.cluster != nil:
		t.cluster.ContextTimeoutEnabled = true
		return redis.NewClusterClient(t.cluster), nil
	}
	t.node.ContextTimeoutEnabled = true
	if t.node.Network == "unix" || !isClusterNode(e.ctx, t) {
		return redis.NewClient(t.node), nil
	}
	o, err := redis.ParseClusterURL(t.raw)
	if err != nil {
		return nil, fmt.Errorf("%s names a Redis Cluster node, and its URL does not suit a cluster: %s",
			t.from, redactURL(strings.TrimPrefix(err.Error(), "redis: "), t.raw))
	}
	o.MaxRetries, o.Dialer, o.ContextTimeoutEnabled = t.node.MaxRetries, t.node.Dialer, true
	if t.tls != nil {
		o.TLSConfig = t.tls
	}
	return redis.NewClusterClient(o), nil
}

// isClusterNode asks the node (HELLO, which every ACL user may run) if it
// runs in cluster mode. Unreachable, it is taken for a single node, whose
// client then reports the failure as usual.
func isClusterNode(ctx context.Context, t *redisTarget) bool {
	o := *t.node
	o.MaxRetries = -1
	c := redis.NewClient(&o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, t.dial+3*time.Second)
	defer cancel()
	v, err := c.Do(ctx, "HELLO").Result()
	if err != nil {
		return false
	}
	switch r := v.(type) {
	case map[any]any:
		return fmt.Sprint(r["mode"]) == "cluster"
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			if fmt.Sprint(r[i]) == "mode" {
				return fmt.Sprint(r[i+1]) == "cluster"
			}
		}
	}
	return false
}

// handshakeError is a TLS handshake that failed or did not finish in
// time.
type handshakeError struct {
	addr    string
	timeout time.Duration
	err     error
}

func (h *handshakeError) Error() string {
	if errors.Is(h.err, context.DeadlineExceeded) || errors.Is(h.err, os.ErrDeadlineExceeded) {
		return fmt.Sprintf("no TLS handshake with %s within the dial timeout (%v): rediss:// needs the server's TLS port (tls-port); "+
			"a plaintext port never answers TLS", h.addr, h.timeout)
	}
	var ua x509.UnknownAuthorityError
	if errors.As(h.err, &ua) {
		return fmt.Sprintf("TLS handshake with %s failed: %v (give the CA that signed the server's certificate with -redis-ca FILE)", h.addr, h.err)
	}
	return fmt.Sprintf("TLS handshake with %s failed: %v", h.addr, h.err)
}

func (h *handshakeError) Unwrap() error { return h.err }

// tlsDialer dials TCP and shakes hands, both within timeout.
func tlsDialer(cfg *tls.Config, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			if h, _, err := net.SplitHostPort(addr); err == nil {
				c.ServerName = h
			}
		}
		conn := tls.Client(raw, c)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, &handshakeError{addr: addr, timeout: timeout, err: err}
		}
		return conn, nil
	}
}
