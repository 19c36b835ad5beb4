package main

import (
	"os"
	"syscall"
	"unsafe"
)

// answersAsTerminal reports whether f takes the terminal ioctl TCGETS, as
// isatty(3) asks. It goes through SyscallConn, so f's mode is not changed.
func answersAsTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		var t syscall.Termios
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	}); err != nil {
		return false
	}
	return errno == 0
}
