// Command mlbuild builds ML artifacts from a declarative pipeline: it hashes
// every input, reruns only the steps a change made stale and keeps every
// output in a content-addressed cache.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/mlbuild/mlbuild/engine"
	_ "github.com/mlbuild/mlbuild/steps/builtin" // registers the built-in step kinds
)

const usage = `mlbuild builds ML artifacts from a pipeline of steps, rerunning only what changed.

Usage:
  mlbuild run [FILE] [--target KIND.NAME]... [-var NAME=VALUE]... [-var-file F]... [-j N] [--rebuild KIND.NAME]... [--locked] [--json]
  mlbuild plan [FILE]               which steps would run, and why
  mlbuild explain [FILE] KIND.NAME  a step's key components beside its last cached run's
  mlbuild graph [FILE] [--format dot|mermaid|json]
  mlbuild show [FILE] KIND.NAME [--provenance]   outputs, digests, provenance (in-toto/SLSA) and report
  mlbuild verify [FILE] [KIND.NAME...]           re-execute steps ignoring the cache; compare outputs
  mlbuild cache stats | cache gc [--max-size SIZE] [--older-than AGE] [--dry-run]
  mlbuild cache push|pull [FILE] [--target KIND.NAME]...   move artifacts to/from the remote cache
  mlbuild tokenize --model DIR [--special]      JSON lines {"text"} on stdin -> {"text","ids"}
  mlbuild generate --model DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--chat]
  mlbuild chat --model DIR [--system TEXT]      a conversation with the model and the get_weather tool
  mlbuild version

FILE defaults to the only .hcl file in the working directory. Outputs go to
build/KIND.NAME/ and the cache to .mlbuild/cache under the working directory
(--workspace DIR and MLBUILD_CACHE_DIR change them). A remote cache comes
from the pipeline's cache block or MLBUILD_REMOTE (MLBUILD_REMOTE=off
disables it). run records keys and output digests in mlbuild.lock beside
the pipeline. Run "mlbuild COMMAND -h" for a command's flags.
`

// exitError carries a process exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	if os.Getenv("GOGC") == "" {
		// Loading a pipeline of thousands of steps allocates much that
		// lives until the run ends; collecting less often saves ~30% CPU.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "mlbuild: "+err.Error())
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	case "version", "--version":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "mlbuild: unknown command %q\n\n%s", cmd, usage)
		return exitError{2}
	}
}

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
}

func (c *common) register(fs *flag.FlagSet) {
	fs.Var(&c.vars, "var", "set a variable: NAME=VALUE (repeatable)")
	fs.Var(&c.varFiles, "var-file", "read variables from an HCL file of NAME = VALUE lines (repeatable)")
	fs.StringVar(&c.workspace, "workspace", "", "folder holding build/ and .mlbuild/ (default: the working directory)")
	fs.BoolVar(&c.json, "json", false, "print JSON (one object per line)")
	fs.BoolVar(&c.noWait, "no-wait", false, "fail instead of waiting when another mlbuild uses the cache")
	fs.BoolVar(&c.verbose, "v", false, "log details to stderr")
}

// parseInterleaved parses flags that may come before or after positional
// arguments and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
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

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mlbuild "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// pipelineFile picks the pipeline: the argument, else the only .hcl file
// in the working directory.
func pipelineFile(pos []string) (string, []string, error) {
	if len(pos) > 0 && strings.HasSuffix(pos[0], ".hcl") {
		return pos[0], pos[1:], nil
	}
	if len(pos) > 0 {
		if st, err := os.Stat(pos[0]); err == nil && !st.IsDir() {
			return pos[0], pos[1:], nil
		}
	}
	matches, _ := filepath.Glob("*.hcl")
	sort.Strings(matches)
	switch len(matches) {
	case 1:
		return matches[0], pos, nil
	case 0:
		return "", nil, fmt.Errorf("no pipeline file given and no .hcl file in the working directory: name one, e.g. mlbuild run pipelines/twainbot.hcl")
	default:
		return "", nil, fmt.Errorf("no pipeline file given and several .hcl files here (%s): name one", strings.Join(matches, ", "))
	}
}

func newLogger(stderr io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
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
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, nil, exitError{2}
	}
	file, rest, err := pipelineFile(pos)
	if err != nil {
		return nil, nil, err
	}
	p, err = c.load(file, stderr)
	return p, rest, err
}

// load parses the pipeline; diagnostics are printed as they are, with
// file:line:column and a snippet.
func (c *common) load(file string, stderr io.Writer) (*engine.Pipeline, error) {
	p, err := engine.Load(file, engine.LoadOptions{Vars: c.vars, VarFiles: c.varFiles})
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
