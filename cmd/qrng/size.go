package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units a size may carry, as coreutils reads them: a
// bare letter or an "iB" word is a power of 1024, a "B" word a power of
// 1000. Keys are lower case: units are read in any case.
var sizeUnits = map[string]struct {
	mult   int64
	binary bool // a power of 1024
}{
	"": {1, false}, "b": {1, false},
	"k": {1 << 10, true}, "kib": {1 << 10, true}, "kb": {1e3, false},
	"m": {1 << 20, true}, "mib": {1 << 20, true}, "mb": {1e6, false},
	"g": {1 << 30, true}, "gib": {1 << 30, true}, "gb": {1e9, false},
	"t": {1 << 40, true}, "tib": {1 << 40, true}, "tb": {1e12, false},
}

var errSize = errors.New("want a whole number of bytes with an optional unit, such as 32, 4K, 4KiB or 10MB")

// parseSize reads a byte count such as 32, 4K, 4KiB or 10MB, and reports
// whether its unit was binary (K, KiB: powers of 1024) rather than decimal
// (KB, or no unit).
func parseSize(s string) (n int64, binary bool, err error) {
	digits := strings.TrimSpace(s)
	i := 0
	for i < len(digits) && digits[i] >= '0' && digits[i] <= '9' {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(digits[i:]))]
	if i == 0 || !ok {
		return 0, false, errSize
	}
	n, err = strconv.ParseInt(digits[:i], 10, 64)
	if err != nil || n > math.MaxInt64/unit.mult {
		return 0, false, errors.New("too large")
	}
	return n * unit.mult, unit.binary, nil
}
