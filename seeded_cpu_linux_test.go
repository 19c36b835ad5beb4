package qrng

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling thread has used (getrusage with
// RUSAGE_THREAD), or false where it cannot be had.
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
