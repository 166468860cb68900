package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/engine/provenance"
	"github.com/mlbuild/mlbuild/internal/version"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stdout, stderr)
	var c common
	c.register(fs)
	var targets, rebuild listFlag
	fs.Var(&targets, "target", "build this step (KIND.NAME) and what it needs (repeatable; default: every step)")
	fs.Var(&rebuild, "rebuild", "run this step (KIND.NAME) even if it is cached (repeatable)")
	jobs := fs.Int("j", runtime.NumCPU(), "run at most N steps at once (at least 1)")
	every := fs.Duration("progress-every", defaultProgressEvery, "when stderr is not a terminal (a CI log, a file), print each running step's progress this often (0: never)")
	locked := fs.Bool("locked", false, "fail if any step's key or outputs differ from mlbuild.lock, and leave it unchanged (for CI)")
	executor := fs.String("executor", "", "where stale steps run: local (this process) or slurm (Slurm jobs), whatever the steps say (default: each step's executor, local unless it names one)")
	file, rest, err := c.parseFile(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("run takes one pipeline file; unexpected %q (use --target KIND.NAME to pick steps)", rest[0])
	}
	if *every < 0 {
		fmt.Fprintf(stderr, "mlbuild run: --progress-every %s: must not be negative (0 turns the progress lines off)\n", *every)
		return exitError{2}
	}
	if *jobs < 1 {
		fmt.Fprintf(stderr, "mlbuild run: -j %d: N must be at least 1 (without -j, up to the number of CPUs, %d here, steps run at once)\n", *jobs, runtime.NumCPU())
		return exitError{2}
	}
	if err := checkExecutorFlag(*executor); err != nil {
		fmt.Fprintln(stderr, "mlbuild run: "+err.Error())
		return exitError{2}
	}
	// Loading evaluates only what the targets need.
	c.targets = targets
	out := newRunPrinterWith(stdout, stderr, printerOptions{json: c.json, every: *every, verbose: c.verbose})
	opts := engine.Options{Jobs: *jobs, Targets: targets, Rebuild: rebuild, OnEvent: out.event, Workspace: c.workspace,
		Executor: *executor, Start: processStart}
	memo := newLockMemo(c.workspace, file)
	// A no-op whose stamp shows that nothing loading reads has changed
	// needs neither the pipeline nor, when the memo holds, the lockfile.
	p, sum := engine.QuickNoop(file, c.loadOptions(), opts)
	var lock *pipelineLock
	var runErr error
	if sum == nil {
		if p, err = c.load(file, stderr); err != nil {
			return err
		}
		execs, err := c.executors(p, *executor)
		if err != nil {
			fmt.Fprintln(stderr, "mlbuild run: "+err.Error())
			return exitError{2}
		}
		opts.Executors = execs
		if *locked {
			// --locked checks each step against the lockfile as it
			// goes; otherwise the lockfile is read only if the run
			// turns out to need updating it (a no-op whose memo holds
			// does not).
			if lock, err = openLock(p, true, stderr); err != nil {
				return err
			}
			opts.Locked = lock.locked()
		}
		if sum = engine.FastNoop(p, opts); sum == nil {
			sum, runErr = c.build(ctx, p, opts, out)
		}
	}
	printErr := out.close()
	if sum == nil {
		return runErr
	}
	partial := len(targets) > 0
	skipLock := !partial && runErr == nil && memo.holds(sum.Stamp)
	if lock == nil && !skipLock {
		if lock, err = openLock(p, *locked, stderr); err != nil {
			return err
		}
	}
	if *locked && !skipLock {
		if problems := lock.check(sum, partial); len(problems) > 0 {
			fmt.Fprintf(stderr, "mlbuild: the build differs from %s:\n", lock.path)
			for _, m := range problems {
				fmt.Fprintln(stderr, "  "+m)
			}
			return exitError{1}
		}
	}
	if runErr != nil {
		if !c.json {
			fmt.Fprintln(stderr, "mlbuild: "+runErr.Error())
		}
		return exitError{1}
	}
	if !*locked && !skipLock {
		if err := lock.update(sum, partial); err != nil {
			return err
		}
	}
	if !skipLock && !partial {
		memo.record(sum.Stamp)
	}
	if !c.json {
		announce(stdout, p, sum, c.workspace)
	}
	return printErr
}

// announce prints where the artifacts a person opens (reports) are, and
// the headline metrics their kinds declare, for the steps this run built
// or found cached; ws is the workspace ("": the working directory).
func announce(w io.Writer, p *engine.Pipeline, sum *engine.Summary, ws string) {
	built := map[string]bool{}
	for _, r := range sum.Steps {
		built[r.Step] = r.Status == engine.StatusRan || r.Status == engine.StatusCached
	}
	for _, s := range p.Steps {
		if len(sum.Steps) > 0 && !built[s.Addr] {
			continue
		}
		for _, o := range s.Schema.Outputs {
			if o.Announce != "" {
				fmt.Fprintf(w, "%s %s: %s\n", s.Addr, o.Name, engine.OutputName(s, o.Name)+"/"+o.Announce)
			}
			if o.Headline == nil {
				continue
			}
			if o.Announce == "" {
				fmt.Fprintf(w, "%s %s:\n", s.Addr, o.Name)
			}
			f, err := openWorkspaceHeadline(ws, s, o)
			if err == nil {
				err = writeHeadline(w, o.Headline, f, "  ")
				_ = f.Close() // read-only
			}
			if err != nil {
				fmt.Fprintf(w, "  (no metrics: %v)\n", err)
			}
		}
	}
}

// closeInto closes c (the engine or the cache) when a command returns, and
// makes Close's error the command's when it had none: Close flushes the
// cache's database, so a failure there can lose what the command stored.
func closeInto(err *error, c io.Closer) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// build opens the engine (with the remote cache, if any) and runs it.
func (c *common) build(ctx context.Context, p *engine.Pipeline, opts engine.Options, out *runPrinter) (_ *engine.Summary, err error) {
	e, err := c.open(ctx, p, opts, out.logWriter())
	if err != nil {
		return nil, err
	}
	defer closeInto(&err, e)
	closeRemote, err := useRemote(ctx, p, e)
	if err != nil {
		return nil, err
	}
	defer closeRemote()
	return e.Run(ctx)
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("verify", stdout, stderr)
	c := common{stepArgs: true}
	c.register(fs)
	p, addrs, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	e, err := c.open(ctx, p, engine.Options{}, stderr)
	if err != nil {
		return err
	}
	defer closeInto(&err, e)
	results, err := e.Verify(ctx, addrs)
	if err != nil {
		return err
	}
	bad := 0
	for _, r := range results {
		if c.json {
			if err := json.NewEncoder(stdout).Encode(struct {
				Type string `json:"type"`
				engine.VerifyResult
			}{"verify", r}); err != nil {
				return err
			}
		}
		if !r.Reproducible {
			bad++
		}
		if c.json {
			continue
		}
		if r.Reproducible {
			fmt.Fprintf(stdout, "reproducible      %-28s %d outputs identical (%s)\n", r.Step, len(r.Outputs), fmtSeconds(r.Seconds))
			continue
		}
		fmt.Fprintf(stdout, "NOT REPRODUCIBLE  %s\n", r.Step)
		for _, o := range r.Outputs {
			if !o.Same {
				fmt.Fprintf(stdout, "    %s: cached sha256:%s, rebuilt sha256:%s; first difference: %s\n", o.Output, o.Cached, o.Rebuilt, o.FirstDiff)
			}
		}
	}
	if !c.json {
		fmt.Fprintf(stdout, "verify: %d reproducible, %d not\n", len(results)-bad, bad)
	}
	if bad > 0 {
		return exitError{1}
	}
	return nil
}

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("plan", stdout, stderr)
	var c common
	c.register(fs)
	var targets, rebuild listFlag
	fs.Var(&targets, "target", "plan this step (KIND.NAME) and what it needs (repeatable)")
	fs.Var(&rebuild, "rebuild", "plan this step as forced (repeatable)")
	p, _, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	e, err := c.open(ctx, p, engine.Options{Targets: targets, Rebuild: rebuild, ReadOnly: true}, stderr)
	if err != nil {
		return err
	}
	defer closeInto(&err, e)
	plan, err := e.Plan()
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		for _, ent := range plan {
			if err := enc.Encode(struct {
				Type string `json:"type"`
				engine.PlanEntry
			}{"plan", ent}); err != nil {
				return err
			}
		}
		return nil
	}
	counts := map[engine.Action]int{}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, ent := range plan {
		counts[ent.Action]++
		reason := strings.Join(ent.Reasons, "; ")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", ent.Action, ent.Step, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "plan: %d to run, %d maybe (if an upstream output changes), %d to restore, %d cached\n",
		counts[engine.ActionRun], counts[engine.ActionMaybe], counts[engine.ActionRestore], counts[engine.ActionCached])
	return nil
}

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("explain", stdout, stderr)
	c := common{stepArgs: true}
	c.register(fs)
	p, rest, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("explain needs one step: mlbuild explain [FILE] KIND.NAME")
	}
	e, err := c.open(ctx, p, engine.Options{ReadOnly: true}, stderr)
	if err != nil {
		return err
	}
	defer closeInto(&err, e)
	ex, err := e.Explain(rest[0])
	if err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(stdout).Encode(ex)
	}
	key := ex.Key
	if key == "" {
		key = "(not known yet)"
	}
	fmt.Fprintf(stdout, "%s: %s\nkey       %s\ncompared  %s", ex.Step, ex.Action, key, ex.Against)
	if ex.ComparedWith != "" {
		fmt.Fprintf(stdout, " (key %s)", ex.ComparedWith)
	}
	fmt.Fprintln(stdout)
	for _, r := range ex.Reasons {
		fmt.Fprintln(stdout, "reason    "+r)
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tcomponent\tnow\tbefore")
	for _, r := range ex.Rows {
		mark := ""
		if r.Changed {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, r.Component, clip(r.Current), clip(r.Previous))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if ex.Conclusion != "" {
		fmt.Fprintln(stdout, ex.Conclusion)
	}
	for _, ch := range ex.Changes {
		fmt.Fprintln(stdout, "changed: "+ch.String())
	}
	return nil
}

func clip(s string) string {
	if len(s) > 70 {
		return s[:67] + "..."
	}
	return s
}

func cmdGraph(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("graph", stdout, stderr)
	var c common
	c.register(fs)
	format := fs.String("format", "dot", "dot, mermaid or json")
	p, _, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	switch *format {
	case "dot":
		fmt.Fprint(stdout, p.DOT())
	case "mermaid":
		fmt.Fprint(stdout, p.Mermaid())
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p.Graph())
	default:
		return fmt.Errorf("--format %q: use dot, mermaid or json", *format)
	}
	return nil
}

func cmdShow(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("show", stdout, stderr)
	c := common{stepArgs: true}
	c.register(fs)
	prov := fs.Bool("provenance", false, "print the step's provenance as an in-toto statement with an SLSA v1 predicate")
	p, rest, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("show needs one step: mlbuild show [FILE] KIND.NAME")
	}
	e, err := c.open(ctx, p, engine.Options{ReadOnly: true}, stderr)
	if err != nil {
		return err
	}
	defer closeInto(&err, e)
	info, err := e.Show(rest[0])
	if err != nil {
		return err
	}
	if *prov {
		paths := map[string]string{}
		for n, o := range info.Outputs {
			paths[n] = o.Path
		}
		b, err := provenance.Statement(e.PipelineID(), info.Result, paths)
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	if c.json {
		return json.NewEncoder(stdout).Encode(info)
	}
	fmt.Fprintf(stdout, "%s\nkey  %s\n\noutputs:\n", info.Step, info.Key)
	names := make([]string, 0, len(info.Outputs))
	for n := range info.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, n := range names {
		o := info.Outputs[n]
		fmt.Fprintf(tw, "  %s\t%s\tsha256:%s\t%s\n", n, o.Path, o.Digest, humanize.IBytes(uint64(o.Size)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range p.Steps {
		if s.Addr != info.Step {
			continue
		}
		for _, o := range headlineOutputs(s) {
			oi, ok := info.Outputs[o.Name]
			if !ok {
				continue
			}
			name := oi.Path
			if o.Headline.File != "" {
				name += "/" + o.Headline.File
			}
			fmt.Fprintf(stdout, "\nmetrics (%s):\n", name)
			data, err := readStoredHeadline(e.Store(), o, oi)
			if err == nil {
				err = writeHeadline(stdout, o.Headline, bytes.NewReader(data), "  ")
			}
			if err != nil {
				fmt.Fprintf(stdout, "  (cannot read them: %v)\n", err)
			}
		}
	}
	pv := info.Provenance
	fmt.Fprintf(stdout, "\nprovenance:\n  mlbuild %s (%s) on %s, device %s\n  started %s, took %.2fs\n",
		pv.MlbuildVersion, pv.GoVersion, pv.Host, pv.Device, pv.Started.Format(time.RFC3339), pv.Seconds)
	roles := make([]string, 0, len(info.Components.Inputs))
	for r := range info.Components.Inputs {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	step, _ := p.Step(info.Step)
	for _, r := range roles {
		named := step != nil && len(step.Inputs[r]) > 0 && step.Inputs[r][0].Key != ""
		for i, in := range info.Components.Inputs[r] {
			name := in.Name
			if ps := pv.InputPaths[r]; i < len(ps) {
				name = ps[i]
			}
			label := fmt.Sprintf("%s[%d]", r, i)
			if named {
				label = fmt.Sprintf("%s[%q]", r, in.Name)
			}
			fmt.Fprintf(stdout, "  input %s %s sha256:%s\n", label, name, in.Digest)
		}
	}
	cfg := make([]string, 0, len(info.Components.Config))
	for k := range info.Components.Config {
		cfg = append(cfg, k)
	}
	sort.Strings(cfg)
	for _, k := range cfg {
		fmt.Fprintf(stdout, "  config %s = %s\n", k, info.Components.Config[k])
	}
	if len(info.Logs) > 0 {
		fmt.Fprintf(stdout, "\nlogs of its last run here:\n")
		for _, l := range info.Logs {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
	}
	for _, n := range sortedKeys(info.Reports) {
		var v any
		_ = json.Unmarshal(info.Reports[n], &v)
		b, _ := json.MarshalIndent(v, "  ", "  ")
		fmt.Fprintf(stdout, "\n%s (%s):\n  %s\n", n, info.Outputs[n].Path, b)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func cmdCache(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) > 0 && (args[0] == "push" || args[0] == "pull") {
		return cmdCacheTransfer(ctx, args[0], args[1:], stdout, stderr)
	}
	const subs = "mlbuild cache stats | gc [--max-size SIZE] [--older-than AGE] [--dry-run] | push [FILE] [--target KIND.NAME] | pull [FILE] [--target KIND.NAME]"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintf(stdout, "Usage:\n%s\n\nRun \"mlbuild cache SUBCOMMAND -h\" for a subcommand's flags.\n", strings.Join(synopsis("cache"), "\n"))
		return nil
	}
	if len(args) == 0 {
		return fmt.Errorf("cache needs a subcommand: %s", subs)
	}
	if args[0] != "stats" && args[0] != "gc" {
		return fmt.Errorf("unknown cache subcommand %q.%s Use %s", args[0], engine.Suggest(args[0], []string{"stats", "gc", "push", "pull"}), subs)
	}
	sub := args[0]
	fs := newFlagSet("cache "+sub, stdout, stderr)
	var c common
	c.register(fs)
	maxSize := fs.String("max-size", "", "gc: shrink the cache to this size (e.g. 10GiB), least recently used first")
	olderThan := fs.String("older-than", "", "gc: remove results unused for this long (e.g. 30d, 72h)")
	dryRun := fs.Bool("dry-run", false, "gc: report what would be removed")
	if _, err := parseInterleaved(fs, args[1:]); err != nil {
		return flagError(err)
	}
	ws := c.workspace
	if ws == "" {
		ws, _ = os.Getwd()
	}
	var opts cache.GCOptions
	var stateRes engine.StateGCResult
	if sub == "gc" {
		if opts, err = gcOptions(*maxSize, *olderThan, *dryRun); err != nil {
			return err
		}
		// The workspace's stale checkpoint folders, before the cache is
		// opened: the workspace is always locked first.
		stateRes, err = engine.CollectState(ctx, ws, engine.StateGCOptions{OlderThan: opts.OlderThan, DryRun: opts.DryRun, NoWait: c.noWait, Log: newLogger(stderr, c.verbose)})
		if err != nil {
			return err
		}
	}
	// stats only reads: it does not wait for a run (see engine.Options.ReadOnly).
	store, err := cache.Open(ctx, engine.CacheDir(ws, ""), cache.Options{Log: newLogger(stderr, c.verbose), NoWait: c.noWait || sub == "stats"})
	if err != nil {
		if sub == "stats" && errors.Is(err, cache.ErrLocked) {
			err = fmt.Errorf("%w; commands that only read the cache do not wait for it: run this one again when that process has finished", err)
		}
		return err
	}
	defer closeInto(&err, store)
	if sub == "stats" {
		st, err := store.Stats()
		if err != nil {
			return err
		}
		if c.json {
			return json.NewEncoder(stdout).Encode(st)
		}
		fmt.Fprintf(stdout, "cache %s\n  %d action results, %d pipelines' latest runs\n  %d blobs, %s of content\n  %d stat-cache entries\n  database: %s LSM + %s value log\n",
			store.Dir(), st.Actions, st.Pipelines, st.Blobs, humanize.IBytes(uint64(st.BlobBytes)), st.StatEntries,
			humanize.IBytes(uint64(st.LSMBytes)), humanize.IBytes(uint64(st.VlogBytes)))
		if st.OrphanChunks > 0 {
			fmt.Fprintf(stdout, "  %d orphan chunks from interrupted writes (gc removes them)\n", st.OrphanChunks)
		}
		return nil
	}
	res, err := store.GC(opts)
	if err != nil {
		return err
	}
	// The parse cache's entries of files no load read for the age (they
	// need no lock: an entry only spares a load a parse).
	parseRes, err := engine.CollectParseCache(store.Dir(), opts.OlderThan, opts.DryRun)
	if err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(stdout).Encode(struct {
			cache.GCResult
			engine.StateGCResult
			engine.ParseCacheGCResult
		}{res, stateRes, parseRes})
	}
	verb := "removed"
	if opts.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(stdout, "gc %s %d action results and %d blobs (%s); kept %d results, %d of them protected by pipelines' latest runs\n",
		verb, res.ActionsRemoved, res.BlobsRemoved, humanize.IBytes(uint64(res.BytesFreed)), res.ActionsKept, res.Protected)
	if stateRes.Removed > 0 {
		fmt.Fprintf(stdout, "gc %s %d stale checkpoint folders from %s/.state (%s)\n", verb, stateRes.Removed, engine.BuildDirName, humanize.IBytes(uint64(stateRes.Bytes)))
	}
	if parseRes.Removed > 0 {
		fmt.Fprintf(stdout, "gc %s %d parse cache entries (%s)\n", verb, parseRes.Removed, humanize.IBytes(uint64(parseRes.Bytes)))
	}
	return nil
}

// gcOptions reads cache gc's flags.
func gcOptions(maxSize, olderThan string, dryRun bool) (cache.GCOptions, error) {
	opts := cache.GCOptions{DryRun: dryRun}
	if maxSize != "" {
		n, err := humanize.ParseBytes(maxSize)
		if err != nil {
			return opts, fmt.Errorf("--max-size %q: %w (e.g. 500MB, 10GiB)", maxSize, err)
		}
		opts.MaxBytes = int64(n)
	}
	if olderThan != "" {
		d, err := parseAge(olderThan)
		if err != nil {
			return opts, err
		}
		opts.OlderThan = d
	}
	return opts, nil
}

// cmdCacheTransfer moves a pipeline's artifacts to (push) or from (pull)
// the remote cache.
func cmdCacheTransfer(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("cache "+sub, stdout, stderr)
	var c common
	c.register(fs)
	var targets listFlag
	fs.Var(&targets, "target", "only this step (KIND.NAME) and what it needs (repeatable)")
	p, _, err := c.parsePipeline(fs, args, stderr)
	if err != nil {
		return err
	}
	if url, _ := remoteConfig(p); url == "" {
		return fmt.Errorf("no remote cache configured: add cache { remote = \"...\" } to %s or set MLBUILD_REMOTE", p.File)
	}
	e, err := c.open(ctx, p, engine.Options{Targets: targets}, stderr)
	if err != nil {
		return err
	}
	defer closeInto(&err, e)
	closeRemote, err := useRemote(ctx, p, e)
	if err != nil {
		return err
	}
	defer closeRemote()
	start := time.Now()
	var st engine.TransferStats
	var absent []string
	if sub == "push" {
		st, err = e.Push(ctx)
	} else {
		st, absent, err = e.Pull(ctx)
	}
	secs := time.Since(start).Seconds()
	if c.json {
		_ = json.NewEncoder(stdout).Encode(struct {
			Type string `json:"type"`
			engine.TransferStats
			Missing []string `json:"missing,omitempty"`
			Seconds float64  `json:"seconds"`
		}{sub, st, absent, secs})
	} else {
		fmt.Fprintf(stdout, "%s: %d blobs uploaded (%s), %d downloaded (%s), %d already there, in %s\n", sub,
			st.Uploaded, humanize.IBytes(uint64(st.BytesUp)), st.Downloaded, humanize.IBytes(uint64(st.BytesDown)), st.Skipped, fmtSeconds(secs))
		for _, a := range absent {
			fmt.Fprintf(stdout, "not on the remote: %s\n", a)
		}
	}
	return err
}

// parseAge reads a duration, accepting a "d" suffix for days.
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err == nil && n >= 0 {
			return time.Duration(n * 24 * float64(time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--older-than %q: use a duration such as 30d, 72h or 90m", s)
	}
	return d, nil
}

func cmdVersion(stdout io.Writer) error {
	fmt.Fprintf(stdout, "mlbuild %s (%s %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
