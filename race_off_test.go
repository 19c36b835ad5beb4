//go:build !race

package qrng

const raceEnabled = false
