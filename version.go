package main

import (
	"fmt"
	"runtime/debug"
	"slices"
)

// version describes this binary from its build information: the module's
// version (a tag when installed with go install, "(devel)" when built from
// a checkout), the commit it was built from, and the Go release.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "gatehouse (no build information)"
	}
	v := "gatehouse " + info.Main.Version
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += fmt.Sprintf(", commit %.12s", rev)
		if t := settings["vcs.time"]; t != "" {
			v += " of " + t
		}
		if settings["vcs.modified"] == "true" {
			v += " (modified)"
		}
	}
	return v + ", " + info.GoVersion
}

// wantsVersion reports whether the command line asks for -version.
func wantsVersion(args []string) bool {
	return slices.Contains(args, "-version") || slices.Contains(args, "--version")
}
