package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mlbuild/mlbuild/engine"
	_ "github.com/mlbuild/mlbuild/steps/builtin" // the step kinds the pipelines use
)

// noopResult is one pipeline's no-op rerun, by mlbuild and by ninja.
type noopResult struct {
	steps          int
	mlCold, njCold time.Duration
	ml, nj         samples // nj is nil without ninja
	// plain is the reruns without --json, as a user types the command
	// (the summary and the eval's headline printed); nil when not timed.
	plain          samples
	maxBytesHashed int64 // the most input bytes one timed mlbuild rerun read
	// mlRSS and njRSS are the largest peak resident set size (bytes) of
	// one timed rerun.
	mlRSS, njRSS int64
	phases       *phases // where a no-op's time goes (nil: not measured)
}

// noopSet is every no-op benchmark of a run: twainbot.hcl and the
// generated pipelines, smallest first.
type noopSet struct {
	tw              *noopResult
	large           []*noopResult
	rows, bytesRows []row
}

// benchNoops measures twainbot.hcl's no-op and each generated pipeline's,
// with their rows.
func benchNoops(cfg *config) (*noopSet, error) {
	set := &noopSet{}
	var err error
	if set.tw, err = benchTwainbot(cfg); err != nil {
		return nil, fmt.Errorf("twainbot no-op: %w", err)
	}
	name := "No-op rerun, pipelines/twainbot.hcl"
	if cfg.twainbotVars != "" {
		name += " -var-file " + cfg.twainbotVars
	}
	set.rows = append(set.rows, set.tw.timeRow(name, ratioTarget(2)))
	if set.tw.plain != nil {
		plain := &noopResult{steps: set.tw.steps, ml: set.tw.plain, nj: set.tw.nj}
		set.rows = append(set.rows, plain.timeRow("… the same without --json, as typed (the summary and the eval's headline printed)", ratioTarget(2)))
	}
	set.bytesRows = append(set.bytesRows, set.tw.bytesRow("twainbot.hcl"))
	for _, n := range cfg.steps {
		r, err := benchLarge(cfg, n)
		if err != nil {
			return nil, fmt.Errorf("%d-step no-op: %w", n, err)
		}
		set.large = append(set.large, r)
		set.rows = append(set.rows, r.timeRow("No-op rerun, generated pipeline", ratioTarget(2)))
		set.bytesRows = append(set.bytesRows, r.bytesRow(thousands(n)+"-step pipeline"))
	}
	for _, r := range set.large {
		t := target{"— (context)", func(*noopResult) string { return "—" }}
		if r.steps >= 50_000 {
			t = rssTarget(3)
		}
		set.rows = append(set.rows, r.rssRow(t))
	}
	return set, nil
}

// coldText is the cold builds' times, for context.
func (s *noopSet) coldText() string {
	parts := []string{"twainbot.hcl " + s.tw.coldText()}
	for _, r := range s.large {
		parts = append(parts, thousands(r.steps)+" steps "+r.coldText())
	}
	return strings.Join(parts, "; ")
}

// breakdownText is the table of where the no-ops' time goes.
func (s *noopSet) breakdownText() string {
	names, phs := []string{"twainbot.hcl"}, []phases{*s.tw.phases}
	for _, r := range s.large {
		if r.phases != nil {
			names, phs = append(names, thousands(r.steps)+" steps"), append(phs, *r.phases)
		}
	}
	return renderBreakdown(names, phs, breakdownReps)
}

// text is what a -noop run prints after the table.
func (s *noopSet) text() string {
	return renderTable(s.bytesRows) + "\n" +
		fmt.Sprintf("Cold builds, for context (no target): %s.\n\n", s.coldText()) + s.breakdownText()
}

// rssTarget: mlbuild's peak RSS within x times ninja's.
func rssTarget(x float64) target {
	return target{fmt.Sprintf("≤ %g× ninja", x), func(r *noopResult) string {
		if r.nj == nil {
			return "n/a (no ninja)"
		}
		return yesNo(float64(r.mlRSS) <= x*float64(r.njRSS))
	}}
}

// rssRow is the reruns' peak memory beside ninja's.
func (r *noopResult) rssRow(t target) row {
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	rw := row{benchmark: fmt.Sprintf("Peak RSS of a no-op rerun, generated pipeline (%s steps, largest of %d more reruns under GNU time)", thousands(r.steps), rssRuns),
		mlbuild: mb(r.mlRSS), peer: "ninja not installed", ratio: "—", target: t.text, met: t.met(r)}
	if r.nj != nil {
		rw.peer = "ninja: " + mb(r.njRSS)
		rw.ratio = fmt.Sprintf("%.1f×", float64(r.mlRSS)/float64(r.njRSS))
	}
	return rw
}

// target is a benchmark's goal and how to check it.
type target struct {
	text string
	met  func(r *noopResult) string
}

// ratioTarget: mlbuild's median within x times ninja's.
func ratioTarget(x float64) target {
	return target{fmt.Sprintf("≤ %g× ninja", x), func(r *noopResult) string {
		if r.nj == nil {
			return "n/a (no ninja)"
		}
		return yesNo(float64(r.ml.median()) <= x*float64(r.nj.median()))
	}}
}

func (r *noopResult) timeRow(name string, t target) row {
	rw := row{benchmark: fmt.Sprintf("%s (%s steps, %d reruns)", name, thousands(r.steps), len(r.ml)),
		mlbuild: r.ml.String(), peer: "ninja not installed", ratio: "—", target: t.text, met: t.met(r)}
	if r.nj != nil {
		rw.peer = "ninja: " + r.nj.String()
		rw.ratio = fmt.Sprintf("%.1f×", float64(r.ml.median())/float64(r.nj.median()))
	}
	return rw
}

// coldText is the cold builds' times.
func (r *noopResult) coldText() string {
	if r.nj == nil {
		return "mlbuild " + dur(r.mlCold)
	}
	return fmt.Sprintf("mlbuild %s, ninja %s", dur(r.mlCold), dur(r.njCold))
}

func (r *noopResult) bytesRow(name string) row {
	return row{benchmark: "Input bytes re-read by a no-op rerun, " + name, mlbuild: fmt.Sprintf("%d B", r.maxBytesHashed),
		peer: "— (ninja reads no content: it compares mtimes)", ratio: "—", target: "0 B", met: yesNo(r.maxBytesHashed == 0)}
}

// benchTwainbot measures pipelines/twainbot.hcl, copied into a fresh
// workspace.
func benchTwainbot(cfg *config) (*noopResult, error) {
	ws := filepath.Join(cfg.tmp, "twainbot")
	if err := os.CopyFS(ws, os.DirFS(cfg.pipelines)); err != nil {
		return nil, fmt.Errorf("copy %s: %w", cfg.pipelines, err)
	}
	return measureNoop(cfg, ws, "twainbot.hcl", cfg.twainbotVars, "", true, true)
}

// breakdownMaxSteps is the largest generated pipeline whose no-op is
// split into phases: the split runs the pipeline in process without the
// stamp, three times, which at 50,000 steps takes minutes.
const breakdownMaxSteps = 10_000

// benchLarge measures a generated pipeline of n steps; its workspace is
// removed afterwards (at 50,000 steps it holds 1.6 GB) unless -keep.
func benchLarge(cfg *config, n int) (*noopResult, error) {
	ws := filepath.Join(cfg.tmp, fmt.Sprintf("large-%d", n))
	if !cfg.keep {
		defer os.RemoveAll(ws)
	}
	file, err := writeLargePipeline(ws, n)
	if err != nil {
		return nil, err
	}
	profile := ""
	if n == breakdownMaxSteps || n == slices.Max(cfg.steps) && n < breakdownMaxSteps {
		profile = cfg.cpuprofile
	}
	return measureNoop(cfg, ws, file, "", profile, n <= breakdownMaxSteps, false)
}

// breakdownReps is how many runs each phase of the breakdown is the
// median of.
const breakdownReps = 3

// measureNoop builds the pipeline file (relative to workspace ws) cold
// with mlbuild and ninja, then times cfg.runs no-op reruns of each,
// alternating the two so that both see the same machine conditions, and
// finally, when split is set, splits a no-op's time into phases (with a
// CPU profile written to profile unless it is ""). varFile, unless "", is
// a -var-file (relative to ws) every run of the pipeline gets. plain also
// times each rerun without --json, as a user types it.
func measureNoop(cfg *config, ws, file, varFile, profile string, split, plain bool) (*noopResult, error) {
	// Inputs were just written: give them an old mtime, like files checked
	// out long ago (mlbuild does not trust the stat of a file modified in
	// the 2 s before it was hashed, the racy-git rule).
	if err := backdate(ws); err != nil {
		return nil, err
	}
	// Backdating changed the files' ctime, and mlbuild's no-op stamp only
	// trusts sources unchanged for 2 s; in an edit-build cycle that has
	// long passed by the next rerun.
	time.Sleep(2100 * time.Millisecond)
	p, err := engine.Load(filepath.Join(ws, file), loadOptions(ws, varFile))
	if err != nil {
		return nil, err
	}
	r := &noopResult{steps: len(p.Steps)}
	ninjaDir := filepath.Join(ws, "ninja")
	if err := writeNinja(p, ninjaDir); err != nil {
		return nil, err
	}

	logf("%s: cold mlbuild run of %d steps", file, r.steps)
	sum, d, err := runMlbuild(cfg, ws, file, varFile)
	if err != nil {
		return nil, err
	}
	if sum.Ran != r.steps {
		return nil, fmt.Errorf("cold run ran %d of %d steps", sum.Ran, r.steps)
	}
	r.mlCold = d
	if cfg.ninja != "" {
		logf("%s: cold ninja run of %d edges", file, r.steps)
		if r.njCold, err = runNinja(cfg, ninjaDir, false); err != nil {
			return nil, err
		}
	}
	logf("%s: %d no-op reruns each", file, cfg.runs)
	for i := range cfg.runs {
		sum, d, err := runMlbuild(cfg, ws, file, varFile)
		if err != nil {
			return nil, err
		}
		if sum.Ran != 0 || sum.Cached != r.steps {
			return nil, fmt.Errorf("rerun %d was not a no-op: ran %d, cached %d of %d", i+1, sum.Ran, sum.Cached, r.steps)
		}
		r.maxBytesHashed = max(r.maxBytesHashed, sum.BytesHashed)
		r.ml = append(r.ml, d)
		if plain {
			// Between two --json no-ops, so that it is one too.
			d, err := runPlain(cfg, ws, file, varFile)
			if err != nil {
				return nil, err
			}
			r.plain = append(r.plain, d)
		}
		if cfg.ninja != "" {
			d, err := runNinja(cfg, ninjaDir, true)
			if err != nil {
				return nil, err
			}
			r.nj = append(r.nj, d)
		}
	}
	for range rssRuns {
		rss, err := peakRSSOf(ws, cfg.mlbuild, mlbuildArgs(cfg, file, varFile)...)
		if err != nil {
			return nil, err
		}
		r.mlRSS = max(r.mlRSS, rss)
		if cfg.ninja != "" {
			if rss, err = peakRSSOf(ninjaDir, cfg.ninja, "-j", fmt.Sprint(cfg.jobs)); err != nil {
				return nil, err
			}
			r.njRSS = max(r.njRSS, rss)
		}
	}
	logf("%s: cold mlbuild %s, cold ninja %s; no-op mlbuild %s, ninja %s; peak RSS mlbuild %d kB, ninja %d kB",
		file, dur(r.mlCold), dur(r.njCold), r.ml, r.nj, r.mlRSS/1000, r.njRSS/1000)
	if split {
		ph, err := breakdown(cfg, ws, file, varFile, breakdownReps, profile)
		if err != nil {
			return nil, err
		}
		ph.quick = max(r.ml.median()-ph.process, 0)
		r.phases = &ph
	}
	return r, nil
}

// runMlbuild runs `mlbuild run FILE --json` in ws and returns its summary
// and wall time (process start to exit, output included).
func runMlbuild(cfg *config, ws, file, varFile string) (engine.Summary, time.Duration, error) {
	return runBinary(cfg.mlbuild, cfg, ws, file, varFile)
}

// loadOptions are the options the benchmark loads a pipeline with in
// process: those of its mlbuild runs.
func loadOptions(ws, varFile string) engine.LoadOptions {
	o := engine.LoadOptions{Environ: []string{}}
	if varFile != "" {
		o.VarFiles = []string{filepath.Join(ws, varFile)}
	}
	return o
}

// rssRuns is how many more no-op reruns of each tool measure peak RSS.
const rssRuns = 3

// gnuTime is GNU time, which peakRSSOf runs commands under.
const gnuTime = "/usr/bin/time"

// peakRSSOf runs name with args in dir under GNU time and returns the
// command's peak resident set size in bytes (0 without GNU time). GNU time
// forks the command from its own small process: the rusage of a child the
// benchmark forks itself would count the benchmark's memory too, which
// the child shares until it execs.
func peakRSSOf(dir, name string, args ...string) (int64, error) {
	if _, err := os.Stat(gnuTime); err != nil {
		return 0, nil
	}
	out := filepath.Join(dir, ".bench-rss")
	defer os.Remove(out)
	cmd := exec.Command(gnuTime, append([]string{"-f", "%M", "-o", out, name}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s %v: %w\n%s", name, args, err, tail(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("GNU time wrote no peak RSS for %s", name)
	}
	kb, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("GNU time's peak RSS for %s: %w", name, err)
	}
	return kb * 1024, nil
}

// mlbuildArgs are the arguments of an mlbuild run of the pipeline.
func mlbuildArgs(cfg *config, file, varFile string) []string {
	args := []string{"run", file, "-j", fmt.Sprint(cfg.jobs), "--json"}
	if varFile != "" {
		args = append(args, "-var-file", varFile)
	}
	return args
}

// runBinary runs the given mlbuild binary on the pipeline.
func runBinary(bin string, cfg *config, ws, file, varFile string) (engine.Summary, time.Duration, error) {
	var sum engine.Summary
	cmd := exec.Command(bin, mlbuildArgs(cfg, file, varFile)...)
	cmd.Dir = ws
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return sum, d, fmt.Errorf("mlbuild run %s: %w\n%s", file, err, tail(stderr.String()))
	}
	out := bytes.TrimSpace(stdout.Bytes())
	last := out[bytes.LastIndexByte(out, '\n')+1:]
	var line struct {
		Type string `json:"type"`
		engine.Summary
	}
	if err := json.Unmarshal(last, &line); err != nil || line.Type != "summary" {
		return sum, d, fmt.Errorf("mlbuild run %s: the last line of --json is not a summary: %q", file, tail(string(last)))
	}
	return line.Summary, d, nil
}

// runPlain times mlbuild run on the pipeline without --json, its output
// discarded.
func runPlain(cfg *config, ws, file, varFile string) (time.Duration, error) {
	args := slices.DeleteFunc(mlbuildArgs(cfg, file, varFile), func(a string) bool { return a == "--json" })
	cmd := exec.Command(cfg.mlbuild, args...)
	cmd.Dir = ws
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("mlbuild %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String()))
	}
	return d, nil
}

// runNinja runs ninja in dir and returns its wall time; a rerun must find
// nothing to do.
func runNinja(cfg *config, dir string, noop bool) (time.Duration, error) {
	cmd := exec.Command(cfg.ninja, "-j", fmt.Sprint(cfg.jobs))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("ninja in %s: %w\n%s", dir, err, tail(out.String()))
	}
	if noop && !strings.Contains(out.String(), "no work to do") {
		return d, fmt.Errorf("ninja rerun in %s did work:\n%s", dir, tail(out.String()))
	}
	return d, nil
}

// writeNinja writes dir/build.ninja with one edge per step of p: the same
// input files (sources and upstream steps' outputs), one output file per
// declared output, each made by cat-ing the inputs into it.
func writeNinja(p *engine.Pipeline, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	outPath := func(s *engine.Step, name string) string {
		for _, o := range s.Schema.Outputs {
			if o.Name == name {
				return "out/" + s.Addr + "/" + o.Path
			}
		}
		return "out/" + s.Addr + "/" + name
	}
	var b strings.Builder
	b.WriteString("# Generated by mlbuild's bench: one edge per step of " + filepath.Base(p.File) + ".\n")
	b.WriteString("rule step\n  command = for o in $out; do cat $in /dev/null > $$o; done\n  description = $out\n\n")
	for _, s := range p.Steps {
		var outs, ins []string
		for _, o := range s.Schema.Outputs {
			outs = append(outs, ninjaEscape(outPath(s, o.Name)))
		}
		for _, a := range s.Schema.Attributes {
			for _, in := range s.Inputs[a.Name] {
				if in.From != nil {
					ins = append(ins, ninjaEscape(outPath(in.From, in.Output)))
					continue
				}
				rel, err := filepath.Rel(dir, in.Path)
				if err != nil {
					return err
				}
				ins = append(ins, ninjaEscape(rel))
			}
		}
		fmt.Fprintf(&b, "build %s: step %s\n", strings.Join(outs, " "), strings.Join(ins, " "))
	}
	return os.WriteFile(filepath.Join(dir, "build.ninja"), []byte(b.String()), 0o644)
}

func ninjaEscape(s string) string {
	return strings.NewReplacer("$", "$$", " ", "$ ", ":", "$:").Replace(s)
}

// backdate gives every file under dir an mtime an hour ago.
func backdate(dir string) error {
	old := time.Now().Add(-time.Hour)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
