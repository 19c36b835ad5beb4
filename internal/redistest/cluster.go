package redistest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of primaries only, on loopback.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr())
	}
	return a
}

// Client returns a cluster client seeded with every node, closed when the
// test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// StartCluster starts n (at least 3) nodes with cluster mode on, joins
// them with 'redis-cli --cluster create' (the slots split evenly, no
// replicas) and waits until every node says the cluster is ok. Each node
// gets a free port for clients and another for the cluster bus, set with
// cluster-port (by default the bus is the client port + 10000, which need
// not be free).
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	for range n {
		node := startServer(t, "cluster", nil, func(port int) []string {
			return []string{"--port", strconv.Itoa(port), "--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-" + strconv.Itoa(port) + ".conf",
				"--cluster-port", strconv.Itoa(FreePort(t)), "--cluster-node-timeout", "5000"}
		}, nil)
		c.Nodes = append(c.Nodes, node)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	for _, node := range c.Nodes {
		cl := node.Client(t)
		deadline := time.Now().Add(Patience)
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: the cluster did not come up on %s: %v %s", node.Addr(), err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}
