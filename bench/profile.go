package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mlbuild/mlbuild/engine"
)

// phases splits a no-op rerun's time: the process (exec, Go runtime and
// package initialization, exit: what `mlbuild version` costs) and, in
// process, the engine's phases as `mlbuild run` calls them.
type phases struct {
	process time.Duration
	// quick is a no-op's own work: the timed reruns' median less process
	// (QuickNoop cannot run in the benchmark's process, whose executable
	// is not the one that wrote the stamp).
	quick                        time.Duration
	load, noop, open, run, close time.Duration
	// cachedLoad is engine.Load through the parse cache, every file
	// decoded (as a command loads a pipeline it loaded before).
	cachedLoad time.Duration
}

// breakdown measures the phases of a no-op rerun of file in ws, each the
// median of reps runs; with profile set it writes a CPU profile of the
// in-process runs there (go tool pprof -top FILE).
func breakdown(cfg *config, ws, file, varFile string, reps int, profile string) (ph phases, err error) {
	var proc samples
	for range reps {
		start := time.Now()
		if err := exec.Command(cfg.mlbuild, "version").Run(); err != nil {
			return ph, fmt.Errorf("mlbuild version: %w", err)
		}
		proc = append(proc, time.Since(start))
	}
	ph.process = proc.median()
	if profile != "" {
		f, cerr := os.Create(profile)
		if cerr != nil {
			return ph, cerr
		}
		// Runs after StopCPUProfile below has written the profile out.
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("write CPU profile %s: %w", profile, cerr)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			return ph, err
		}
		defer pprof.StopCPUProfile()
	}
	var load, noop, open, run, closing samples
	ctx := context.Background()
	for range reps {
		t := time.Now()
		p, err := engine.Load(filepath.Join(ws, file), loadOptions(ws, varFile))
		if err != nil {
			return ph, err
		}
		load, t = append(load, time.Since(t)), time.Now()
		if engine.FastNoop(p, engine.Options{Workspace: ws}) == nil {
			return ph, fmt.Errorf("the no-op stamp of %s did not hold", file)
		}
		noop, t = append(noop, time.Since(t)), time.Now()
		e, err := engine.Open(ctx, p, engine.Options{Workspace: ws, Jobs: cfg.jobs})
		if err != nil {
			return ph, err
		}
		open, t = append(open, time.Since(t)), time.Now()
		sum, err := e.Run(ctx)
		run, t = append(run, time.Since(t)), time.Now()
		if cerr := e.Close(); err == nil {
			err = cerr
		}
		closing = append(closing, time.Since(t))
		if err != nil {
			return ph, err
		}
		if sum.Ran != 0 || sum.BytesHashed != 0 {
			return ph, fmt.Errorf("in-process rerun of %s was not a no-op: ran %d steps, hashed %d bytes", file, sum.Ran, sum.BytesHashed)
		}
	}
	ph.load, ph.noop, ph.open, ph.run, ph.close = load.median(), noop.median(), open.median(), run.median(), closing.median()
	// The same loads through the parse cache: the first writes its
	// entries (files under 16 KiB are parsed all the same).
	lo := loadOptions(ws, varFile)
	lo.ParseCache = engine.ParseCacheDir(engine.CacheDir(ws, ""))
	var cached samples
	for i := range reps + 1 {
		t := time.Now()
		if _, err := engine.Load(filepath.Join(ws, file), lo); err != nil {
			return ph, err
		}
		if d := time.Since(t); i > 0 {
			cached = append(cached, d)
		}
		engine.FlushParseCache()
	}
	ph.cachedLoad = cached.median()
	if profile != "" {
		logf("CPU profile of %d in-process no-ops of %s written to %s (go tool pprof -top %s)", reps, file, profile, profile)
	}
	return ph, nil
}

// renderBreakdown tables the phases of each benchmark's no-op, side by side.
func renderBreakdown(names []string, phs []phases, reps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| where a no-op rerun's time goes (median of %d) | %s |\n", reps, strings.Join(names, " | "))
	b.WriteString("|---" + strings.Repeat("|---", len(names)) + "|\n")
	line := func(what string, f func(phases) time.Duration) {
		cells := make([]string, len(phs))
		for i, ph := range phs {
			cells[i] = dur(f(ph))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", what, strings.Join(cells, " | "))
	}
	line("process: exec, Go runtime and package init, exit (`mlbuild version`)", func(p phases) time.Duration { return p.process })
	line("the rest of a no-op `run`: engine.QuickNoop, reading the stamp, a stat per file, printing (the reruns' median less the process's cost)", func(p phases) time.Duration { return p.quick })
	line("when loading is needed: engine.Load, parse and evaluate the pipeline", func(p phases) time.Duration { return p.load })
	line("… the same load through the parse cache, every file decoded (`plan`, `graph`, `run --target` of a pipeline loaded before; files under 16 KiB are parsed)", func(p phases) time.Duration { return p.cachedLoad })
	line("… then engine.FastNoop: check the stamp against the loaded pipeline (a no-op `run` after an edit that changes no key stops here)", func(p phases) time.Duration { return p.noop })
	line("without the stamp: engine.Open, open the cache", func(p phases) time.Duration { return p.open })
	line("without the stamp: Engine.Run, keys, cache lookups, check build/", func(p phases) time.Duration { return p.run })
	line("without the stamp: Engine.Close, close the cache", func(p phases) time.Duration { return p.close })
	return b.String()
}
