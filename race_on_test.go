//go:build race

package qrng

const raceEnabled = true
