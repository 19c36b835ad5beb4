package redispool

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The tests run against a real redis-server that they start themselves,
// on a unix socket, with persistence off. Without redis-server they skip,
// unless QRNG_REQUIRE_REDIS=1 (as in CI), which makes them fail.

// redisServer is one redis-server process.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	sock string
	cmd  *exec.Cmd
	out  bytes.Buffer
	args []string // more arguments for redis-server
}

func redisBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("QRNG_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found, and QRNG_REQUIRE_REDIS=1 forbids skipping (apt-get install redis-server)")
		}
		t.Skip("redis-server not found (apt-get install redis-server; QRNG_REQUIRE_REDIS=1 turns this skip into a failure)")
	}
	return bin
}

// startRedis starts a redis-server for the test and stops it at the end;
// args are more arguments for redis-server.
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	bin := redisBinary(t)
	dir, err := os.MkdirTemp("", "rp") // short: a socket path has ~100 bytes at most
	require.NoError(t, err)
	s := &redisServer{t: t, bin: bin, dir: dir, sock: filepath.Join(dir, "redis.sock"), args: args}
	t.Cleanup(func() {
		s.stop()
		os.RemoveAll(dir)
	})
	s.start()
	return s
}

// start runs the server on s.sock and waits until it answers.
func (s *redisServer) start() {
	s.t.Helper()
	s.out.Reset()
	args := append([]string{"--port", "0", "--unixsocket", s.sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning"}, s.args...) // later ones win
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	require.NoError(s.t, cmd.Start())
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("redis-server did not answer on %s: %s", s.sock, s.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL: nothing is persisted anyway).
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(s.sock)
}

// client returns a new client, with its own connections, closed at the end.
func (s *redisServer) client(t testing.TB, user, password string) *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock, Username: user, Password: password, ContextTimeoutEnabled: true,
		PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	return c
}

// clientNoRetry is client without go-redis's retries, for tests that
// expect a dead server and need not wait for the retries' backoff.
func (s *redisServer) clientNoRetry(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// quotaUsed reads this month's shared counter.
func quotaUsed(t testing.TB, rdb *redis.Client, prefix string) int64 {
	t.Helper()
	n, err := rdb.Get(context.Background(), newKeys(prefix).quota(monthOf(time.Now()))).Int64()
	if err == redis.Nil {
		return 0
	}
	require.NoError(t, err)
	return n
}
