// Package version reports mlbuild's own version, recorded in provenance and
// printed by `mlbuild version`.
package version

import (
	"runtime/debug"
	"sync"
)

// Base is the release this build descends from.
const Base = "0.1.0"

var (
	once sync.Once
	full string
)

// String returns Base plus the VCS revision the binary was built from
// (with "+dirty" for uncommitted changes) when the build recorded it.
func String() string {
	once.Do(func() {
		full = Base
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			full += "-" + rev + dirty
		}
	})
	return full
}
