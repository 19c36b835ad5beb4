//go:build !linux

package redistest

import "syscall"

// childAttrs: outside Linux, the test's cleanups stop the servers.
func childAttrs() *syscall.SysProcAttr { return nil }
