package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/engine/lockfile"
)

// cli runs dispatch in the working directory and returns stdout, stderr
// and the exit status main would give.
func cli(args ...string) (string, string, int, error) {
	var out, errb bytes.Buffer
	err := dispatch(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), exitCode(err), err
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A pipeline file that is missing or misspelt, or a folder without a
// pipeline file, is named in the error, with the file that was probably
// meant.
func TestPipelineFileErrors(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	const steps = "step \"csv_clean\" \"onion\" {\n}\n"
	writeFile(t, filepath.Join(dir, "pipelines/twainbot.hcl"), steps)
	writeFile(t, filepath.Join(dir, "pipelines/ci.vars.hcl"), "seed = 1\n") // a -var-file, not a pipeline
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "pipelines/twainbot.hlc"}, `no pipeline file pipelines/twainbot.hlc: it does not exist. Did you mean "pipelines/twainbot.hcl"?`},
		{[]string{"run", "pipelines/twainbot"}, `no pipeline file pipelines/twainbot: it does not exist. Did you mean "pipelines/twainbot.hcl"?`},
		{[]string{"plan", "pipeline/twainbot.hcl"}, `no pipeline file pipeline/twainbot.hcl: it does not exist. Did you mean "pipelines/twainbot.hcl"?`},
		{[]string{"run", "nothing/like/it.hcl"}, `no pipeline file nothing/like/it.hcl: it does not exist.`},
		{[]string{"show", "pipelines/twainbot.hlc", "csv_clean.onion"}, `no pipeline file pipelines/twainbot.hlc: it does not exist. Did you mean "pipelines/twainbot.hcl"?`},
		{[]string{"graph", "empty"}, `empty is a folder, and holds no pipeline: a folder is a pipeline of its .hcl files (but *.vars.hcl variable files); it has none`},
	} {
		_, _, code, err := cli(tc.args...)
		if code != 1 || err == nil || err.Error() != tc.want {
			t.Errorf("mlbuild %s: exit %d, %v\nwant: %s", strings.Join(tc.args, " "), code, err, tc.want)
		}
	}

	// A command that takes steps reads a first argument that is no file
	// as a step, with the only .hcl file in the working directory.
	t.Chdir(filepath.Join(dir, "pipelines"))
	file, rest, err := pipelineFile([]string{"csv_clean.onion"}, true)
	if err != nil || file != "twainbot.hcl" || len(rest) != 1 || rest[0] != "csv_clean.onion" {
		t.Errorf("show csv_clean.onion: %q %q %v", file, rest, err)
	}
	// ... unless it is a near miss of that file's name.
	if _, _, err := pipelineFile([]string{"twainbot.hlc", "csv_clean.onion"}, true); err == nil || !strings.Contains(err.Error(), `Did you mean "twainbot.hcl"?`) {
		t.Errorf("show twainbot.hlc csv_clean.onion: %v", err)
	}
}

// A misspelt command gets a suggestion, not the whole usage; every
// command's --help prints its usage to stdout and exits 0.
func TestCommandSuggestionsAndHelp(t *testing.T) {
	t.Chdir(t.TempDir())
	_, stderr, code, _ := cli("rn", "pipelines/twainbot.hcl")
	if code != 2 || !strings.Contains(stderr, `unknown command "rn". Did you mean "run"?`) || strings.Contains(stderr, "Usage:") {
		t.Errorf("rn: exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code, _ = cli("frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) || !strings.Contains(stderr, "Usage:") {
		t.Errorf("frobnicate: exit %d, stderr:\n%s", code, stderr)
	}
	if _, _, code, err := cli("cache", "stat"); code != 1 || err == nil || !strings.Contains(err.Error(), `unknown cache subcommand "stat". Did you mean "stats"?`) {
		t.Errorf("cache stat: exit %d, %v", code, err)
	}

	for _, cmd := range [][]string{{"run"}, {"plan"}, {"explain"}, {"graph"}, {"show"}, {"verify"}, {"tokenize"}, {"generate"}, {"chat"}, {"cache"}, {"cache", "gc"}, {"cache", "push"}} {
		for _, h := range []string{"--help", "-h"} {
			stdout, stderr, code, _ := cli(append(cmd, h)...)
			if code != 0 || !strings.Contains(stdout, "Usage") || !strings.Contains(stdout, "mlbuild "+cmd[0]) || stderr != "" {
				t.Errorf("mlbuild %s %s: exit %d, stdout:\n%s\nstderr:\n%s", strings.Join(cmd, " "), h, code, stdout, stderr)
			}
		}
	}
	stdout, _, code, _ := cli("help", "run")
	if code != 0 || !strings.Contains(stdout, "mlbuild run [FILE]") || !strings.Contains(stdout, "-j int") {
		t.Errorf("help run: exit %d\n%s", code, stdout)
	}
	// A bad flag still exits 2, with the problem and the usage on stderr.
	stdout, stderr, code, _ = cli("plan", "--no-such-flag")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "flag provided but not defined: -no-such-flag") || !strings.Contains(stderr, "mlbuild plan [FILE]") {
		t.Errorf("plan --no-such-flag: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

// -j must be at least 1.
func TestRunJobsFlag(t *testing.T) {
	w := newWorkspace(t)
	for _, j := range []string{"0", "-3"} {
		_, stderr, err := w.mlbuild("run", "twainbot.hcl", "-j", j)
		if exitCode(err) != 2 || !strings.Contains(stderr, "mlbuild run: -j "+j+": N must be at least 1") {
			t.Errorf("-j %s: %v, stderr:\n%s", j, err, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(w.dir, ".mlbuild")); err == nil {
		t.Error("a refused -j opened the cache")
	}
}

// A lockfile that cannot be written is named as the lockfile.
func TestLockfileWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", lockfile.Name)
	f, err := lockfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &pipelineLock{path: path, pipeline: "p.hcl", file: f}
	sum := &engine.Summary{Steps: []*engine.StepResult{{Step: "a.b", Status: engine.StatusRan, Key: strings.Repeat("0", 64),
		Outputs: map[string]engine.OutputInfo{"out": {Digest: strings.Repeat("1", 64), Size: 1}}}}}
	err = l.update(sum, false)
	if err == nil || !strings.HasPrefix(err.Error(), "cannot write the lockfile "+path+": no such file or directory") {
		t.Fatalf("update: %v", err)
	}
}
