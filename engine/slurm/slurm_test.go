package slurm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/engine/slurm"
	"github.com/mlbuild/mlbuild/engine/slurm/slurmtest"
	"github.com/mlbuild/mlbuild/steps"
)

func TestMain(m *testing.M) {
	code := m.Run()
	slurmtest.StopShared()
	os.Exit(code)
}

func start(t *testing.T) *slurmtest.Cluster { return slurmtest.Shared(t) }

// fakeMlbuild stands in for mlbuild on the node: it prints its arguments
// and then does what the step's name says: fail, sleep, or record when it
// held the GPU.
const fakeMlbuild = `#!/bin/sh
echo "args: $*"
echo "line two"
case "$3" in
fail.*) echo "it went wrong" >&2; exit 3 ;;
slow.*) sleep 300 ;;
gpu.*) date +%s.%N > "$MARKS/$3.start"; sleep 2; date +%s.%N > "$MARKS/$3.end" ;;
esac
`

func newExecutor(t *testing.T, cfg slurm.Config) (*slurm.Executor, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mlbuild")
	if err := os.WriteFile(bin, []byte(fakeMlbuild), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Binary, cfg.Poll = bin, 200*time.Millisecond
	x, err := slurm.New(cfg, slurm.Run{Pipeline: "/p/pipeline.hcl", Vars: []string{"seed=7", "name=it's"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MARKS", dir)
	return x, dir
}

func job(dir, step string, after ...string) *engine.Job {
	return &engine.Job{Step: step, After: after, Log: filepath.Join(dir, step+".log")}
}

// TestJobsRunInOrder: a job that depends on another starts after it, its
// log streams, and its command line is mlbuild exec-step with the
// pipeline's variables, quoted.
func TestJobsRunInOrder(t *testing.T) {
	c := start(t)
	x, dir := newExecutor(t, slurm.Config{})
	ctx := context.Background()
	if err := x.Submit(ctx, []*engine.Job{job(dir, "a.one"), job(dir, "b.two", "a.one")}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range []string{"a.one", "b.two"} {
		if err := x.Wait(ctx, s, func(l string) { lines = append(lines, s+": "+l) }); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	want := "a.one: args: exec-step --step a.one -var seed=7 -var name=it's /p/pipeline.hcl"
	if len(lines) != 4 || lines[0] != want || lines[3] != "b.two: line two" {
		t.Fatalf("streamed lines: %q", lines)
	}
	out, err := c.Command("scontrol", "show", "job", "-o", x.JobID("b.two")).Output()
	if err != nil || !strings.Contains(string(out), "JobName=mlbuild:b.two") || !strings.Contains(string(out), "JobState=COMPLETED") {
		t.Fatalf("scontrol: %v %s", err, out)
	}
}

// TestFailedJob: a job that exits non-zero is reported with Slurm's state
// and exit code and its log's last lines; its dependent is cancelled by
// Slurm.
func TestFailedJob(t *testing.T) {
	c := start(t)
	x, dir := newExecutor(t, slurm.Config{})
	ctx := context.Background()
	if err := x.Submit(ctx, []*engine.Job{job(dir, "fail.one"), job(dir, "b.after", "fail.one")}); err != nil {
		t.Fatal(err)
	}
	err := x.Wait(ctx, "fail.one", func(string) {})
	if !errors.Is(err, slurm.ErrJobFailed) || !strings.Contains(err.Error(), "ended FAILED") || !strings.Contains(err.Error(), "exit code 3:0") || !strings.Contains(err.Error(), "it went wrong") {
		t.Fatalf("failed job: %v", err)
	}
	err = x.Wait(ctx, "b.after", func(string) {})
	if err == nil || !strings.Contains(err.Error(), "CANCELLED") {
		t.Fatalf("the dependent of a failed job: %v", err)
	}
	_ = c
}

// TestCancelLeavesNoJob: Cancel ends running and pending jobs.
func TestCancelLeavesNoJob(t *testing.T) {
	c := start(t)
	x, dir := newExecutor(t, slurm.Config{})
	if err := x.Submit(context.Background(), []*engine.Job{job(dir, "slow.one"), job(dir, "slow.two", "slow.one")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	x.Cancel()
	out, err := c.Command("squeue", "-h", "-o", "%i %T").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("queue after Cancel: %v %q", err, out)
	}
}

// TestTimeLimit: a job that runs past its time is killed by Slurm and
// reported as TIMEOUT. (Slurm's limits are whole minutes: this test takes
// about one.)
func TestTimeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a minute")
	}
	start(t)
	x, dir := newExecutor(t, slurm.Config{Time: "1"})
	ctx := context.Background()
	if err := x.Submit(ctx, []*engine.Job{job(dir, "slow.limited")}); err != nil {
		t.Fatal(err)
	}
	err := x.Wait(ctx, "slow.limited", func(string) {})
	if !errors.Is(err, slurm.ErrJobFailed) || !strings.Contains(err.Error(), "ended TIMEOUT") {
		t.Fatalf("a job past its time: %v", err)
	}
}

// TestOneGPU: two independent steps that each ask for the cluster's one
// GPU (a license here) never hold it at once.
func TestOneGPU(t *testing.T) {
	start(t)
	x, dir := newExecutor(t, slurm.Config{GPUs: "license"})
	ctx := context.Background()
	var jobs []*engine.Job
	for _, s := range []string{"gpu.a", "gpu.b"} {
		j := job(dir, s)
		j.Resources = steps.Resources{CPUs: 1, GPUs: 1, MemoryBytes: 100 << 20}
		jobs = append(jobs, j)
	}
	if err := x.Submit(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"gpu.a", "gpu.b"} {
		if err := x.Wait(ctx, s, func(string) {}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) float64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var f float64
		if _, err := fmt.Sscan(string(b), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	aStart, aEnd, bStart, bEnd := read("gpu.a.start"), read("gpu.a.end"), read("gpu.b.start"), read("gpu.b.end")
	if aStart < bEnd && bStart < aEnd {
		t.Fatalf("the two GPU jobs overlapped: a %.2f–%.2f, b %.2f–%.2f", aStart, aEnd, bStart, bEnd)
	}
}

func TestParseConfig(t *testing.T) {
	block := func(attrs map[string]cty.Value) *engine.ExecutorConfig {
		return &engine.ExecutorConfig{Name: "slurm", Attrs: attrs, Ranges: map[string]hcl.Range{},
			Range: hcl.Range{Filename: "p.hcl", Start: hcl.Pos{Line: 3, Column: 1}}}
	}
	cfg, err := slurm.ParseConfig(block(map[string]cty.Value{
		"partition": cty.StringVal("gpu"), "time": cty.StringVal("90m"), "gpus": cty.StringVal("license"),
		"sbatch_args": cty.TupleVal([]cty.Value{cty.StringVal("--exclusive")})}))
	if err != nil || cfg.Partition != "gpu" || cfg.Time != "90" || cfg.GPUs != "license" || len(cfg.Args) != 1 {
		t.Fatalf("config: %+v, %v", cfg, err)
	}
	for attr, v := range map[string]cty.Value{
		"partitoin": cty.StringVal("gpu"),
		"time":      cty.StringVal("soon please"),
		"gpus":      cty.StringVal("mig"),
		"account":   cty.NumberIntVal(3),
	} {
		_, err := slurm.ParseConfig(block(map[string]cty.Value{attr: v}))
		if err == nil || !strings.Contains(err.Error(), "p.hcl:3:1") {
			t.Errorf("%s = %#v: %v", attr, v, err)
		}
	}
}
