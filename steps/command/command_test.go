package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/internal/sandbox"
	"github.com/mlbuild/mlbuild/internal/sandbox/sandboxtest"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/command"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

func strs(ss ...string) cty.Value {
	vals := make([]cty.Value, len(ss))
	for i, s := range ss {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

func strMap(kv ...string) cty.Value {
	m := map[string]cty.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = cty.StringVal(kv[i+1])
	}
	return cty.ObjectVal(m)
}

const countPy = `import json, os, sys
words = open(sys.argv[1]).read().split()
print("counted", len(words), "words")
print("a warning", file=sys.stderr)
json.dump({"words": len(words), "home": os.environ["HOME"], "in": os.environ["MLBUILD_IN"], "out": os.environ["MLBUILD_OUT"], "lc_all": os.environ.get("LC_ALL")}, open(sys.argv[2], "w"), sort_keys=True)
`

// TestCountScript runs the example shape: a Python script from
// Debian's python3, given as an input, on a data file; a rerun is a no-op.
func TestCountScript(t *testing.T) {
	sandboxtest.Require(t)
	ws := steptest.New(t)
	ws.Write("data.txt", "one two three\nfour five\n")
	ws.Write("scripts/count.py", countPy)
	step := steptest.Step{
		Named:  map[string]map[string]string{"inputs": {"data": "data.txt", "count.py": "scripts/count.py"}},
		Inputs: map[string][]string{"tools": {"python3"}},
		Config: map[string]cty.Value{
			"run":     strs("python3", "count.py", "in/data", "out/counts.json"),
			"outputs": strMap("counts", "counts.json"),
			"env":     strMap("LC_ALL", "C"),
		},
	}
	res := ws.Run(command.Kind{}, step)
	var got map[string]any
	res.JSON("counts", &got)
	want := map[string]any{"words": 5.0, "home": "/mlbuild/home", "in": "/mlbuild/in", "out": "/mlbuild/out", "lc_all": "C"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts.json = %v, want %v", got, want)
	}
	logs := filepath.Join(ws.Dir, "build", ".logs", "command.test")
	if b, _ := os.ReadFile(filepath.Join(logs, "stdout.log")); string(b) != "counted 5 words\n" {
		t.Fatalf("stdout.log = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(logs, "stderr.log")); string(b) != "a warning\n" {
		t.Fatalf("stderr.log = %q", b)
	}
	again := ws.Run(command.Kind{}, step)
	if again.Status != engine.StatusCached || again.Key != res.Key {
		t.Fatalf("rerun: %s (key %s, was %s)", again.Status, again.Key, res.Key)
	}
}

func TestDeclareOutputs(t *testing.T) {
	outs, err := command.Kind{}.DeclareOutputs(strMap("counts", "counts.json", "model", "model/", "plot", "plots/loss.png"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, fmt.Sprintf("%s=%s dir=%v", o.Name, o.Path, o.Dir))
	}
	if strings.Join(got, " ") != "counts=counts.json dir=false model=model dir=true plot=plots/loss.png dir=false" {
		t.Fatalf("outputs: %v", got)
	}
	for _, bad := range []struct {
		v    cty.Value
		want string
	}{
		{strMap("x", "/etc/passwd"), "plain relative path"},
		{strMap("x", "../up"), "plain relative path"},
		{strMap("x", "a//b"), "plain relative path"},
		{strMap("x", "."), "plain relative path"},
		{strMap("x", ""), "plain relative path"},
		{strMap("1x", "a"), "must start with a letter"},
		{strMap("a", "m/", "b", "m/x.txt"), "overlap"},
		{strMap("a", "same", "b", "same"), "overlap"},
		{cty.StringVal("counts.json"), "must be a map"},
		{cty.ObjectVal(map[string]cty.Value{"n": cty.NumberIntVal(1)}), "must be a path"},
	} {
		if _, err := (command.Kind{}).DeclareOutputs(bad.v); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("outputs %#v: %v, want %q", bad.v, err, bad.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	base := map[string]cty.Value{"run": strs("true")}
	with := func(k string, v cty.Value) map[string]cty.Value {
		m := map[string]cty.Value{"run": base["run"]}
		m[k] = v
		return m
	}
	for _, c := range []struct {
		set  map[string]cty.Value
		attr string
		want string
	}{
		{with("run", cty.ListValEmpty(cty.String)), "run", "must name a program"},
		{with("env", strMap("HOME", "/root")), "env", "set by mlbuild"},
		{with("env", strMap("MLBUILD_OUT", "/x")), "env", "set by mlbuild"},
		{with("env", strMap("1BAD", "x")), "env", "not a variable name"},
		{with("pass_env", strs("PATH")), "pass_env", "cannot be passed through"},
		{with("timeout", cty.StringVal("soon")), "timeout", "not a positive duration"},
		{with("timeout", cty.StringVal("-1s")), "timeout", "not a positive duration"},
		{with("resources", cty.ObjectVal(map[string]cty.Value{"cpu": cty.NumberIntVal(2)})), "resources", `no setting "cpu"`},
		{with("resources", cty.ObjectVal(map[string]cty.Value{"memory": cty.StringVal("lots")})), "resources", "not a size"},
		{with("resources", cty.ObjectVal(map[string]cty.Value{"cpus": cty.NumberIntVal(0)})), "resources", "cpus at least 1"},
	} {
		if got := steptest.FirstError(t, command.Kind{}, c.set, c.attr); !strings.Contains(got, c.want) {
			t.Errorf("%v: error %q, want %q", c.set, got, c.want)
		}
	}
	env := map[string]cty.Value{"run": base["run"], "env": strMap("HF_TOKEN", "x"), "pass_env": strs("HF_TOKEN")}
	if got := steptest.FirstError(t, command.Kind{}, env, "pass_env"); !strings.Contains(got, "also set in env") {
		t.Errorf("pass_env and env: %q", got)
	}
}

func TestResources(t *testing.T) {
	r, err := command.Kind{}.Resources(map[string]cty.Value{"resources": cty.ObjectVal(map[string]cty.Value{
		"cpus": cty.NumberIntVal(2), "memory": cty.StringVal("8GiB"), "gpus": cty.NumberIntVal(1)})})
	if err != nil || r != (steps.Resources{CPUs: 2, MemoryBytes: 8 << 30, GPUs: 1}) {
		t.Fatalf("resources: %+v, %v", r, err)
	}
	for in, want := range map[string]int64{"512MiB": 512 << 20, "8G": 8 << 30, "1.5G": 3 << 29, "4096": 4096, "2TiB": 2 << 40} {
		r, err := command.Kind{}.Resources(map[string]cty.Value{"resources": cty.ObjectVal(map[string]cty.Value{"memory": cty.StringVal(in)})})
		if err != nil || r.MemoryBytes != want {
			t.Errorf("memory %q: %d, %v; want %d", in, r.MemoryBytes, err, want)
		}
	}
}

// TestOutputsAreChecked: a missing declared output, an undeclared file in
// out/, a folder declared as a file and a symbolic link fail the step with
// a message naming them, and nothing is installed.
func TestOutputsAreChecked(t *testing.T) {
	sandboxtest.Require(t)
	for _, c := range []struct {
		script, outputs string
		want            string
	}{
		{"true", "counts.json", `did not write its declared output "o" (out/counts.json)`},
		{"echo 1 > out/counts.json; echo x > out/stray.txt; mkdir out/junk; touch out/junk/a", "counts.json", "undeclared files in out/: out/junk, out/stray.txt"},
		{"mkdir out/m", "m", "is not a regular file; if it is a folder, end its path with /"},
		{"echo 1 > out/m", "m/", "declared a folder"},
		{"ln -s /etc/passwd out/counts.json", "counts.json", "symbolic link"},
	} {
		ws := steptest.New(t)
		_, err := ws.Try(command.Kind{}, steptest.Step{Config: map[string]cty.Value{
			"run": strs("sh", "-c", c.script), "outputs": strMap("o", c.outputs)}})
		var ae *steps.AttrError
		if err == nil || !errors.As(err, &ae) || ae.Attr != "outputs" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.script, err, c.want)
		}
		if !strings.Contains(fmt.Sprint(err), "pipeline.hcl:") {
			t.Errorf("%s: the error does not point at the pipeline: %v", c.script, err)
		}
		if _, err := os.Stat(filepath.Join(ws.Dir, "build", "command.test")); !os.IsNotExist(err) {
			t.Errorf("%s: a failed step installed its outputs", c.script)
		}
	}
	// A folder output with nested files is fine.
	ws := steptest.New(t)
	res := ws.Run(command.Kind{}, steptest.Step{Config: map[string]cty.Value{
		"run": strs("sh", "-c", "mkdir -p out/model/sub && echo w > out/model/sub/w.txt && echo 1 > out/n"), "outputs": strMap("model", "model/", "n", "n")}})
	if got := string(res.Read("model", "sub", "w.txt")); got != "w\n" {
		t.Fatalf("model/sub/w.txt = %q", got)
	}
}

// TestFailingCommandCachesNothing: a non-zero exit fails the step with the
// end of its stderr and the log's path; the next run runs it again.
func TestFailingCommandCachesNothing(t *testing.T) {
	ws := steptest.New(t)
	counter := filepath.Join(ws.Dir, "runs.txt")
	step := steptest.Step{Config: map[string]cty.Value{
		"run":     strs("sh", "-c", `echo run >> "$COUNTER"; echo 1 > out/o; for i in $(seq 1 30); do echo "line $i" >&2; done; exit 3`),
		"outputs": strMap("o", "o"),
		"env":     strMap("COUNTER", counter),
		"sandbox": cty.False,
	}}
	for i := 1; i <= 2; i++ {
		_, err := ws.Try(command.Kind{}, step)
		if err == nil || !strings.Contains(err.Error(), "sh exited with status 3") {
			t.Fatalf("run %d: %v", i, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "line 30") || !strings.Contains(msg, "line 11") || strings.Contains(msg, "line 10\n") {
			t.Fatalf("the error should show stderr's last 20 lines:\n%s", msg)
		}
		if !strings.Contains(msg, filepath.Join("build", ".logs", "command.test", "stderr.log")) {
			t.Fatalf("the error does not name the full log:\n%s", msg)
		}
		if _, err := os.Stat(filepath.Join(ws.Dir, "build", "command.test")); !os.IsNotExist(err) {
			t.Fatal("a failed step installed its outputs")
		}
	}
	if b, _ := os.ReadFile(counter); string(b) != "run\nrun\n" {
		t.Fatalf("the failed command should run again (nothing cached): %q", b)
	}
	b, _ := os.ReadFile(filepath.Join(ws.Dir, "build", ".logs", "command.test", "stderr.log"))
	if strings.Count(string(b), "\n") != 30 {
		t.Fatalf("the log keeps all of stderr: %q", b)
	}
}

// TestSandboxHidesTheMachine: the sandboxed command cannot read a file of
// the workspace (by absolute path, or relative to its folder), the cache
// or the home folder, cannot write to its inputs, and has no network
// unless network = true.
func TestSandboxHidesTheMachine(t *testing.T) {
	sandboxtest.Require(t)
	ws := steptest.New(t)
	secret := ws.Write("secret.txt", "do not read\n")
	ws.Write("data.txt", "data\n")
	home, _ := os.UserHomeDir()
	probes := map[string]string{
		"workspace":   "cat " + secret,
		"relative":    "cat ../secret.txt || cat ../../secret.txt",
		"cache":       "ls " + filepath.Join(ws.Dir, ".mlbuild"),
		"home":        "ls " + home,
		"input-write": "echo x >> in/data",
		"input-add":   "echo x > in/new",
	}
	for name, probe := range probes {
		_, err := ws.Try(command.Kind{}, steptest.Step{Name: name,
			Named:  map[string]map[string]string{"inputs": {"data": "data.txt"}},
			Config: map[string]cty.Value{"run": strs("sh", "-c", probe)}})
		if err == nil {
			t.Errorf("%s: the sandbox allowed %q", name, probe)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ws.Dir, "data.txt")); string(b) != "data\n" {
		t.Fatalf("an input was changed: %q", b)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello\n"))
			_ = c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	connect := fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d && head -1 <&3 > out/reply", port)
	step := func(network bool) steptest.Step {
		return steptest.Step{Name: fmt.Sprintf("net-%v", network), Config: map[string]cty.Value{
			"run": strs("bash", "-c", connect), "outputs": strMap("reply", "reply"), "network": cty.BoolVal(network)}}
	}
	if _, err := ws.Try(command.Kind{}, step(false)); err == nil {
		t.Fatal("a command without network = true reached a server on the host's loopback")
	}
	res := ws.Run(command.Kind{}, step(true))
	if got := string(res.Read("reply")); got != "hello\n" {
		t.Fatalf("with network = true: %q", got)
	}
}

// TestTimeoutKillsEverything: past its timeout the command and its
// children are killed and the step fails saying so.
func TestTimeoutKillsEverything(t *testing.T) {
	for _, sandboxed := range []bool{true, false} {
		t.Run(fmt.Sprintf("sandbox=%v", sandboxed), func(t *testing.T) {
			if sandboxed {
				sandboxtest.Require(t)
			}
			ws := steptest.New(t)
			token := fmt.Sprintf("77%d.%d", os.Getpid(), map[bool]int{true: 1, false: 2}[sandboxed])
			_, err := ws.Try(command.Kind{}, steptest.Step{Config: map[string]cty.Value{
				"run":     strs("sh", "-c", "sleep "+token+" & sleep "+token+"; wait"),
				"timeout": cty.StringVal("500ms"), "sandbox": cty.BoolVal(sandboxed)}})
			if err == nil || !strings.Contains(err.Error(), "ran past its timeout of 500ms") {
				t.Fatalf("timeout: %v", err)
			}
			if pids := sandboxtest.ProcessesWith(t, token, 5*time.Second); len(pids) > 0 {
				t.Fatalf("processes left behind: %v", pids)
			}
		})
	}
}

// TestPassEnvStaysSecret: a passed-through variable reaches the command,
// enters no key and is redacted from the logs.
func TestPassEnvStaysSecret(t *testing.T) {
	ws := steptest.New(t)
	step := steptest.Step{Config: map[string]cty.Value{
		"run":      strs("sh", "-c", `echo "token is $HF_TOKEN"; echo "$HF_TOKEN" | wc -c > out/len`),
		"outputs":  strMap("len", "len"),
		"pass_env": strs("HF_TOKEN"),
		"sandbox":  cty.False,
	}}
	t.Setenv("HF_TOKEN", "hf_secret_value_1")
	first := ws.Run(command.Kind{}, step)
	if got := strings.TrimSpace(string(first.Read("len"))); got != "18" {
		t.Fatalf("the command saw HF_TOKEN of length %q", got)
	}
	log, _ := os.ReadFile(filepath.Join(ws.Dir, "build", ".logs", "command.test", "stdout.log"))
	if strings.Contains(string(log), "hf_secret") || !strings.Contains(string(log), "token is ***") {
		t.Fatalf("stdout.log: %q", log)
	}
	t.Setenv("HF_TOKEN", "hf_another_value_")
	if again := ws.Run(command.Kind{}, step); again.Status != engine.StatusCached || again.Key != first.Key {
		t.Fatalf("a pass_env value entered the key: %s", again.Status)
	}
	if err := os.Unsetenv("HF_TOKEN"); err != nil {
		t.Fatal(err)
	}
	step.Config["env"] = strMap("OTHER", "1") // a new key: it must run
	if _, err := ws.Try(command.Kind{}, step); err == nil || !strings.Contains(err.Error(), "HF_TOKEN is not set") {
		t.Fatalf("unset pass_env: %v", err)
	}
}

// TestToolDigestAndEarlyCutoff: changing a tool named in tools reruns the
// step, and explain names it; an input change that leaves the output the
// same reruns the step but not its dependent.
func TestToolDigestAndEarlyCutoff(t *testing.T) {
	ws := steptest.New(t)
	bin := filepath.Join(ws.Dir, "bin")
	ws.Write("bin/wordcount", "#!/bin/sh\nwc -w < \"$1\" | tr -d ' '\n")
	if err := os.Chmod(filepath.Join(bin, "wordcount"), 0o755); err != nil {
		t.Fatal(err)
	}
	ws.Write("data.txt", "one two three\n")
	src := fmt.Sprintf(`
step "command" "count" {
  run     = ["sh", "-c", "wordcount in/data > out/n"]
  inputs  = { data = "data.txt" }
  outputs = { n = "n" }
  env     = { PATH = "%s:/usr/bin:/bin" }
  tools   = ["wordcount"]
  sandbox = false
}
step "command" "report" {
  run     = ["sh", "-c", "echo words: $(cat in/n) > out/report.txt"]
  inputs  = { n = command.count.n }
  outputs = { report = "report.txt" }
  sandbox = false
}
`, bin)
	statuses := func() map[string]engine.Status {
		t.Helper()
		sum, err := ws.RunPipeline(context.Background(), src, command.Kind{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]engine.Status{}
		for _, r := range sum.Steps {
			m[r.Step] = r.Status
		}
		return m
	}
	want := func(got map[string]engine.Status, count, report engine.Status) {
		t.Helper()
		if got["command.count"] != count || got["command.report"] != report {
			t.Fatalf("got %v, want count %s, report %s", got, count, report)
		}
	}
	want(statuses(), engine.StatusRan, engine.StatusRan)
	want(statuses(), engine.StatusCached, engine.StatusCached)
	ws.Write("data.txt", "uno dos tres\n") // same count
	want(statuses(), engine.StatusRan, engine.StatusCached)
	report, _ := os.ReadFile(filepath.Join(ws.Dir, "build", "command.report", "report.txt"))
	if string(report) != "words: 3\n" {
		t.Fatalf("report: %q", report)
	}

	ws.Write("bin/wordcount", "#!/bin/sh\n# version 2\nwc -w < \"$1\" | tr -d ' '\n")
	p, err := engine.Load(filepath.Join(ws.Dir, "pipeline.hcl"), engine.LoadOptions{Registry: registry(), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(context.Background(), p, engine.Options{Workspace: ws.Dir, CacheDir: filepath.Join(ws.Dir, ".mlbuild", "cache"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := e.Explain("command.count")
	_ = e.Close()
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, c := range ex.Changes {
		changed = append(changed, c.Component)
	}
	if strings.Join(changed, ",") != "input.tools[0]" {
		b, _ := json.MarshalIndent(ex, "", "  ")
		t.Fatalf("explain after a tool upgrade names %v:\n%s", changed, b)
	}
	want(statuses(), engine.StatusRan, engine.StatusCached)
}

func registry() *steps.Registry {
	r := steps.NewRegistry()
	r.Register(command.Kind{})
	return r
}

// TestUnknownToolIsALoadError: a tool not on the command's PATH is
// reported at load time, at the attribute.
func TestUnknownToolIsALoadError(t *testing.T) {
	ws := steptest.New(t)
	_, err := ws.RunPipeline(context.Background(), `
step "command" "x" {
  run   = ["true"]
  tools = ["no-such-tool-anywhere"]
}
`, command.Kind{})
	var de *engine.DiagError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), `"no-such-tool-anywhere" is not found on the command's PATH`) || !strings.Contains(err.Error(), "pipeline.hcl:4:") {
		t.Fatalf("unknown tool: %v", err)
	}
}

// TestOutputsMustNotDependOnSteps: what a step produces is known before
// anything runs.
func TestOutputsMustNotDependOnSteps(t *testing.T) {
	ws := steptest.New(t)
	_, err := ws.RunPipeline(context.Background(), `
step "command" "a" {
  run     = ["true"]
  outputs = { x = "x" }
}
step "command" "b" {
  run     = ["true"]
  outputs = { y = command.a.x }
}
`, command.Kind{})
	if err == nil || !strings.Contains(err.Error(), "what a step produces cannot depend on another step") {
		t.Fatalf("outputs from a step: %v", err)
	}
}

// TestNoSandboxIsRefused: where no sandbox can be made, a command runs only
// with sandbox = false, and the error says why and what to do.
func TestNoSandboxIsRefused(t *testing.T) {
	defer command.SetSandboxCheck(func() error {
		return fmt.Errorf("%w: bubblewrap (bwrap) is not installed", sandbox.ErrUnavailable)
	})()
	ws := steptest.New(t)
	step := steptest.Step{Config: map[string]cty.Value{"run": strs("sh", "-c", "echo 1 > out/o"), "outputs": strMap("o", "o")}}
	_, err := ws.Try(command.Kind{}, step)
	var ae *steps.AttrError
	if !errors.As(err, &ae) || ae.Attr != "sandbox" || !strings.Contains(err.Error(), "bubblewrap (bwrap) is not installed") || !strings.Contains(err.Error(), "set sandbox = false") {
		t.Fatalf("no sandbox: %v", err)
	}
	step.Config["sandbox"] = cty.False
	if res := ws.Run(command.Kind{}, step); string(res.Read("o")) != "1\n" {
		t.Fatal("sandbox = false did not run the command")
	}
}

// TestCancelKillsEverything: cancelling the run (Ctrl-C) kills the command
// and its children, and the step is reported interrupted.
func TestCancelKillsEverything(t *testing.T) {
	sandboxtest.Require(t)
	ws := steptest.New(t)
	token := fmt.Sprintf("88%d.5", os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		log := filepath.Join(ws.Dir, "build", ".logs", "command.test", "stdout.log")
		for {
			if b, _ := os.ReadFile(log); strings.Contains(string(b), "started") {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := ws.Try(command.Kind{}, steptest.Step{Context: ctx, Config: map[string]cty.Value{
		"run": strs("sh", "-c", "sleep "+token+" & echo started; wait")}})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("cancelled run: %v", err)
	}
	if pids := sandboxtest.ProcessesWith(t, token, 5*time.Second); len(pids) > 0 {
		t.Fatalf("processes left behind: %v", pids)
	}
}
