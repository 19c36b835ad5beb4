package main

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests that need a real process (signals, exit statuses, terminals)
// run this test binary again with runMainEnv set: it then runs the
// command's main instead of the tests.
const runMainEnv = "QRNG_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// proc is a qrng command running in a child process.
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process has ended
	code   int           // exit status, once done
}

// startQrng runs qrng with args in a child process whose environment is
// exactly envv (nothing is inherited, so no real token can leak in). A nil
// stdout or stderr is captured in a buffer.
func startQrng(t *testing.T, envv map[string]string, stdout, stderr *os.File, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return startQrngAs(t, exe, nil, envv, stdout, stderr, args...)
}

// startQrngAs is startQrng running the test binary exe, with attrs (such
// as another user's credentials) when not nil.
func startQrngAs(t *testing.T, exe string, attrs *syscall.SysProcAttr, envv map[string]string, stdout, stderr *os.File, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(exe, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.SysProcAttr = attrs
	p.cmd.Env = []string{runMainEnv + "=1"}
	for k, v := range envv {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = io.Writer(p.stdout), io.Writer(p.stderr)
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if stderr != nil {
		p.cmd.Stderr = stderr
	}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits generously for the process to end and returns its status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("qrng did not end; stderr so far: %q", p.stderr.String())
	}
	return p.code
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// stderrLines splits captured stderr into lines, dropping the final newline.
func stderrLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
