package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/engine/slurm"
)

// executors makes the executors the pipeline's steps (or --executor) name:
// today the Slurm one. workspace is the run's workspace ("" the working
// directory).
func (c *common) executors(p *engine.Pipeline, override string) (map[string]engine.Executor, error) {
	names := map[string]bool{}
	for _, s := range p.Steps {
		if s.Executor != "" && s.Executor != engine.LocalExecutor {
			names[s.Executor] = true
		}
	}
	if err := checkExecutorFlag(override); err != nil {
		return nil, err
	}
	if override == slurm.Name {
		names = map[string]bool{slurm.Name: true}
	}
	if override == engine.LocalExecutor || len(names) == 0 {
		return nil, nil
	}
	ws, err := filepath.Abs(c.workspace)
	if err != nil {
		return nil, err
	}
	out := map[string]engine.Executor{}
	for name := range names {
		if name != slurm.Name {
			cfg := p.Executors[name]
			return nil, cfg.Locate("", fmt.Errorf("mlbuild knows one executor, %q; rename the block or add the kind", slurm.Name))
		}
		cfg := slurm.Config{}
		if block, ok := p.Executors[name]; ok {
			if cfg, err = slurm.ParseConfig(block); err != nil {
				return nil, err
			}
		}
		x, err := slurm.New(cfg, slurm.Run{Pipeline: p.File, Vars: c.vars, VarFiles: absAll(c.varFiles), StateDir: slurm.StateDir(ws)})
		if err != nil {
			return nil, err
		}
		out[name] = x
	}
	return out, nil
}

// checkExecutorFlag says what is wrong with --executor's value.
func checkExecutorFlag(override string) error {
	switch override {
	case "", engine.LocalExecutor, slurm.Name:
		return nil
	}
	return fmt.Errorf("--executor %q: use %q or %q", override, engine.LocalExecutor, slurm.Name)
}

func absAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		if a, err := filepath.Abs(p); err == nil {
			out[i] = a
		} else {
			out[i] = p
		}
	}
	return out
}

// cmdExecStep builds one step on a cluster node, for an executor's job: its
// dependencies must be in the remote cache (their jobs ran first); it runs
// the step in a scratch workspace (the working directory) with a cache of
// its own there, and uploads the result to the remote.
func cmdExecStep(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("exec-step", stdout, stderr)
	var c common
	c.register(fs)
	step := fs.String("step", "", "the step (KIND.NAME) to build")
	stateDir := fs.String("state-dir", "", "folder of checkpoints shared with the submitter, so that a requeued job resumes")
	p, rest, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 || *step == "" {
		fmt.Fprintln(stderr, "mlbuild exec-step: usage: mlbuild exec-step --step KIND.NAME [-var ...] PIPELINE")
		return exitError{2}
	}
	out := newRunPrinterWith(stdout, stderr, printerOptions{every: defaultProgressEvery})
	opts := engine.Options{Targets: []string{*step}, BuildOnly: []string{*step}, Executor: engine.LocalExecutor,
		OnEvent: out.event, StateDir: *stateDir, CacheDir: filepath.Join(".mlbuild", "cache")}
	opts.Workspace, opts.NoWait = c.workspace, c.noWait
	// The job's log is all that is kept of it: it says what a local run
	// says only with -v (a resume from a checkpoint, say).
	opts.Log = newLevelLogger(out.logWriter(), slog.LevelInfo)
	if c.verbose {
		opts.Log = newLogger(out.logWriter(), true)
	}
	e, err := engine.Open(ctx, p, opts)
	if err != nil {
		return err
	}
	defer closeInto(&err, e)
	closeRemote, err := useRemote(ctx, p, e)
	if err != nil {
		return err
	}
	defer closeRemote()
	if !e.HasRemote() {
		return errors.New("exec-step takes its inputs from the remote cache and uploads its result there: set MLBUILD_REMOTE (or the pipeline's cache block)")
	}
	_, runErr := e.Run(ctx)
	if perr := out.close(); runErr == nil {
		runErr = perr
	}
	return runErr
}
