package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionCmd is 'qrng version' (and 'qrng -version').
type versionCmd struct{}

func (versionCmd) define(*flag.FlagSet)        {}
func (versionCmd) check(map[string]bool) error { return nil }

func (versionCmd) run(e *env) error {
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(e.stdout, versionLine(bi))
	return nil
}

// versionLine describes the build bi (nil when the binary has no build
// information): the main module's version as Go recorded it, then the
// commit, when known, and the toolchain.
//
//	qrng v0.1.0 (go1.26.8 linux/amd64)
//	qrng v0.0.0-20261127113249-bc2c78d13f02+dirty (commit bc2c78d13f02, modified; go1.26.8 linux/amd64)
//	qrng (devel) (no version recorded; go1.26.8 linux/amd64)
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return fmt.Sprintf("qrng (unknown version: no build information; %s %s/%s)", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var about []string
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		commit := "commit " + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			commit += ", modified"
		}
		about = append(about, commit)
	} else if version == "(devel)" {
		about = append(about, "no version recorded")
	}
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	if goos == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	about = append(about, fmt.Sprintf("%s %s/%s", goVersion, goos, goarch))
	return fmt.Sprintf("qrng %s (%s)", version, strings.Join(about, "; "))
}
