// Package redistest starts real redis-server processes for tests: a single
// node on a loopback TCP port, a Redis Cluster, a primary with a replica
// and a sentinel, and a server on its TLS port with certificates made for
// the test. Ports are picked free at run time (other test binaries run at
// the same moment), each server runs with persistence off in a folder of
// its own, and every process is stopped when the test ends, failed or not
// (and, on Linux, killed with the test binary if it dies first).
//
// Without redis-server the tests are skipped, unless QRNG_REQUIRE_REDIS=1
// (as CI sets it), which makes them fail instead. No fake stands in for
// Redis.
package redistest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Patience bounds every wait for a server to come up: a guard against a
// hang on a loaded machine, not a claim about speed.
const Patience = 60 * time.Second

// startTries is how many times a server is started on new ports when the
// ports picked were taken in the meantime by another process.
const startTries = 8

// Binary returns the path of redis-server. Without one it skips the test,
// or fails it when QRNG_REQUIRE_REDIS=1.
func Binary(t testing.TB) string {
	t.Helper()
	return lookPath(t, "redis-server")
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("QRNG_REQUIRE_REDIS") == "1" {
			t.Fatalf("%s not found, and QRNG_REQUIRE_REDIS=1 forbids skipping (apt-get install redis-server redis-tools)", name)
		}
		t.Skipf("%s not found (apt-get install redis-server redis-tools; QRNG_REQUIRE_REDIS=1 turns this skip into a failure)", name)
	}
	return bin
}

// Server is one redis-server process listening on 127.0.0.1.
type Server struct {
	Port int    // the TCP port (the TLS port for a TLS server)
	Dir  string // its working folder
	tls  *tls.Config

	t    testing.TB
	bin  string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

// Addr is the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Options are a client's options for the server (TLS included for a TLS
// server), without retries, so that a test expecting a dead server does
// not wait for them.
func (s *Server) Options() *redis.Options {
	return &redis.Options{Addr: s.Addr(), TLSConfig: s.tls.Clone(), MaxRetries: -1, ContextTimeoutEnabled: true}
}

// Client returns a new client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(s.Options())
	t.Cleanup(func() { c.Close() })
	return c
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.out.String() }

// Stop kills the server (SIGKILL: nothing is persisted). Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Start starts a redis-server on a free loopback port, persistence off,
// with extra arguments (such as "--maxmemory", "8mb"), and stops it when
// the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startServer(t, "node", nil, func(port int) []string { return append([]string{"--port", strconv.Itoa(port)}, extra...) }, nil)
}

// startServer starts a server whose arguments args builds from a port,
// picking new ports until one is free (at most startTries times); its
// clients need tlsCfg (nil: plaintext). conf, when not nil, writes a
// configuration file into the server's folder first and returns its name,
// which is then the first argument.
func startServer(t testing.TB, name string, tlsCfg *tls.Config, args func(port int) []string, conf func(dir string, port int) string) *Server {
	t.Helper()
	bin := Binary(t)
	dir, err := os.MkdirTemp("", "qrng-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var last string
	for range startTries {
		port := FreePort(t)
		a := []string{}
		if conf != nil {
			a = append(a, conf(dir, port))
		}
		a = append(a, args(port)...)
		a = append(a, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "notice")
		s := &Server{Port: port, Dir: dir, t: t, bin: bin, args: a, out: &lockedBuffer{}, tls: tlsCfg}
		if err := s.run(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		if s.waitUp() {
			return s
		}
		s.Stop()
		last = s.Log()
		if !strings.Contains(last, "in use") {
			break // not a port taken meanwhile: a real failure
		}
	}
	t.Fatalf("redistest: redis-server (%s) did not start: %s", name, last)
	return nil
}

// run starts the process.
func (s *Server) run() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// waitUp waits until the server answers PING, or has exited.
func (s *Server) waitUp() bool {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.tls.Clone(), MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		if err := c.Ping(context.Background()).Err(); err == nil || strings.Contains(err.Error(), "NOAUTH") {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; startServer
// tries again on new ports when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// configFile writes lines into dir/name and returns its path.
func configFile(dir, name string, lines ...string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		panic(err)
	}
	return p
}
