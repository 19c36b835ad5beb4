package redistest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinel knows the primary by.
const MasterName = "qrngmaster"

// Sentinel is a primary, its replica and one sentinel watching them
// (quorum 1), on loopback.
type Sentinel struct {
	Primary, Replica, Sentinel *Server
}

// StartSentinel starts a primary, a replica of it and a sentinel, and
// waits until the sentinel knows the replica (so that a failover can pick
// it) and the replica's link is up.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{Primary: Start(t)}
	s.Replica = Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.Port))
	s.Sentinel = startServer(t, "sentinel", nil, func(port int) []string { return []string{"--sentinel"} },
		func(dir string, port int) string {
			return configFile(dir, "sentinel-"+strconv.Itoa(port)+".conf",
				"port "+strconv.Itoa(port),
				"sentinel monitor "+MasterName+" 127.0.0.1 "+strconv.Itoa(s.Primary.Port)+" 1",
				"sentinel down-after-milliseconds "+MasterName+" 2000",
				"sentinel failover-timeout "+MasterName+" 10000")
		})
	ctx := context.Background()
	replica := s.Replica.Client(t)
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr(), MaxRetries: -1})
	t.Cleanup(func() { sc.Close() })
	deadline := time.Now().Add(Patience)
	for {
		info, _ := replica.Info(ctx, "replication").Result()
		reps, _ := sc.Replicas(ctx, MasterName).Result()
		if len(reps) == 1 && reps[0]["flags"] == "slave" && containsLine(info, "master_link_status:up") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the sentinel did not see the replica: %v; %s", reps, s.Sentinel.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Failover makes the sentinel promote the replica and waits until it is
// the primary the sentinel names.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr(), MaxRetries: -1})
	defer sc.Close()
	if err := sc.Failover(ctx, MasterName).Err(); err != nil {
		t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	replica := s.Replica.Client(t)
	deadline := time.Now().Add(Patience)
	for {
		addr, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		role, _ := replica.Do(ctx, "ROLE").Slice()
		if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(s.Replica.Port) && len(role) > 0 && role[0] == "master" {
			s.Primary, s.Replica = s.Replica, s.Primary
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the failover did not happen: %v %v; %s", addr, err, s.Sentinel.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsLine(s, line string) bool {
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		l := s[:i]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if l == line {
			return true
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return false
}
