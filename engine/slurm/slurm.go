// Package slurm runs stale steps as Slurm jobs: an engine.Executor that
// submits each step with sbatch, as a job that runs the same mlbuild binary
// on a node (`mlbuild exec-step`), with --dependency=afterok between the
// jobs of dependent steps, so that the cluster runs the graph in parallel.
// A job takes its inputs from the remote cache, runs its step and uploads
// the result; the submitting mlbuild waits for the job (scontrol), streams
// its log and downloads the result.
//
//	executor "slurm" {
//	  partition = "gpu"
//	  account   = "ml"
//	  time      = "4h"
//	}
//
//	step "qlora_train" "twainbot" {
//	  executor = "slurm"
//	  ...
//	}
//
// docs/distributed.md describes the set-up.
package slurm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
)

// Name is the executor's name in pipelines (executor "slurm" { ... }).
const Name = "slurm"

// ErrJobFailed is wrapped by Wait's error when a job did not succeed.
var ErrJobFailed = errors.New("slurm: job failed")

// Config is an executor "slurm" block.
type Config struct {
	// Partition, Account, QOS and Time become sbatch's --partition,
	// --account, --qos and --time ("4h", "90m" or Slurm's own "1-00:00:00").
	Partition, Account, QOS, Time string
	// GPUs says how a step's GPUs are asked for: "gres" (--gres=gpu:N,
	// the default) or "license" (--licenses=gpu:N, for a cluster that
	// counts GPUs as licenses).
	GPUs string
	// Binary is mlbuild's path on the nodes (default: this executable,
	// which must then be on a filesystem they share).
	Binary string
	// Poll is how often a job's state and log are read.
	Poll time.Duration
	// Args are more sbatch arguments, as given.
	Args []string
}

// ParseConfig reads an executor block; an error names the attribute, at
// its place in the pipeline.
func ParseConfig(c *engine.ExecutorConfig) (Config, error) {
	cfg := Config{GPUs: "gres", Poll: 2 * time.Second}
	for _, name := range slices.Sorted(maps.Keys(c.Attrs)) {
		v := c.Attrs[name]
		str := func() (string, error) {
			if v.IsNull() || v.Type() != cty.String {
				return "", c.Locate(name, fmt.Errorf("%s must be a string", name))
			}
			return v.AsString(), nil
		}
		var err error
		switch name {
		case "partition":
			cfg.Partition, err = str()
		case "account":
			cfg.Account, err = str()
		case "qos":
			cfg.QOS, err = str()
		case "time":
			if cfg.Time, err = str(); err == nil {
				cfg.Time, err = slurmTime(cfg.Time)
				if err != nil {
					err = c.Locate(name, err)
				}
			}
		case "gpus":
			if cfg.GPUs, err = str(); err == nil && cfg.GPUs != "gres" && cfg.GPUs != "license" {
				err = c.Locate(name, fmt.Errorf("gpus must be \"gres\" (--gres=gpu:N) or \"license\" (--licenses=gpu:N), not %q", cfg.GPUs))
			}
		case "binary":
			cfg.Binary, err = str()
		case "poll":
			var s string
			if s, err = str(); err == nil {
				if cfg.Poll, err = time.ParseDuration(s); err != nil || cfg.Poll <= 0 {
					err = c.Locate(name, fmt.Errorf("poll %q is not a positive duration", s))
				}
			}
		case "sbatch_args":
			if v.IsNull() || !v.CanIterateElements() {
				return cfg, c.Locate(name, errors.New("sbatch_args must be a list of strings"))
			}
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if e.IsNull() || e.Type() != cty.String {
					return cfg, c.Locate(name, errors.New("sbatch_args must be a list of strings"))
				}
				cfg.Args = append(cfg.Args, e.AsString())
			}
		default:
			return cfg, c.Locate(name, fmt.Errorf("executor %q has no setting %q; it takes partition, account, qos, time, gpus, binary, poll and sbatch_args", Name, name))
		}
		if err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// slurmTime turns a Go duration ("4h", "90m") into Slurm's minutes;
// anything else is passed to Slurm as it is ("1-00:00:00").
func slurmTime(s string) (string, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return "", fmt.Errorf("time %q must be positive", s)
		}
		return strconv.Itoa(int((d + time.Minute - 1) / time.Minute)), nil
	}
	if s == "" || strings.ContainsAny(s, " \t\n'\"") {
		return "", fmt.Errorf("time %q is neither a duration (\"4h\") nor a Slurm time (\"1-00:00:00\")", s)
	}
	return s, nil
}

// Run is what every job runs: the pipeline and its variables, as the
// submitting mlbuild loaded them.
type Run struct {
	// Pipeline is the pipeline file's absolute path, which the nodes must
	// see at the same path.
	Pipeline string
	// Vars and VarFiles are the -var and -var-file arguments.
	Vars, VarFiles []string
	// StateDir is the folder of checkpoints the job uses (the
	// submitter's build/.state on a shared filesystem), so that a
	// requeued job resumes.
	StateDir string
}

// Executor submits steps as Slurm jobs.
type Executor struct {
	cfg Config
	run Run

	mu   sync.Mutex
	jobs map[string]*job // by step
}

type job struct {
	id     string
	log    string
	offset int64  // how much of the log was streamed
	rest   []byte // a partial last line
	ended  bool
}

// New returns an executor for one run of a pipeline.
func New(cfg Config, run Run) (*Executor, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("slurm: find mlbuild's own path for the jobs (set binary in the executor block): %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		return nil, fmt.Errorf("slurm: sbatch is not on PATH (install Slurm's client, Debian's slurm-client, or run with --executor local): %w", err)
	}
	return &Executor{cfg: cfg, run: run, jobs: map[string]*job{}}, nil
}

// Name implements engine.Executor.
func (x *Executor) Name() string { return Name }

// Submit implements engine.Executor: one sbatch per job, in order, each
// depending (afterok) on the jobs of its submitted upstream steps; a job
// whose dependency fails is cancelled by Slurm (--kill-on-invalid-dep).
func (x *Executor) Submit(ctx context.Context, jobs []*engine.Job) error {
	for _, j := range jobs {
		args := x.sbatchArgs(j)
		var after []string
		x.mu.Lock()
		for _, a := range j.After {
			if d, ok := x.jobs[a]; ok {
				after = append(after, d.id)
			}
		}
		x.mu.Unlock()
		if len(after) > 0 {
			args = append(args, "--dependency=afterok:"+strings.Join(after, ":"))
		}
		cmd := exec.CommandContext(ctx, "sbatch", args...)
		cmd.Stdin = strings.NewReader(x.script(j))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("sbatch for %s: %v: %s", j.Step, err, strings.TrimSpace(stderr.String()))
		}
		id, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), ";") // --parsable: ID[;CLUSTER]
		if _, err := strconv.Atoi(id); err != nil {
			return fmt.Errorf("sbatch for %s printed %q, not a job ID", j.Step, stdout.String())
		}
		x.mu.Lock()
		x.jobs[j.Step] = &job{id: id, log: j.Log}
		x.mu.Unlock()
	}
	return nil
}

// JobID is the Slurm job ID of a submitted step ("" when none).
func (x *Executor) JobID(step string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if j, ok := x.jobs[step]; ok {
		return j.id
	}
	return ""
}

func (x *Executor) sbatchArgs(j *engine.Job) []string {
	args := []string{"--parsable", "--job-name=mlbuild:" + j.Step, "--output=" + j.Log, "--kill-on-invalid-dep=yes", "--export=ALL", "--open-mode=append"}
	for flag, v := range map[string]string{"--partition": x.cfg.Partition, "--account": x.cfg.Account, "--qos": x.cfg.QOS, "--time": x.cfg.Time} {
		if v != "" {
			args = append(args, flag+"="+v)
		}
	}
	r := j.Resources
	if r.CPUs > 0 {
		args = append(args, "--cpus-per-task="+strconv.Itoa(r.CPUs))
	}
	if r.MemoryBytes > 0 {
		args = append(args, "--mem="+strconv.FormatInt((r.MemoryBytes+(1<<20)-1)>>20, 10)+"M")
	}
	if r.GPUs > 0 {
		if x.cfg.GPUs == "license" {
			args = append(args, "--licenses=gpu:"+strconv.Itoa(r.GPUs))
		} else {
			args = append(args, "--gres=gpu:"+strconv.Itoa(r.GPUs))
		}
	}
	sort.Strings(args[6:])
	return append(args, x.cfg.Args...)
}

// script is the job: mlbuild exec-step in a scratch folder of the node.
// It holds no secret: the remote's credentials reach the job through the
// environment (sbatch --export=ALL).
func (x *Executor) script(j *engine.Job) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# mlbuild: builds %s on this node; its inputs and its result go through the remote cache.\n", j.Step)
	b.WriteString("set -eu\n")
	// A folder of its own even where two clusters' job ids meet on one
	// node's /tmp (as the tests' one-node clusters do).
	b.WriteString("scratch=$(mktemp -d \"${TMPDIR:-/tmp}/mlbuild-job-${SLURM_JOB_ID}.XXXXXX\")\n")
	b.WriteString("trap 'rm -rf \"$scratch\"' EXIT\ncd \"$scratch\"\n")
	argv := []string{x.cfg.Binary, "exec-step", "--step", j.Step}
	if x.run.StateDir != "" {
		argv = append(argv, "--state-dir", x.run.StateDir)
	}
	for _, v := range x.run.Vars {
		argv = append(argv, "-var", v)
	}
	for _, f := range x.run.VarFiles {
		argv = append(argv, "-var-file", f)
	}
	argv = append(argv, x.run.Pipeline)
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quote(a))
	}
	b.WriteByte('\n')
	return b.String()
}

// quote is s as one shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// state is a job's state as scontrol (or sacct) reports it.
type state struct {
	State, Reason, ExitCode string
}

// final reports whether a job in this state has ended.
func (s state) final() bool {
	switch s.State {
	case "", "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "SPECIAL_EXIT":
		return false
	}
	return true
}

// Wait implements engine.Executor: it polls the job's state, streams new
// lines of its log to output, and returns nil when it completed with exit
// code 0; otherwise an error (wrapping ErrJobFailed) with Slurm's state and
// reason and the log's last lines.
func (x *Executor) Wait(ctx context.Context, step string, output func(line string)) error {
	x.mu.Lock()
	j, ok := x.jobs[step]
	x.mu.Unlock()
	if !ok {
		return fmt.Errorf("slurm: %s was not submitted", step)
	}
	tick := time.NewTicker(x.cfg.Poll)
	defer tick.Stop()
	for {
		st, err := jobState(ctx, j.id)
		x.stream(j, output, false)
		if err != nil {
			return err
		}
		if st.final() {
			x.stream(j, output, true)
			x.mu.Lock()
			j.ended = true
			x.mu.Unlock()
			if st.State == "COMPLETED" && (st.ExitCode == "" || st.ExitCode == "0:0") {
				return nil
			}
			return fmt.Errorf("%w: job %s ended %s (reason %s, exit code %s)%s", ErrJobFailed, j.id, st.State, st.Reason, st.ExitCode, tail(j.log, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stream sends the log's new complete lines (and, at the end, a partial
// last one) to output.
func (x *Executor) stream(j *job, output func(string), final bool) {
	f, err := os.Open(j.log)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }() // read-only
	if _, err := f.Seek(j.offset, io.SeekStart); err != nil {
		return
	}
	b, _ := io.ReadAll(io.LimitReader(f, 16<<20))
	j.offset += int64(len(b))
	b = append(j.rest, b...)
	lines := bytes.Split(b, []byte("\n"))
	j.rest = append([]byte(nil), lines[len(lines)-1]...)
	for _, l := range lines[:len(lines)-1] {
		output(string(l))
	}
	if final && len(j.rest) > 0 {
		output(string(j.rest))
		j.rest = nil
	}
}

// jobState asks scontrol, then (for a job it no longer knows) sacct.
func jobState(ctx context.Context, id string) (state, error) {
	out, err := exec.CommandContext(ctx, "scontrol", "show", "job", "-o", id).Output()
	if err == nil {
		return parseScontrol(string(out)), nil
	}
	if ctx.Err() != nil {
		return state{}, ctx.Err()
	}
	acct, aerr := exec.CommandContext(ctx, "sacct", "-n", "-P", "-X", "-j", id, "-o", "State,ExitCode,Reason").Output()
	if aerr == nil {
		if f := strings.Split(strings.TrimSpace(string(acct)), "|"); len(f) == 3 && f[0] != "" {
			st, _, _ := strings.Cut(f[0], " ") // "CANCELLED by 0"
			return state{State: st, ExitCode: f[1], Reason: f[2]}, nil
		}
	}
	return state{}, fmt.Errorf("slurm: job %s: scontrol knows it no longer (%v) and sacct cannot say how it ended (%v)", id, errText(err), errText(aerr))
}

func errText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return strings.TrimSpace(string(ee.Stderr))
	}
	if err == nil {
		return "no record"
	}
	return err.Error()
}

// parseScontrol reads JobState, Reason and ExitCode from `scontrol show
// job -o` (one line of KEY=VALUE fields).
func parseScontrol(out string) state {
	var st state
	for _, f := range strings.Fields(out) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "JobState":
			st.State = v
		case "Reason":
			st.Reason = v
		case "ExitCode":
			st.ExitCode = v
		}
	}
	return st
}

// tail is the last n lines of a log, for a failure's message.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "; the last lines of its log (" + path + "):\n    " + strings.Join(lines, "\n    ")
}

// Cancel implements engine.Executor: scancel every job that has not
// ended, then wait (up to a minute) until Slurm no longer runs them.
func (x *Executor) Cancel() {
	x.mu.Lock()
	var ids []string
	for _, j := range x.jobs {
		if !j.ended {
			ids = append(ids, j.id)
		}
	}
	x.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = exec.CommandContext(ctx, "scancel", ids...).Run()
	for _, id := range ids {
		for ctx.Err() == nil {
			st, err := jobState(ctx, id)
			if err != nil || st.final() {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// Jobs are the submitted steps and their job IDs.
func (x *Executor) Jobs() map[string]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := make(map[string]string, len(x.jobs))
	for s, j := range x.jobs {
		m[s] = j.id
	}
	return m
}

// StateDir is the folder of checkpoints jobs share with the submitter.
func StateDir(workspace string) string {
	return filepath.Join(workspace, engine.BuildDirName, ".state")
}
