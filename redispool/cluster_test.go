package redispool

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/redistest"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// walkedScripts are the scripts the cluster walk below must see run, by
// the name of their variable. A script added to the package and not
// here fails TestEveryScriptKeepsItsKeysInOneSlot until it is (and until
// the walk runs it).
var walkedScripts = map[string]*redis.Script{
	"reserveScript":   reserveScript,
	"settleScript":    settleScript,
	"refundScript":    refundScript,
	"raiseScript":     raiseScript,
	"readMeterScript": readMeterScript,
	"pushScript":      pushScript,
	"heartbeatScript": heartbeatScript,
	"leaveScript":     leaveScript,
	"genScript":       genScript,
}

// packageScripts returns the names of the package-level variables that
// hold a redis.NewScript, read from the package's source (its files
// other than tests).
func packageScripts(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	require.NoError(t, err)
	var names []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, v := range vs.Values {
					if call, ok := v.(*ast.CallExpr); ok {
						if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewScript" {
							names = append(names, vs.Names[i].Name)
						}
					}
				}
				return true
			})
		}
	}
	sort.Strings(names)
	return names
}

// scriptCall is one EVAL or EVALSHA a client sent.
type scriptCall struct {
	sha  string
	keys []string
}

// scriptRecorder is a go-redis hook that records every script call.
type scriptRecorder struct {
	mu    sync.Mutex
	calls []scriptCall
}

func (r *scriptRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *scriptRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (r *scriptRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if name := strings.ToLower(cmd.Name()); (name == "eval" || name == "evalsha") && len(args) >= 3 {
			sha := fmt.Sprint(args[1])
			if name == "eval" {
				h := sha1.Sum([]byte(sha))
				sha = hex.EncodeToString(h[:])
			}
			n, _ := strconv.Atoi(fmt.Sprint(args[2]))
			c := scriptCall{sha: sha}
			for _, k := range args[3 : 3+n] {
				c.keys = append(c.keys, fmt.Sprint(k))
			}
			r.mu.Lock()
			r.calls = append(r.calls, c)
			r.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (r *scriptRecorder) seen() []scriptCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]scriptCall(nil), r.calls...)
}

// A pool on a real 3-node Redis Cluster, with the default prefix.
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	ctx := context.Background()

	// Every script the package has runs in the walk (a filler's start,
	// top-up, refund and stop, a consumer's pops, a status and a budget
	// read), and every call's KEYS hash to one slot, as CLUSTER KEYSLOT
	// computes it: a later script, or a key added to one, that leaves the
	// slot fails here. With the old default prefix ("qrng") the
	// heartbeat's keys spread over several slots.
	t.Run("every script keeps its keys in one slot", func(t *testing.T) {
		names := packageScripts(t)
		var want []string
		for name := range walkedScripts {
			want = append(want, name)
		}
		sort.Strings(want)
		require.Equal(t, want, names, "the package's scripts and the walk's list")

		rec := &scriptRecorder{}
		rdb := cl.Client(t)
		rdb.AddHook(rec)
		srv := newEmulator(t)
		cfg := testFillerConfig(srv, rdb, "")
		f := newTestFiller(t, cfg)
		srv.Inject(qrngtest.Fault{Path: qrngtest.PathRandomNumbers, Status: 503}) // one request without an answer: refunded
		stop := runFiller(t, f)
		c := newTestConsumer(t, rdb, "")
		for range 2 * testBatchChunks {
			_, err := c.Fetch(ctx, make([]byte, testChunk))
			require.NoError(t, err)
		}
		_, err := f.Budget(ctx)
		require.NoError(t, err)
		_, err = ReadStatus(ctx, rdb, "")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return f.Stats().RefundedBits > 0 }, patience, 5*time.Millisecond)
		require.NoError(t, stop())

		node := cl.Nodes[0].Client(t)
		seen := map[string]bool{}
		for _, call := range rec.seen() {
			seen[call.sha] = true
			slots := map[int64]bool{}
			for _, k := range call.keys {
				require.True(t, strings.HasPrefix(k, DefaultPrefix+":"), "key %s outside the prefix", k)
				slot, err := node.ClusterKeySlot(ctx, k).Result()
				require.NoError(t, err)
				slots[slot] = true
			}
			assert.Len(t, slots, 1, "script %s: keys %v hash to slots %v", call.sha, call.keys, slots)
		}
		for name, s := range walkedScripts {
			assert.True(t, seen[s.Hash()], "the walk never ran %s", name)
		}
	})

	// Fillers and consumers on their own cluster clients share the pool
	// as on one node: each chunk reaches one consumer, every chunk is one
	// the service sent, and the meter counts what was served. An old
	// default pool's settings on the cluster do not divert them (the old
	// keys cannot work there).
	t.Run("fillers and consumers share one pool", func(t *testing.T) {
		admin := cl.Client(t)
		require.NoError(t, admin.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.FlushAll(ctx).Err()
		}))
		require.NoError(t, admin.HSet(ctx, OldDefaultPrefix+":meta", "chunk_size", testChunk).Err())
		srv := newEmulator(t)
		var fillers []*Filler
		for _, id := range []string{"a", "b"} {
			cfg := testFillerConfig(srv, cl.Client(t), "")
			cfg.ID = id
			f := newTestFiller(t, cfg)
			fillers = append(fillers, f)
			runFiller(t, f)
		}
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			c := newTestConsumer(t, cl.Client(t), "")
			wg.Go(func() {
				for range 3 * testBatchChunks {
					p := make([]byte, testChunk)
					n, err := c.Fetch(ctx, p)
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					got[string(p[:n])]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		idx := chunkIndex(t, srv, testBits, testChunk)
		require.Len(t, got, 12*testBatchChunks)
		for chunk, n := range got {
			assert.Equal(t, 1, n, "a chunk served twice")
			_, ok := idx[chunk]
			assert.True(t, ok, "a chunk the service never sent")
		}
		// Once neither fills and the pool is at or above the low mark (so
		// that no top-up will start), the meter holds what the service
		// served: no reservation is in flight. (Not the high mark: a
		// top-up that ends while consumers still pop leaves the pool
		// anywhere above the low one.)
		if !assert.Eventually(t, func() bool {
			return idle(fillers[0]) && idle(fillers[1]) && admin.LLen(ctx, DefaultPrefix+":pool").Val() >= fillers[0].low
		}, patience, 5*time.Millisecond) {
			for _, f := range fillers {
				f.mu.Lock()
				t.Logf("filler %s: filling %v inflight %d block %+v stats %+v", f.id, f.filling, f.inflight, f.block, f.stats)
				f.mu.Unlock()
			}
			t.Fatalf("pool length %d", admin.LLen(ctx, DefaultPrefix+":pool").Val())
		}
		st, err := ReadStatus(ctx, admin, "")
		require.NoError(t, err)
		assert.Equal(t, DefaultPrefix, st.Prefix)
		assert.Equal(t, srv.Counters().BitsServed, st.QuotaUsed)
		assert.Len(t, st.Fillers, 2)
		assert.Equal(t, st.Chunks, admin.LLen(ctx, DefaultPrefix+":pool").Val())
		assert.Zero(t, admin.Exists(ctx, OldDefaultPrefix+":pool").Val(), "nothing under the old prefix")
	})
}
