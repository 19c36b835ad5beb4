//go:build !linux

package qrng

import "time"

// threadCPU is the CPU time the calling thread has used: not measured on
// this system.
func threadCPU() (time.Duration, bool) { return 0, false }
