package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/steps"
)

// ExecutorAttr is the meta-attribute every step block accepts: where the
// step runs when it is stale, "local" (this process, the default) or the
// name of an executor block. Like enabled, it may use variables only.
const ExecutorAttr = "executor"

// LocalExecutor runs steps in this process.
const LocalExecutor = "local"

// ExecutorConfig is an executor block of the pipeline:
//
//	executor "slurm" {
//	  partition = "gpu"
//	  time      = "4h"
//	}
//
// The engine evaluates its attributes (variables and functions only) and
// leaves their meaning to the executor of that name.
type ExecutorConfig struct {
	Name string
	// Attrs are the block's attributes, evaluated.
	Attrs map[string]cty.Value
	// Ranges locate each attribute, and Range the block, for messages.
	Ranges map[string]hcl.Range
	Range  hcl.Range
	// Default (the block's `default = true`, which the engine reads
	// itself) makes it the executor of every step that does not name one.
	Default bool
}

// Locate prefixes an error about attribute attr of the block with its
// file:line:column.
func (c *ExecutorConfig) Locate(attr string, err error) error {
	r, ok := c.Ranges[attr]
	if !ok {
		r = c.Range
	}
	return fmt.Errorf("%s:%d:%d: executor %q: %w", r.Filename, r.Start.Line, r.Start.Column, c.Name, err)
}

// Executor runs stale steps somewhere other than this process: a cluster's
// scheduler. Its results travel through the remote cache: a step run by
// an executor uploads its result there, and the engine downloads it as it
// would any remote result, so keys, early cutoff and explain are the same
// as for a local run.
type Executor interface {
	// Name is the executor's name, as steps name it.
	Name() string
	// Submit starts the jobs ahead, in dependency order: each Job's After
	// lists the jobs (earlier in jobs) it must wait for, so that the
	// cluster runs the graph in parallel.
	Submit(ctx context.Context, jobs []*Job) error
	// Wait blocks until the step's job has ended; nil means it
	// succeeded, and its result is in the remote cache.
	Wait(ctx context.Context, step string, output func(line string)) error
	// Cancel ends every job that has not ended (on an interrupted run or
	// a failure) and waits until the scheduler has accepted that.
	Cancel()
}

// Job is one step submitted to an executor.
type Job struct {
	// Step is the step's address; the job runs `mlbuild exec-step` for it.
	Step string
	// After are the steps, submitted earlier, whose jobs must succeed
	// first.
	After []string
	// Resources are what the step asks for.
	Resources steps.Resources
	// Log is the file (in the workspace's build/.logs) the job's output
	// goes to.
	Log string
}

// loadExecutors reads the executor blocks.
func (l *loader) loadExecutors(blocks []*hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	l.p.Executors = map[string]*ExecutorConfig{}
	for _, b := range blocks {
		name := b.Labels[0]
		if name == LocalExecutor || !validName(name) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid executor name",
				Detail: fmt.Sprintf("Executor %q: a name starts with a letter and holds letters, digits, '_' and '-', and %q is the built-in one.", name, LocalExecutor), Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		if prev, dup := l.p.Executors[name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate executor",
				Detail: fmt.Sprintf("Executor %q is already declared at %s.", name, prev.Range), Subject: b.DefRange.Ptr()})
			continue
		}
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		c := &ExecutorConfig{Name: name, Attrs: map[string]cty.Value{}, Ranges: map[string]hcl.Range{}, Range: b.DefRange}
		for n, a := range attrs {
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "var" {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid executor setting",
						Detail: fmt.Sprintf("executor %q: %q may use variables and functions only, not %q.", name, n, tr.RootName()), Subject: tr.SourceRange().Ptr()})
				}
			}
			if diags.HasErrors() {
				continue
			}
			v, d := a.Expr.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			if n == "default" {
				b, err := convert.Convert(v, cty.Bool)
				if err != nil || b.IsNull() || !b.IsKnown() {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Wrong type",
						Detail: fmt.Sprintf("executor %q: default must be true or false.", name), Subject: a.Expr.Range().Ptr()})
					continue
				}
				c.Default = b.True()
				continue
			}
			c.Attrs[n], c.Ranges[n] = v, a.Expr.Range()
		}
		if c.Default {
			for _, other := range l.p.Executors {
				if other.Default {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Two default executors",
						Detail: fmt.Sprintf("Executors %q and %q both say default = true; at most one may.", other.Name, name), Subject: b.DefRange.Ptr()})
				}
			}
		}
		l.p.Executors[name] = c
	}
	return diags
}

// defaultExecutor is the executor of steps that name none ("": local).
func (p *Pipeline) defaultExecutor() string {
	for name, c := range p.Executors {
		if c.Default {
			return name
		}
	}
	return ""
}

// stepExecutor evaluates a step's executor attribute.
func (l *loader) stepExecutor(s *Step, a *hcl.Attribute, ctx *hcl.EvalContext) (string, hcl.Diagnostics) {
	for _, tr := range a.Expr.Variables() {
		if tr.RootName() != "var" {
			return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid executor expression",
				Detail:  fmt.Sprintf("%s: %q may use variables and functions only, not %q.", s.Addr, ExecutorAttr, tr.RootName()),
				Subject: tr.SourceRange().Ptr()}}
		}
	}
	v, d := a.Expr.Value(ctx)
	if d.HasErrors() {
		return "", d
	}
	cv, err := convert.Convert(v, cty.String)
	if err != nil || cv.IsNull() || !cv.IsKnown() {
		return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Wrong type",
			Detail: fmt.Sprintf("%s: %q must be a string: %q or an executor block's name.", s.Addr, ExecutorAttr, LocalExecutor), Subject: a.Expr.Range().Ptr()}}
	}
	name := cv.AsString()
	if name == LocalExecutor || name == "" {
		return LocalExecutor, nil
	}
	if _, ok := l.p.Executors[name]; !ok {
		names := []string{LocalExecutor}
		for n := range l.p.Executors {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown executor",
			Detail:  fmt.Sprintf("%s: there is no executor %q: declare it with an executor block, or use one of %s.%s", s.Addr, name, strings.Join(names, ", "), suggest(name, names)),
			Subject: a.Expr.Range().Ptr()}}
	}
	return name, nil
}

// executorOf is the executor a stale step runs on (nil: this process).
func (e *Engine) executorOf(s *Step) Executor {
	name := s.Executor
	if e.opts.Executor != "" {
		name = e.opts.Executor
	}
	if name == "" || name == LocalExecutor {
		return nil
	}
	return e.opts.Executors[name]
}

// submitAhead hands every selected step that may run on an executor to
// it before anything runs, with its dependencies on the other submitted
// steps, after uploading the locally cached results those jobs need.
func (e *Engine) submitAhead(ctx context.Context) error {
	byExec := map[Executor][]*Job{}
	var order []Executor
	remote := false
	for _, s := range e.selected() {
		if e.executorOf(s) != nil {
			remote = true
		}
	}
	if !remote {
		return nil
	}
	rs := e.remoteActive()
	if rs == nil || !rs.write {
		return errors.New("steps that run on an executor send their results back through the remote cache: set a read-write remote (cache { remote = \"...\" } or MLBUILD_REMOTE)")
	}
	plan, err := e.Plan()
	if err != nil {
		return err
	}
	submitted := map[string]bool{}
	// later are stale steps whose jobs cannot start before this process
	// has run a step they need: they are submitted when it has (build).
	later := map[string]bool{}
	for _, ent := range plan {
		s := e.p.byAddr[ent.Step]
		switch ent.Action {
		case ActionCached, ActionRestore:
			// The jobs that need it download it from the remote.
			if ar, ok, err := e.store.GetAction(ent.Key); err == nil && ok {
				e.pushRemote(ctx, s, ar)
			}
			continue
		}
		ex := e.executorOf(s)
		blocked := ex == nil
		for _, d := range s.Deps {
			blocked = blocked || later[d.Addr]
		}
		if blocked {
			later[s.Addr] = true
			continue
		}
		if _, ok := e.opts.Executors[ex.Name()]; !ok {
			return fmt.Errorf("%s: executor %q is not available", s.Addr, ex.Name())
		}
		job, err := e.newJob(s)
		if err != nil {
			return err
		}
		for _, d := range s.Deps {
			if submitted[d.Addr] {
				job.After = append(job.After, d.Addr)
			}
		}
		if byExec[ex] == nil {
			order = append(order, ex)
		}
		byExec[ex] = append(byExec[ex], job)
		submitted[s.Addr] = true
	}
	for _, ex := range order {
		if err := ex.Submit(ctx, byExec[ex]); err != nil {
			return fmt.Errorf("submit to %s: %w", ex.Name(), err)
		}
	}
	e.submitMu.Lock()
	e.submitted = submitted
	e.submitMu.Unlock()
	return nil
}

// wasSubmitted reports whether the step's job was submitted in this run.
func (e *Engine) wasSubmitted(addr string) bool {
	e.submitMu.Lock()
	defer e.submitMu.Unlock()
	return e.submitted[addr]
}

// submitNow submits a step's job when it was not submitted ahead (it
// needed a step this process ran); its dependencies have ended.
func (e *Engine) submitNow(ctx context.Context, ex Executor, s *Step) error {
	e.submitMu.Lock()
	done := e.submitted[s.Addr]
	if e.submitted == nil {
		e.submitted = map[string]bool{}
	}
	e.submitted[s.Addr] = true
	e.submitMu.Unlock()
	if done {
		return nil
	}
	job, err := e.newJob(s)
	if err != nil {
		return err
	}
	if err := ex.Submit(ctx, []*Job{job}); err != nil {
		return fmt.Errorf("submit to %s: %w", ex.Name(), err)
	}
	return nil
}

// newJob is the step's job, with a fresh log folder for its output.
func (e *Engine) newJob(s *Step) (*Job, error) {
	dir := e.LogDir(s)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("%s: empty its log folder: %w", s.Addr, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: create its log folder: %w", s.Addr, err)
	}
	return &Job{Step: s.Addr, Resources: s.Resources, Log: filepath.Join(dir, "job.log")}, nil
}

// cancelExecutors ends the jobs of every executor of the run.
func (e *Engine) cancelExecutors() {
	for _, ex := range e.opts.Executors {
		ex.Cancel()
	}
}

// runOnExecutor waits for the step's job and takes its result from the
// remote cache.
func (e *Engine) runOnExecutor(ctx context.Context, ex Executor, s *Step, key string) (*cache.ActionResult, error) {
	if err := e.submitNow(ctx, ex, s); err != nil {
		return nil, err
	}
	err := ex.Wait(ctx, s.Addr, func(line string) {
		e.emit(Event{Type: EventOutput, Step: s.Addr, Stream: "job", Message: line})
	})
	if err != nil {
		return nil, err
	}
	ar := e.pullRemote(ctx, s, key)
	if ar == nil {
		return nil, fmt.Errorf("its %s job succeeded but its result (key %s) is not in the remote cache %s: is the job's MLBUILD_REMOTE the same remote, and are the pipeline's sources the same on the node?", ex.Name(), shortDigest(key), e.remote.r)
	}
	return ar, nil
}
