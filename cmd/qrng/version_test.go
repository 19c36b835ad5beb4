package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 18, item 17: the version line says what Go recorded of the
// build.
func TestVersionLine(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/qrng-go/qrng", Version: "v0.1.0"},
			Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}},
			"qrng v0.1.0 (go1.26.8 linux/arm64)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261127113249-bc2c78d13f02+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "bc2c78d13f0228ff185684062e19db53b5ee3bdc"},
				{Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}},
			"qrng v0.0.0-20261127113249-bc2c78d13f02+dirty (commit bc2c78d13f02, modified; go1.26.8 linux/amd64)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"qrng (devel) (no version recorded; go1.26.8 " + platform + ")"},
		{nil, "qrng (unknown version: no build information; " + runtime.Version() + " " + platform + ")"},
	} {
		assert.Equal(t, tc.want, versionLine(tc.bi))
	}
}

// Issue 18, item 17: 'qrng version', 'qrng -version' and 'qrng
// --version' print that line for this binary, on stdout, status 0.
func TestVersionCommand(t *testing.T) {
	bi, _ := debug.ReadBuildInfo()
	want := versionLine(bi) + "\n"
	require.True(t, strings.HasPrefix(want, "qrng "))
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		r := runCmd(t, nil, args...)
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, want, r.stdout)
		assert.Empty(t, r.stderr)
	}
	assertUsageError(t, runCmd(t, nil, "version", "now"), `qrng: unexpected argument "now"`)
	r := runCmd(t, nil, "help", "version")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "runtime/debug.ReadBuildInfo")
}
