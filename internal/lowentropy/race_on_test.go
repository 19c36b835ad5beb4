//go:build race

package lowentropy

const raceEnabled = true
