package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache/remote/remotetest"
	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/engine/slurm/slurmtest"
	"github.com/mlbuild/mlbuild/internal/sandbox/sandboxtest"
)

// asMlbuild, set in a test's environment, makes the test binary act as
// mlbuild: the Slurm jobs the tests submit run it (their environment is
// the submitter's) as `mlbuild exec-step ...`.
const asMlbuild = "MLBUILD_TEST_AS_MLBUILD"

func TestMain(m *testing.M) {
	if os.Getenv(asMlbuild) == "1" {
		main()
	}
	code := m.Run()
	slurmtest.StopShared()
	os.Exit(code)
}

// clusterRun sets up a Slurm cluster and an nginx remote cache for the
// test, and makes the jobs run this binary as mlbuild.
func clusterRun(t *testing.T) *slurmtest.Cluster {
	t.Helper()
	c := slurmtest.Shared(t)
	n := remotetest.StartNginx(t)
	t.Setenv("MLBUILD_REMOTE", n.URL)
	t.Setenv(asMlbuild, "1")
	t.Setenv("MLBUILD_CACHE_DIR", "")
	return c
}

// TestSlurmPipeline runs the data steps and the reduced training pipeline
// (ci.vars.hcl) with --executor slurm: every step runs as a Slurm job,
// the outputs are byte-identical to a local run's (pretrain's too, after
// its job is requeued mid-training and resumes), and a rerun submits
// nothing.
func TestSlurmPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the reduced pipeline on Slurm")
	}
	local := newWorkspace(t)
	t.Setenv("MLBUILD_REMOTE", "off")
	want := local.runFile("twainbot.hcl", "--executor", "local")

	c := clusterRun(t)
	before, err := c.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t)
	// pretrain.base's job is requeued after its first checkpoint, as a
	// pre-empted job is: it must resume from it (the checkpoints are in
	// the submitter's build/.state, which the nodes share) and still
	// build the local run's bytes.
	stop := make(chan struct{})
	requeued := requeueAfterCheckpoint(c, w, "pretrain.base", stop)
	got := w.runFile("twainbot.hcl", "--executor", "slurm")
	close(stop)
	select {
	case id := <-requeued:
		if strings.HasPrefix(id, "failed") {
			t.Fatalf("scontrol requeue: %s", id)
		}
		log, _ := os.ReadFile(filepath.Join(w.dir, "build", ".logs", "pretrain.base", "job.log"))
		if !strings.Contains(string(log), "CANCELLED AT") || !strings.Contains(string(log), "resuming from checkpoint") {
			t.Errorf("the requeued job %s did not resume from its checkpoint; its log:\n%s", id, log)
		}
	default:
		t.Error("pretrain.base's job ended before it could be requeued after a checkpoint")
	}
	jobs, err := c.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for id, j := range jobs {
		if _, old := before[id]; !old {
			byName[strings.TrimPrefix(j[0], "mlbuild:")] = j[1]
		}
	}
	for step, r := range want {
		g := got[step]
		if g.Status != engine.StatusRan || g.Source != "slurm" {
			t.Errorf("%s: %s (source %q), want ran on slurm", step, g.Status, g.Source)
		}
		if byName[step] != "COMPLETED" {
			t.Errorf("%s: no completed Slurm job (jobs: %v)", step, byName)
		}
		for name, o := range r.Outputs {
			if g.Outputs[name].Digest != o.Digest {
				t.Errorf("%s.%s: %s on Slurm, %s locally", step, name, g.Outputs[name].Digest, o.Digest)
			}
		}
	}
	if len(byName) != len(want) {
		t.Errorf("%d jobs for %d steps: %v", len(byName), len(want), byName)
	}
	a, _ := os.ReadFile(filepath.Join(local.dir, "build", "merge.twainbot", "model", "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(w.dir, "build", "merge.twainbot", "model", "model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("the merged model built on Slurm differs from the local one")
	}

	for step, r := range w.runFile("twainbot.hcl", "--executor", "slurm") {
		if r.Status != engine.StatusCached {
			t.Errorf("rerun: %s %s", step, r.Status)
		}
	}
	after, err := c.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(jobs) {
		t.Errorf("the rerun submitted %d jobs", len(after)-len(jobs))
	}
}

// slurmSteps is a pipeline of command steps for the Slurm failure tests.
const slurmSteps = `
executor "slurm" {
  poll = "200ms"
}
step "command" "first" {
  run      = ["sh", "-c", "%s"]
  outputs  = { o = "o" }
  executor = "slurm"
}
step "command" "second" {
  run      = ["sh", "-c", "cat in/i > out/o"]
  inputs   = { i = command.first.o }
  outputs  = { o = "o" }
  executor = "slurm"
}
`

// TestSlurmFailedJob: a failing step's job is reported with Slurm's state
// and the end of its log; its dependent's job is cancelled by Slurm and
// the step not started.
func TestSlurmFailedJob(t *testing.T) {
	sandboxtest.Require(t)
	c := clusterRun(t)
	w := newWorkspace(t)
	writeFile(t, filepath.Join(w.dir, "steps.hcl"), strings.Replace(slurmSteps, "%s", "echo doomed >&2; exit 4", 1))
	out, stderr, err := w.mlbuild("run", "steps.hcl")
	if err == nil {
		t.Fatalf("a failing job succeeded:\n%s", out)
	}
	for _, want := range []string{"command.first failed", "ended FAILED", "exit code 1:0", "doomed"} {
		if !strings.Contains(out+stderr, want) {
			t.Errorf("the failure lacks %q:\n%s\n%s", want, out, stderr)
		}
	}
	if !regexpLine(out, `^skipped command\.second`) {
		t.Errorf("the dependent step:\n%s", out)
	}
	waitQueueEmpty(t, c)
}

// TestSlurmCancelledRun: cancelling mlbuild (Ctrl-C) while its jobs run or
// wait leaves no job in the queue.
func TestSlurmCancelledRun(t *testing.T) {
	sandboxtest.Require(t)
	c := clusterRun(t)
	w := newWorkspace(t)
	writeFile(t, filepath.Join(w.dir, "steps.hcl"), strings.Replace(slurmSteps, "%s", "echo started; sleep 300", 1))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		log := filepath.Join(w.dir, "build", ".logs", "command.first", "job.log")
		for ctx.Err() == nil {
			if b, _ := os.ReadFile(log); strings.Contains(string(b), "started") {
				cancel()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	wd, _ := os.Getwd()
	if err := os.Chdir(w.dir); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := dispatch(ctx, []string{"run", "steps.hcl"}, &out, &errb)
	if err := os.Chdir(wd); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err == nil {
		t.Fatalf("a cancelled run succeeded:\n%s", out.String())
	}
	queue, qerr := c.Command("squeue", "-h", "-o", "%i %j %T").Output()
	if qerr != nil || strings.TrimSpace(string(queue)) != "" {
		t.Fatalf("jobs left after a cancelled run: %v\n%s", qerr, queue)
	}
}

// waitQueueEmpty waits until the cluster runs no job.
func waitQueueEmpty(t *testing.T, c *slurmtest.Cluster) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := c.Command("squeue", "-h").Output()
		if err == nil && strings.TrimSpace(string(q)) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs left in the queue: %v\n%s", err, q)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requeueAfterCheckpoint watches the workspace for the first training
// checkpoint and then has Slurm requeue the step's running job, as it
// does a pre-empted one; it sends the job's ID (or what went wrong) once.
// releaseRequeued makes a requeued job eligible soon instead of in two
// minutes (Slurm holds a requeued job: its begin time moves to now+120 s,
// Reason=BeginTime). It waits until the first run has written its last
// line to the job's log (the interrupted step's summary, after Slurm's
// "DUE TO JOB REQUEUE"), Slurm holds the job, and KillWait (2 s) more has
// passed, so that nothing of the first run is left when the second starts;
// then it sets the job's begin time to now. Without a hold seen within
// 60 s it does nothing (the job starts after Slurm's two minutes).
func releaseRequeued(c *slurmtest.Cluster, w *workspace, step, id string) {
	log := filepath.Join(w.dir, "build", ".logs", step, "job.log")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(log)
		_, after, requeued := strings.Cut(string(b), "DUE TO JOB REQUEUE")
		if !requeued || !strings.Contains(after, " steps: ") {
			continue
		}
		out, err := c.Command("scontrol", "show", "job", "-o", id).Output()
		if f := " " + string(out); err != nil || !strings.Contains(f, " JobState=PENDING ") || !strings.Contains(f, " Reason=BeginTime ") {
			continue
		}
		time.Sleep(3 * time.Second)
		_ = c.Command("scontrol", "update", "JobId="+id, "StartTime=now").Run() // best effort: else it starts in two minutes
		return
	}
}

func requeueAfterCheckpoint(c *slurmtest.Cluster, w *workspace, step string, stop <-chan struct{}) <-chan string {
	requeued := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if cps, _ := filepath.Glob(filepath.Join(w.dir, "build", ".state", "*", "checkpoint-*.safetensors")); len(cps) == 0 {
				continue
			}
			jobs, err := c.Jobs()
			if err != nil {
				continue
			}
			for id, j := range jobs {
				if j[0] == "mlbuild:"+step && j[1] == "RUNNING" {
					if out, err := c.Command("scontrol", "requeue", id).CombinedOutput(); err != nil {
						requeued <- "failed: " + string(out)
						return
					}
					// Slurm holds a requeued job for two minutes (its
					// begin time moves to now+120 s, Reason=BeginTime);
					// a pre-empted job resumes whenever, so let it start
					// as soon as it is pending again.
					releaseRequeued(c, w, step, id)
					requeued <- id
					return
				}
			}
		}
	}()
	return requeued
}
