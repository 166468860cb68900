package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/cache/remote/remotetest"
	"github.com/mlbuild/mlbuild/engine"
)

// backend is a remote cache server for the teammate scenario.
type backend struct {
	url string
	// corrupt overwrites an object ("cas/<digest>") on the server.
	corrupt func(t *testing.T, object string, data []byte)
	// stop makes the server vanish (nil for a directory, which can't).
	stop func()
}

// stepEvents runs the pipeline with --json in the workspace and returns the
// step events by step and the summary line.
func (w *workspace) stepEvents(args ...string) (map[string]engine.StepResult, map[string]any) {
	w.t.Helper()
	out, stderr, err := w.mlbuild(append([]string{"run", "twainbot.hcl", "--json"}, args...)...)
	if err != nil {
		w.t.Fatalf("mlbuild run: %v\n%s\n%s", err, out, stderr)
	}
	steps := map[string]engine.StepResult{}
	var summary map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var head struct{ Type string }
		if err := json.Unmarshal([]byte(line), &head); err != nil {
			w.t.Fatalf("not JSON: %q", line)
		}
		switch head.Type {
		case "step":
			var r engine.StepResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				w.t.Fatal(err)
			}
			steps[r.Step] = r
		case "summary":
			_ = json.Unmarshal([]byte(line), &summary)
		}
	}
	return steps, summary
}

func runTeammates(t *testing.T, b backend) {
	t.Setenv("MLBUILD_REMOTE", b.url)
	all := append([]string{csvStep, bookStep, synthStep, splitStep, toolsStep}, trainingSteps...)

	// Teammate A builds with an empty remote: everything runs and is uploaded.
	a := newWorkspace(t)
	stepsA, sumA := a.stepEvents()
	for _, s := range all {
		if stepsA[s].Status != engine.StatusRan {
			t.Fatalf("A: %s %s", s, stepsA[s].Status)
		}
	}
	if rem, _ := sumA["remote"].(map[string]any); rem == nil || rem["uploaded"].(float64) < 8 {
		t.Fatalf("A uploaded nothing: %v", sumA)
	}
	out, _, err := a.mlbuild("cache", "push", "twainbot.hcl")
	if err != nil || !strings.Contains(out, "push: 0 blobs uploaded") {
		t.Fatalf("explicit push after the run: %v\n%s", err, out)
	}

	// Teammate B, empty local cache: no step runs, every artifact comes
	// from the remote, byte-identical.
	b1 := newWorkspace(t)
	stepsB, _ := b1.stepEvents()
	for _, s := range all {
		if r := stepsB[s]; r.Status != engine.StatusCached || r.Source != "remote" {
			t.Fatalf("B: %s %s (source %q)", s, r.Status, r.Source)
		}
		for name, o := range stepsA[s].Outputs {
			if stepsB[s].Outputs[name].Digest != o.Digest {
				t.Fatalf("B: %s.%s differs from A's", s, name)
			}
		}
	}
	trainA, _ := os.ReadFile(filepath.Join(a.dir, "build/split.tools/train.jsonl"))
	trainB, _ := os.ReadFile(filepath.Join(b1.dir, "build/split.tools/train.jsonl"))
	if len(trainA) == 0 || !bytes.Equal(trainA, trainB) {
		t.Fatal("B's train.jsonl differs from A's")
	}

	// cache pull fills an empty local cache without running anything.
	p := newWorkspace(t)
	out, _, err = p.mlbuild("cache", "pull", "twainbot.hcl")
	if err != nil || strings.Contains(out, "not on the remote") || !strings.Contains(out, "downloaded") {
		t.Fatalf("cache pull: %v\n%s", err, out)
	}
	plan, _, _ := p.mlbuild("plan", "twainbot.hcl")
	if strings.Count(plan, "restore ") != len(all) {
		t.Fatalf("plan after pull:\n%s", plan)
	}

	// A corrupted object on the server is detected, the step rebuilt, and
	// the server's copy repaired.
	digest := stepsA[splitStep].Outputs["train"].Digest
	b.corrupt(t, "cas/"+digest, []byte("this is not the training set"))
	c := newWorkspace(t)
	stepsC, _ := c.stepEvents()
	if stepsC[splitStep].Status != engine.StatusRan {
		t.Fatalf("C: a corrupt remote object was used: %+v", stepsC[splitStep])
	}
	if stepsC[csvStep].Source != "remote" {
		t.Fatalf("C: the intact steps should come from the remote: %+v", stepsC[csvStep])
	}
	if stepsC[splitStep].Outputs["train"].Digest != digest {
		t.Fatal("C rebuilt a different training set")
	}
	d := newWorkspace(t)
	stepsD, _ := d.stepEvents()
	if stepsD[splitStep].Status != engine.StatusCached || stepsD[splitStep].Source != "remote" {
		t.Fatalf("D: the server's copy was not repaired: %+v", stepsD[splitStep])
	}

	if b.stop == nil {
		return
	}
	// The server stops in the middle of a run: one warning, and the run
	// finishes with the local cache only.
	e := newWorkspace(t)
	e.editCSV(func(i int, row []string) {
		if i == 3 {
			row[4] = "Server Outage Fails To Stop Determined Local Build"
		}
	})
	var warnings []string
	stopped := false
	var stepsE []*engine.StepResult
	func() {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chdir(e.dir); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Chdir(wd); err != nil {
				t.Fatal(err)
			}
		}()
		pl, err := engine.Load("twainbot.hcl", engine.LoadOptions{VarFiles: []string{"ci.vars.hcl"}})
		if err != nil {
			t.Fatal(err)
		}
		en, err := engine.Open(context.Background(), pl, engine.Options{Jobs: 1, OnEvent: func(ev engine.Event) {
			if ev.Type == engine.EventStep && !stopped {
				stopped = true
				b.stop()
			}
			if ev.Type == engine.EventWarning {
				warnings = append(warnings, ev.Message)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := en.Close(); err != nil {
				t.Error(err)
			}
		}()
		closeRemote, err := useRemote(context.Background(), pl, en)
		if err != nil {
			t.Fatal(err)
		}
		defer closeRemote()
		sum, err := en.Run(context.Background())
		if err != nil {
			t.Fatalf("a run with the server gone failed: %v", err)
		}
		stepsE = sum.Steps
	}()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "unreachable; continuing with the local cache only") {
		t.Fatalf("warnings: %q", warnings)
	}
	for _, r := range stepsE {
		if r.Status == engine.StatusFailed || r.Status == engine.StatusSkipped {
			t.Fatalf("E: %s %s", r.Step, r.Status)
		}
	}
}

func TestTeammatesNginx(t *testing.T) {
	n := remotetest.StartNginx(t)
	runTeammates(t, backend{
		url: n.URL,
		corrupt: func(t *testing.T, object string, data []byte) {
			if err := os.WriteFile(n.ObjectPath(object), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		stop: n.Stop,
	})
}

func TestTeammatesFileBucket(t *testing.T) {
	dir := t.TempDir()
	runTeammates(t, backend{
		url: "file://" + dir,
		corrupt: func(t *testing.T, object string, data []byte) {
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(object)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestTeammatesS3(t *testing.T) {
	s := remotetest.StartS3(t)
	runTeammates(t, backend{
		url: s.URL,
		corrupt: func(t *testing.T, object string, data []byte) {
			if _, err := s.Mem.PutObject(s.Bucket, "mlbuild/"+object, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
				t.Fatal(err)
			}
		},
		stop: s.Stop,
	})
}
