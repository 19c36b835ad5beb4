package redistest

import "syscall"

// childAttrs makes a server die with the test binary, even when the
// binary is killed before its cleanups run (a timeout, a crash).
func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
