package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache/remote/remotetest"
	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/internal/sandbox/sandboxtest"
)

const exampleFile = "examples/headlines.hcl"

// runFile runs a pipeline of the workspace with --json and returns the
// step results by step.
func (w *workspace) runFile(file string, args ...string) map[string]engine.StepResult {
	w.t.Helper()
	out, stderr, err := w.mlbuild(append([]string{"run", file, "--json"}, args...)...)
	if err != nil {
		w.t.Fatalf("mlbuild run %s: %v\n%s\n%s", file, err, out, stderr)
	}
	res := map[string]engine.StepResult{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Type string
			engine.StepResult
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			w.t.Fatalf("not JSON: %q", line)
		}
		if r.Type == "step" {
			res[r.Step] = r.StepResult
		}
	}
	return res
}

func wantStatuses(t *testing.T, got map[string]engine.StepResult, want map[string]engine.Status) {
	t.Helper()
	for s, st := range want {
		if got[s].Status != st {
			t.Fatalf("%s: %s (%s), want %s", s, got[s].Status, got[s].Error, st)
		}
	}
}

// TestCommandExample builds pipelines/examples/headlines.hcl: a Python
// script run by Debian's python3 on csv_clean's output, whose output split
// consumes. A rerun runs nothing; an edit of the script that leaves its
// output the same reruns the command but not split, and explain names the
// script.
func TestCommandExample(t *testing.T) {
	sandboxtest.Require(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("the example runs the system's python3 (/usr/bin/python3; Debian's package python3)")
	}
	w := newWorkspace(t)
	wantStatuses(t, w.runFile(exampleFile), map[string]engine.Status{
		"csv_clean.onion": engine.StatusRan, "command.headlines": engine.StatusRan, "split.headlines": engine.StatusRan})
	var stats struct {
		Kept, DroppedShort, DroppedQuestions int
	}
	b, err := os.ReadFile(filepath.Join(w.dir, "build", "command.headlines", "stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(bytes.ReplaceAll(b, []byte("_"), nil), &stats); err != nil {
		t.Fatal(err)
	}
	train := countLines(t, filepath.Join(w.dir, "build", "split.headlines", "train.jsonl"))
	val := countLines(t, filepath.Join(w.dir, "build", "split.headlines", "validation.jsonl"))
	if stats.Kept < 100 || stats.DroppedShort == 0 || train+val != stats.Kept {
		t.Fatalf("stats %+v, split %d + %d", stats, train, val)
	}

	wantStatuses(t, w.runFile(exampleFile), map[string]engine.Status{
		"csv_clean.onion": engine.StatusCached, "command.headlines": engine.StatusCached, "split.headlines": engine.StatusCached})

	script := filepath.Join(w.dir, "examples", "scripts", "filter_headlines.py")
	src, _ := os.ReadFile(script)
	if err := os.WriteFile(script, append(src, []byte("# an edit that changes nothing it writes\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := w.mlbuild("explain", exampleFile, "command.headlines")
	if err != nil || !regexpLine(out, `input\.inputs\["filter_headlines\.py"\].*changed`) && !strings.Contains(out, `input.inputs["filter_headlines.py"] changed`) {
		t.Fatalf("explain after editing the script: %v\n%s", err, out)
	}
	wantStatuses(t, w.runFile(exampleFile), map[string]engine.Status{
		"csv_clean.onion": engine.StatusCached, "command.headlines": engine.StatusRan, "split.headlines": engine.StatusCached})
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestCommandSharedThroughRemote: a command step's outputs, built in one
// workspace, reach a second through the remote cache (nginx), which then
// runs nothing.
func TestCommandSharedThroughRemote(t *testing.T) {
	sandboxtest.Require(t)
	n := remotetest.StartNginx(t)
	t.Setenv("MLBUILD_REMOTE", n.URL)
	a := newWorkspace(t)
	ra := a.runFile(exampleFile)
	wantStatuses(t, ra, map[string]engine.Status{"command.headlines": engine.StatusRan, "split.headlines": engine.StatusRan})
	b := newWorkspace(t)
	rb := b.runFile(exampleFile)
	for s, r := range rb {
		if r.Status != engine.StatusCached || r.Source != "remote" {
			t.Fatalf("B: %s %s (source %q)", s, r.Status, r.Source)
		}
		for name, o := range ra[s].Outputs {
			if r.Outputs[name].Digest != o.Digest {
				t.Fatalf("B: %s.%s differs from A's", s, name)
			}
		}
	}
	for _, f := range []string{"headlines.jsonl", "stats.json"} {
		fa, _ := os.ReadFile(filepath.Join(a.dir, "build", "command.headlines", f))
		fb, _ := os.ReadFile(filepath.Join(b.dir, "build", "command.headlines", f))
		if len(fa) == 0 || !bytes.Equal(fa, fb) {
			t.Fatalf("B's %s differs from A's", f)
		}
	}
}

// slowPipeline runs a command that starts a child, says so and waits.
const slowPipeline = `
step "command" "slow" {
  run     = ["sh", "-c", "sleep %[1]s & echo started; wait; echo done > out/o"]
  outputs = { o = "o" }
}
`

// TestKillDuringCommand: mlbuild killed with SIGKILL while a sandboxed
// command (and its child) runs leaves no process behind and nothing
// half-installed; the next run builds the step.
func TestKillDuringCommand(t *testing.T) {
	if os.Getenv("MLBUILD_TEST_COMMAND_CHILD") != "" {
		t.Skip("child process")
	}
	sandboxtest.Require(t)
	dir := t.TempDir()
	token := fmt.Sprintf("86%d.25", os.Getpid())
	writeFile(t, filepath.Join(dir, "slow.hcl"), fmt.Sprintf(slowPipeline, token))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCommandChild$")
	cmd.Env = append(os.Environ(), "MLBUILD_TEST_COMMAND_CHILD="+dir, "MLBUILD_REMOTE=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "build", ".logs", "command.slow", "stdout.log")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), "started") {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the command never started:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pids := sandboxtest.ProcessesWith(t, token, 0); len(pids) == 0 {
		t.Fatal("the command's child is not running: the test would prove nothing")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if pids := sandboxtest.ProcessesWith(t, token, 10*time.Second); len(pids) > 0 {
		t.Fatalf("processes left behind after mlbuild was killed: %v", pids)
	}
	if _, err := os.Stat(filepath.Join(dir, "build", "command.slow")); !os.IsNotExist(err) {
		t.Fatalf("the killed step left build/command.slow: %v", err)
	}
	writeFile(t, filepath.Join(dir, "slow.hcl"), strings.Replace(fmt.Sprintf(slowPipeline, token), "sleep "+token, "sleep 0", 1))
	w := &workspace{t: t, dir: dir}
	wantStatuses(t, w.runFile("slow.hcl"), map[string]engine.Status{"command.slow": engine.StatusRan})
}

// TestCommandChild is TestKillDuringCommand's child: mlbuild run in the
// folder the parent gives.
func TestCommandChild(t *testing.T) {
	dir := os.Getenv("MLBUILD_TEST_COMMAND_CHILD")
	if dir == "" {
		t.Skip("only runs as TestKillDuringCommand's child")
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := dispatch(context.Background(), []string{"run", "slow.hcl"}, &out, &errb)
	t.Fatalf("the run ended (it should have been killed): %v\n%s\n%s", err, out.String(), errb.String())
}
