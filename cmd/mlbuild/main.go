// Command mlbuild builds ML artifacts from a declarative pipeline: it hashes
// every input, reruns only the steps a change made stale and keeps every
// output in a content-addressed cache.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/internal/lazyre"
	_ "github.com/mlbuild/mlbuild/steps/builtin" // registers the built-in step kinds
)

const usage = `mlbuild builds ML artifacts from a pipeline of steps, rerunning only what changed.

Usage:
  mlbuild run [FILE] [--target KIND.NAME]... [-var NAME=VALUE]... [-var-file F]... [-j N] [--rebuild KIND.NAME]... [--locked] [--executor local|slurm] [--json]
  mlbuild plan [FILE]               which steps would run, and why
  mlbuild explain [FILE] KIND.NAME  a step's key components beside its last cached run's
  mlbuild graph [FILE] [--format dot|mermaid|json]
  mlbuild show [FILE] KIND.NAME [--provenance]   outputs, digests, headline metrics, provenance (in-toto/SLSA), report
  mlbuild verify [FILE] [KIND.NAME...]           re-execute steps ignoring the cache; compare outputs
  mlbuild cache stats | cache gc [--max-size SIZE] [--older-than AGE] [--dry-run]
  mlbuild cache push|pull [FILE] [--target KIND.NAME]...   move artifacts to/from the remote cache
  mlbuild tokenize --model DIR [--special]      JSON lines {"text"} on stdin -> {"text","ids"}
  mlbuild generate --model DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--chat]
  mlbuild chat --model DIR [--system TEXT]      a conversation with the model and the get_weather tool
  mlbuild exec-step --step KIND.NAME [-var ...] FILE   build one step on a cluster node (what a Slurm job runs)
  mlbuild version

FILE defaults to the only .hcl file with steps in the working directory.
Outputs go to build/KIND.NAME/ and the cache to .mlbuild/cache under the
working directory (--workspace DIR and MLBUILD_CACHE_DIR change them). A
remote cache comes from the pipeline's cache block or MLBUILD_REMOTE
(MLBUILD_REMOTE=off disables it). run records keys and output digests in
mlbuild.lock beside the pipeline. Run "mlbuild COMMAND -h" (or "mlbuild
help COMMAND") for a command's flags.
`

// processStart is when the process began running Go code (package
// initialization), near enough to its start: run's summary counts its
// seconds from it, so they include loading the pipeline.
var processStart = time.Now()

// exitError carries a process exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code := exitCode(err)
	if code == 1 && !errors.As(err, new(exitError)) {
		fmt.Fprintln(os.Stderr, "mlbuild: "+err.Error())
	}
	os.Exit(code)
}

// exitCode is the process exit status for dispatch's error: 0 for none
// and for -h (flag.ErrHelp: the usage was asked for and printed), an
// exitError's code, else 1 (main prints the error).
func exitCode(err error) int {
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// Loading a pipeline caches the files it parsed in the background.
	defer engine.FlushParseCache()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "plan":
		return cmdPlan(ctx, rest, stdout, stderr)
	case "explain":
		return cmdExplain(ctx, rest, stdout, stderr)
	case "graph":
		return cmdGraph(rest, stdout, stderr)
	case "show":
		return cmdShow(ctx, rest, stdout, stderr)
	case "verify":
		return cmdVerify(ctx, rest, stdout, stderr)
	case "tokenize":
		return cmdTokenize(ctx, rest, os.Stdin, stdout, stderr)
	case "generate":
		return cmdGenerate(ctx, rest, stdout, stderr)
	case "chat":
		return cmdChat(ctx, rest, os.Stdin, stdout, stderr)
	case "cache":
		return cmdCache(ctx, rest, stdout, stderr)
	case "exec-step":
		return cmdExecStep(ctx, rest, stdout, stderr)
	case "version", "--version":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		if cmd == "help" && len(rest) > 0 && rest[0] != "help" && slices.Contains(commands, rest[0]) {
			// mlbuild help run: run's usage.
			return dispatch(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	default:
		if hint := engine.Suggest(cmd, commands); hint != "" {
			fmt.Fprintf(stderr, "mlbuild: unknown command %q.%s\nRun \"mlbuild help\" for the commands.\n", cmd, hint)
		} else {
			fmt.Fprintf(stderr, "mlbuild: unknown command %q\n\n%s", cmd, usage)
		}
		return exitError{2}
	}
}

// commands are dispatch's command names, for suggestions.
var commands = []string{"run", "plan", "explain", "graph", "show", "verify", "tokenize", "generate", "chat", "cache", "exec-step", "version", "help"}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// common holds the flags every pipeline command takes.
type common struct {
	vars, varFiles listFlag
	workspace      string
	json           bool
	noWait         bool
	verbose        bool
	// stepArgs says that the command takes step addresses after the
	// pipeline file (show, explain, verify).
	stepArgs bool
	// targets, when set, are the steps the command builds (run
	// --target): loading evaluates only them and their dependencies.
	targets []string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.Var(&c.vars, "var", "set a variable: NAME=VALUE (repeatable)")
	fs.Var(&c.varFiles, "var-file", "read variables from an HCL file of NAME = VALUE lines (repeatable)")
	fs.StringVar(&c.workspace, "workspace", "", "folder holding build/ and .mlbuild/ (default: the working directory)")
	fs.BoolVar(&c.json, "json", false, "print JSON (one object per line)")
	fs.BoolVar(&c.noWait, "no-wait", false, "fail instead of waiting when another mlbuild uses the workspace or the cache (plan, explain, show and cache stats never wait)")
	fs.BoolVar(&c.verbose, "v", false, "log details to stderr; run also prints a line per cached step")
}

// parseInterleaved parses flags that may come before or after positional
// arguments and returns the positional ones. -h (--help) prints the
// command's usage to stdout and returns flag.ErrHelp (exit 0); a bad flag
// prints the problem and the usage to stderr.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFlags is fs.Parse with the usage flag prints sent to stdout when
// it was asked for (-h) and to stderr after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out, ok := fs.Output().(*flagOutput)
	if !ok {
		return fs.Parse(args)
	}
	out.parsing = true
	err := fs.Parse(args)
	out.parsing = false
	dst := out.stderr
	if errors.Is(err, flag.ErrHelp) {
		dst = out.stdout
	}
	_, _ = out.buf.WriteTo(dst) // the usage text; a failed write leaves only the exit code
	return err
}

// flagOutput is a flag set's output: while parseFlags runs, what the flag
// package prints is held until it is known whether it answers -h.
type flagOutput struct {
	stdout, stderr io.Writer
	parsing        bool
	buf            bytes.Buffer
}

func (o *flagOutput) Write(b []byte) (int, error) {
	if o.parsing {
		return o.buf.Write(b)
	}
	return o.stderr.Write(b)
}

// flagError is the error a command returns when its flags do not parse:
// flag.ErrHelp for -h (exit 0, the usage was printed), else exit 2 (the
// problem and the usage were printed).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitError{2}
}

// newFlagSet makes a command's flag set; its usage is the command's lines
// of the overall usage and its flags.
func newFlagSet(name string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mlbuild "+name, flag.ContinueOnError)
	fs.SetOutput(&flagOutput{stdout: stdout, stderr: stderr})
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage:")
		for _, l := range synopsis(name) {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// synopsis is the command's lines of the overall usage ("cache gc" gives
// cache's).
func synopsis(name string) []string {
	first, _, _ := strings.Cut(name, " ")
	var out []string
	for _, l := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(l, "  mlbuild "+first); ok && (rest == "" || rest[0] == ' ') {
			out = append(out, l)
		}
	}
	return out
}

// pipelineFile picks the pipeline: the first positional argument, else
// the only .hcl file with steps in the working directory (-var-files are
// .hcl files too). For a command that takes
// step addresses (stepArgs), the first argument is the file when it looks
// like one: it ends in .hcl, names a path with a folder, exists, or is a
// near miss of an .hcl file's name. A file that is missing, or a folder
// without pipeline files, is an error naming it.
func pipelineFile(pos []string, stepArgs bool) (string, []string, error) {
	if len(pos) > 0 && (!stepArgs || looksLikeFile(pos[0])) {
		if err := checkPipelineFile(pos[0]); err != nil {
			return "", nil, err
		}
		return pos[0], pos[1:], nil
	}
	matches := pipelinesIn(".")
	switch len(matches) {
	case 1:
		return matches[0], pos, nil
	case 0:
		return "", nil, fmt.Errorf("no pipeline file given and no .hcl file with steps in the working directory: name one, e.g. mlbuild run pipelines/twainbot.hcl")
	default:
		return "", nil, fmt.Errorf("no pipeline file given and several .hcl files with steps here (%s): name one", strings.Join(matches, ", "))
	}
}

func looksLikeFile(arg string) bool {
	if strings.HasSuffix(arg, ".hcl") || strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, filepath.Separator) {
		return true
	}
	if _, err := os.Stat(arg); err == nil {
		return true
	}
	return engine.Suggest(arg, hclFilesNear(arg)) != ""
}

// checkPipelineFile says what is wrong with the path given as the
// pipeline: missing (with the nearest .hcl file's name), unreadable, or a
// folder with no pipeline file in it. A folder is a pipeline of all its
// .hcl files but the variable files (engine.Load).
func checkPipelineFile(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint := engine.Suggest(path, hclFilesNear(path))
		if st, err := os.Stat(path + ".hcl"); err == nil && !st.IsDir() {
			hint = fmt.Sprintf(" Did you mean %q?", path+".hcl")
		}
		return fmt.Errorf("no pipeline file %s: it does not exist.%s", path, hint)
	case err != nil:
		return fmt.Errorf("cannot read the pipeline file %s: %w", path, unwrapPathError(err))
	case !st.IsDir():
		return nil
	}
	if _, err := engine.FolderFiles(path); err != nil {
		return fmt.Errorf("%s is a folder, and holds no pipeline: a folder is a pipeline of its .hcl files (but *%s variable files); it has none", path, engine.VarFileSuffix)
	}
	return nil
}

// stepBlock matches the start of a step block: what a pipeline has and a
// -var-file (also .hcl) has not.
var stepBlock = lazyre.New(`(?m)^[ \t]*step[ \t]+"`)

// pipelinesIn lists the .hcl files in dir that hold steps.
func pipelinesIn(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	sort.Strings(matches)
	var out []string
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil && stepBlock.Re().Match(b) {
			out = append(out, m)
		}
	}
	return out
}

// hclFilesNear lists the .hcl files a misspelt path may have meant: those
// in its folder, or, when the folder itself does not exist, those in the
// folders beside it.
func hclFilesNear(path string) []string {
	dir := filepath.Dir(path)
	var pattern string
	if _, err := os.Stat(dir); err == nil {
		pattern = filepath.Join(dir, "*.hcl")
	} else {
		pattern = filepath.Join(filepath.Dir(dir), "*", "*.hcl")
	}
	matches, _ := filepath.Glob(pattern)
	sort.Strings(matches)
	return matches
}

// unwrapPathError drops the path an *fs.PathError or *os.LinkError
// repeats, for messages that name the file themselves.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func newLogger(stderr io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return newLevelLogger(stderr, level)
}

// newLevelLogger is newLogger at a given level.
func newLevelLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}}))
}

// parsePipeline parses a command's flags (before or after its positional
// arguments) and loads the pipeline; rest are the positional arguments
// after the pipeline file.
func (c *common) parsePipeline(fs *flag.FlagSet, args []string, stderr io.Writer) (p *engine.Pipeline, rest []string, err error) {
	file, rest, err := c.parseFile(fs, args)
	if err != nil {
		return nil, nil, err
	}
	p, err = c.load(file, stderr)
	return p, rest, err
}

// parseFile parses a command's flags and finds the pipeline file, without
// loading it; rest are the positional arguments after it.
func (c *common) parseFile(fs *flag.FlagSet, args []string) (file string, rest []string, err error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", nil, flagError(err)
	}
	return pipelineFile(pos, c.stepArgs)
}

// loadOptions are the options the pipeline is loaded with: through the
// parse cache of the workspace's cache folder.
func (c *common) loadOptions() engine.LoadOptions {
	opts := engine.LoadOptions{Vars: c.vars, VarFiles: c.varFiles, Targets: c.targets}
	ws := c.workspace
	if ws == "" {
		ws, _ = os.Getwd()
	}
	if ws, err := filepath.Abs(ws); err == nil {
		opts.ParseCache = engine.ParseCacheDir(engine.CacheDir(ws, ""))
	}
	return opts
}

// load parses the pipeline; diagnostics are printed as they are, with
// file:line:column and a snippet.
func (c *common) load(file string, stderr io.Writer) (*engine.Pipeline, error) {
	if os.Getenv("GOGC") == "" {
		// Loading a pipeline of thousands of steps allocates much that
		// lives until the run ends; collecting less often saves ~30% CPU.
		// (A no-op answered without loading keeps Go's default, and so
		// half the memory.)
		debug.SetGCPercent(400)
	}
	p, err := engine.Load(file, c.loadOptions())
	var de *engine.DiagError
	if errors.As(err, &de) {
		fmt.Fprintln(stderr, de.Error())
		return nil, exitError{2}
	}
	return p, err
}

// open opens the engine; its log goes to logTo.
func (c *common) open(ctx context.Context, p *engine.Pipeline, opts engine.Options, logTo io.Writer) (*engine.Engine, error) {
	opts.Workspace = c.workspace
	opts.NoWait = c.noWait
	opts.Log = newLogger(logTo, c.verbose)
	return engine.Open(ctx, p, opts)
}
