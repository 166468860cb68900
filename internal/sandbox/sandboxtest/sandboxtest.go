// Package sandboxtest holds the test helpers of sandboxed commands: skip
// where no sandbox can be made (fail in CI, which installs bubblewrap), and
// find processes left behind.
package sandboxtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/internal/sandbox"
)

// Require skips the test where this machine cannot make a sandbox, and
// fails it in CI (CI set), whose set-up installs bubblewrap.
func Require(t testing.TB) {
	t.Helper()
	if err := sandbox.Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must be able to sandbox commands (.ci/run installs bubblewrap): %v", err)
		}
		t.Skipf("no sandbox here (%v); install Debian's bubblewrap to run this test", err)
	}
}

// ProcessesWith lists the processes whose command line holds token ("PID
// ARGV"), waiting up to wait for them to go (the kernel tears a killed
// process tree down asynchronously).
func ProcessesWith(t testing.TB, token string, wait time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		pids := scan(t, token)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scan(t testing.TB, token string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc to look for processes in")
	}
	self := []byte(strings.Join(os.Args, "\x00"))
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), token) || string(b) == string(self) {
			continue
		}
		// A zombie has exited; only its parent's wait is missing.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pids = append(pids, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return pids
}
