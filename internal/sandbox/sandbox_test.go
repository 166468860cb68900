package sandbox_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/sandbox"
	"github.com/mlbuild/mlbuild/internal/sandbox/sandboxtest"
)

// TestSandboxSeesOnlyWhatItIsGiven runs a shell in a sandbox: its folder
// is at Root and writable, a mounted file is read-only in a sealed folder,
// the system's programs run, and a file beside the folder is not there.
func TestSandboxSeesOnlyWhatItIsGiven(t *testing.T) {
	sandboxtest.Require(t)
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(filepath.Join(work, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(data, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `cat in/d; echo made > made.txt; ls ` + dir + ` 2>/dev/null && echo SAW-HOST; echo x > in/d 2>/dev/null && echo WROTE-INPUT; echo x > in/new 2>/dev/null && echo ADDED-INPUT; hostname`
	bwrap, args, err := sandbox.Spec{
		Dir:      work,
		ReadOnly: []sandbox.Mount{{Source: data, Target: sandbox.Root + "/in/d"}},
		Sealed:   []string{sandbox.Root + "/in"},
	}.Command([]string{"sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bwrap, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	if got := out.String(); got != "hello\nmlbuild\n" {
		t.Fatalf("sandbox printed %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "made.txt")); string(b) != "made\n" {
		t.Fatalf("the folder is not writable at Root: %q", b)
	}
}

func TestCommandArguments(t *testing.T) {
	_, args, err := sandbox.Spec{Dir: "/w", Network: true, Devices: []string{"/dev/nvidia0"}}.Command([]string{"python3", "x.py"})
	if err != nil {
		if strings.Contains(err.Error(), "not installed") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{"--unshare-all", "--share-net", "--die-with-parent", "--dev-bind-try /dev/nvidia0 /dev/nvidia0", "--bind /w " + sandbox.Root, "--chdir " + sandbox.Root + " -- python3 x.py"} {
		if !strings.Contains(line, want) {
			t.Errorf("bwrap arguments lack %q: %s", want, line)
		}
	}
	if slices.Contains(args, "/root") || slices.Contains(args, "/home") {
		t.Errorf("the home folders are mounted: %s", line)
	}
	if _, _, err := (sandbox.Spec{Dir: "relative"}).Command([]string{"true"}); err == nil {
		t.Error("a relative folder was accepted")
	}
	if _, _, err := (sandbox.Spec{Dir: "/w"}).Command(nil); err == nil {
		t.Error("an empty command line was accepted")
	}
}
