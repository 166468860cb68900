// Package command implements the command step kind: a program of the
// user's own (a Python script, torchrun, a converter) run as a cached,
// sandboxed step, with the cache, early cutoff, explain, remote sharing,
// lockfile and verify that built-in kinds get.
//
//	step "command" "count" {
//	  run     = ["python3", "count.py", "--in", "in/data", "--out", "out/counts.json"]
//	  inputs  = { data = csv_clean.onion.output, "count.py" = "scripts/count.py" }
//	  outputs = { counts = "counts.json" }
//	  env     = { LC_ALL = "C" }
//	  tools   = ["python3"]
//	}
//
// The program runs in a fresh folder of its own, where each input is at
// in/NAME (read-only) and it writes its outputs under out/; $MLBUILD_IN and
// $MLBUILD_OUT hold those folders' absolute paths. It sees only the
// variables of env (and pass_env, which stay out of the key), a minimal
// PATH and an empty HOME. The key holds the command line, env, the inputs'
// digests and the digests of the programs tools names, found on PATH.
//
// On Linux it runs in new namespaces made by bubblewrap (package sandbox):
// only its folder, its inputs and the system's read-only directories are
// visible, and it has no network unless network = true. docs/steps.md
// documents the kind.
package command

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/lazyre"
	"github.com/mlbuild/mlbuild/steps"
)

// DefaultPath is the PATH a command sees unless env sets one: the
// system's program directories.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

// Variables the kind sets itself; env cannot set them.
const (
	EnvIn  = "MLBUILD_IN"
	EnvOut = "MLBUILD_OUT"
)

var reserved = map[string]bool{"HOME": true, EnvIn: true, EnvOut: true}

func init() { steps.Register(Kind{}) }

// Kind is the command step kind.
type Kind struct{}

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "command",
		Version: "1",
		Doc: "Runs a program of your own as a cached step: argv in run (no shell unless you write [\"sh\", \"-c\", ...]), " +
			"inputs at in/NAME, outputs written under out/ and declared in outputs. Runs sandboxed by bubblewrap on Linux.",
		Attributes: []steps.Attribute{
			{Name: "run", Type: cty.List(cty.String), Required: true,
				Doc: "The command line, as a list: the program (found on PATH) and its arguments."},
			{Name: "inputs", Type: cty.Map(cty.String), Input: true,
				Doc: "Files, folders or step outputs by name: each is visible at in/NAME, read-only."},
			{Name: "outputs", Type: cty.Map(cty.String), Default: cty.MapValEmpty(cty.String),
				Doc: "Output names to paths under out/ (a path ending in / is a folder); others refer to them as command.STEP.NAME."},
			{Name: "env", Type: cty.Map(cty.String), Default: cty.MapValEmpty(cty.String),
				Doc: "The environment variables the command sees (besides PATH, HOME, MLBUILD_IN and MLBUILD_OUT); they enter the key. Setting PATH replaces the default " + DefaultPath + "."},
			{Name: "pass_env", Type: cty.List(cty.String), Default: cty.ListValEmpty(cty.String), NotInKey: true,
				Doc: "Names of variables passed through from mlbuild's environment (secrets such as HF_TOKEN): their values enter no key and are never written anywhere."},
			{Name: "tools", Type: cty.List(cty.String), Input: true, Resolve: resolveTool,
				Doc: "Programs found on the command's PATH (or absolute paths) whose files' digests enter the key, so that upgrading one reruns the step."},
			{Name: "network", Type: cty.Bool, Default: cty.False,
				Doc: "Let the command use the network (off by default: a sandboxed command has only its own loopback)."},
			{Name: "sandbox", Type: cty.Bool, Default: cty.True,
				Doc: "Run in new namespaces made by bubblewrap (the default); false runs the command directly, with no isolation."},
			{Name: "timeout", Type: cty.String, Default: cty.StringVal(""), NotInKey: true,
				Doc: "Longest the command may run (\"2h\", \"90s\"); when it passes, its processes are killed and the step fails. Empty: no limit."},
			{Name: "resources", Type: cty.DynamicPseudoType, NotInKey: true,
				Doc: "What one run needs, for schedulers: { cpus = 2, memory = \"8GiB\", gpus = 1 }. The local scheduler reserves cpus of -j."},
		},
	}
}

type config struct {
	Run       []string          `attr:"run"`
	Outputs   map[string]string `attr:"outputs"`
	Env       map[string]string `attr:"env"`
	PassEnv   []string          `attr:"pass_env"`
	Network   bool              `attr:"network"`
	Sandbox   bool              `attr:"sandbox"`
	Timeout   string            `attr:"timeout"`
	Resources cty.Value         `attr:"resources"`
}

// OutputsAttr implements steps.OutputDeclarer.
func (Kind) OutputsAttr() string { return "outputs" }

var outputName = lazyre.New(`^[A-Za-z][A-Za-z0-9_-]*$`)

// DeclareOutputs implements steps.OutputDeclarer: each entry of outputs
// is an output, a path ending in "/" a folder.
func (Kind) DeclareOutputs(v cty.Value) ([]steps.Output, error) {
	if v == cty.NilVal || v.IsNull() {
		return nil, nil
	}
	if !v.Type().IsMapType() && !v.Type().IsObjectType() {
		return nil, fmt.Errorf("must be a map from output names to paths under out/, like { counts = \"counts.json\" }")
	}
	if !v.IsWhollyKnown() {
		return nil, errors.New("has no known value")
	}
	var outs []steps.Output
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		name := k.AsString()
		if !outputName.MatchString(name) {
			return nil, fmt.Errorf("output name %q must start with a letter and contain only letters, digits, '_' and '-' (others refer to it as command.STEP.NAME)", name)
		}
		if e.IsNull() || e.Type() != cty.String {
			return nil, fmt.Errorf("output %q must be a path (a string)", name)
		}
		p := e.AsString()
		dir := strings.HasSuffix(p, "/")
		clean := strings.TrimSuffix(p, "/")
		if clean == "" || path.IsAbs(clean) || path.Clean(clean) != clean || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(clean, "\\") {
			return nil, fmt.Errorf("output %q: %q must be a plain relative path under out/ (no leading /, no .. or ., no doubled or trailing slashes but the one that marks a folder)", name, p)
		}
		outs = append(outs, steps.Output{Name: name, Path: clean, Dir: dir, Doc: "declared by the step"})
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].Path < outs[j].Path })
	for i := 1; i < len(outs); i++ {
		a, b := outs[i-1], outs[i]
		if a.Path == b.Path || strings.HasPrefix(b.Path, a.Path+"/") {
			return nil, fmt.Errorf("outputs %q (%s) and %q (%s) overlap: each output must be its own path", a.Name, a.Path, b.Name, b.Path)
		}
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].Name < outs[j].Name })
	return outs, nil
}

var envName = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate implements steps.Validator.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := decode(inv)
	return err
}

func decode(inv *steps.Invocation) (*config, error) {
	var c config
	if err := inv.Decode(&c); err != nil {
		return nil, err
	}
	if len(c.Run) == 0 || c.Run[0] == "" {
		return nil, &steps.AttrError{Attr: "run", Msg: `must name a program and its arguments, like ["python3", "count.py"]`}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) { // the same first problem on every run
		switch {
		case !envName.MatchString(k):
			return nil, &steps.AttrError{Attr: "env", Msg: fmt.Sprintf("%q is not a variable name (letters, digits and '_', not starting with a digit)", k)}
		case reserved[k]:
			return nil, &steps.AttrError{Attr: "env", Msg: fmt.Sprintf("%s is set by mlbuild (HOME is an empty folder, %s and %s the input and output folders) and cannot be set here", k, EnvIn, EnvOut)}
		}
	}
	for _, k := range c.PassEnv {
		switch {
		case !envName.MatchString(k):
			return nil, &steps.AttrError{Attr: "pass_env", Msg: fmt.Sprintf("%q is not a variable name", k)}
		case reserved[k] || k == "PATH":
			return nil, &steps.AttrError{Attr: "pass_env", Msg: fmt.Sprintf("%s cannot be passed through: mlbuild sets it (set PATH in env, where it enters the key)", k)}
		}
		if _, ok := c.Env[k]; ok {
			return nil, &steps.AttrError{Attr: "pass_env", Msg: fmt.Sprintf("%s is also set in env: a variable is either in the key (env) or passed through (pass_env)", k)}
		}
	}
	if _, err := timeout(c.Timeout); err != nil {
		return nil, err
	}
	if _, err := resources(c.Resources); err != nil {
		return nil, err
	}
	return &c, nil
}

// timeout parses the timeout attribute; 0 means none.
func timeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, &steps.AttrError{Attr: "timeout", Msg: fmt.Sprintf("%q is not a positive duration (write \"90s\", \"30m\" or \"2h\")", s)}
	}
	return d, nil
}

// Resources implements steps.ResourceRequester.
func (Kind) Resources(cfg map[string]cty.Value) (steps.Resources, error) {
	return resources(cfg["resources"])
}

func resources(v cty.Value) (steps.Resources, error) {
	var r steps.Resources
	if v == cty.NilVal || v.IsNull() {
		return r, nil
	}
	bad := func(msg string) (steps.Resources, error) {
		return steps.Resources{}, &steps.AttrError{Attr: "resources", Msg: msg}
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return bad(`must be an object like { cpus = 2, memory = "8GiB", gpus = 1 }`)
	}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		name := k.AsString()
		if e.IsNull() {
			continue
		}
		switch name {
		case "cpus", "gpus":
			n, err := wholeCount(e)
			if err != nil || (name == "cpus" && n < 1) {
				return bad(fmt.Sprintf("%s must be a whole number (cpus at least 1)", name))
			}
			if name == "cpus" {
				r.CPUs = n
			} else {
				r.GPUs = n
			}
		case "memory":
			b, err := memory(e)
			if err != nil {
				return bad(err.Error())
			}
			r.MemoryBytes = b
		default:
			return bad(fmt.Sprintf("has no setting %q; it takes cpus, memory and gpus", name))
		}
	}
	return r, nil
}

func wholeCount(v cty.Value) (int, error) {
	switch v.Type() {
	case cty.Number:
		i, acc := v.AsBigFloat().Int64()
		if acc != 0 || i < 0 || i > 1<<20 {
			return 0, errors.New("not a whole count")
		}
		return int(i), nil
	case cty.String:
		i, err := strconv.Atoi(v.AsString())
		if err != nil || i < 0 || i > 1<<20 {
			return 0, errors.New("not a whole count")
		}
		return i, nil
	}
	return 0, errors.New("not a number")
}

var memoryRE = lazyre.New(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(i?B?)$`)

// memory parses a size: a number of bytes, or a number with K, M, G or T
// (binary, as Slurm reads them: 8G = 8GiB), optionally followed by iB or B.
func memory(v cty.Value) (int64, error) {
	if v.Type() == cty.Number {
		i, acc := v.AsBigFloat().Int64()
		if acc != 0 || i < 0 {
			return 0, errors.New("memory must be a whole number of bytes or a size like \"8GiB\"")
		}
		return i, nil
	}
	if v.Type() != cty.String {
		return 0, errors.New(`memory must be a size like "8GiB"`)
	}
	m := memoryRE.FindStringSubmatch(strings.TrimSpace(v.AsString()))
	if m == nil || (m[2] == "" && m[3] != "" && m[3] != "B") {
		return 0, fmt.Errorf("memory %q is not a size (write \"512MiB\", \"8GiB\" or \"8G\"; units are binary, as Slurm's)", v.AsString())
	}
	x, _ := strconv.ParseFloat(m[1], 64)
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	b := x * float64(uint64(1)<<shift)
	if b > 1<<62 {
		return 0, fmt.Errorf("memory %q is too large", v.AsString())
	}
	return int64(b), nil
}

// resolveTool finds a tool on the PATH the command will see (env's PATH,
// else DefaultPath); an absolute path is taken as it is.
func resolveTool(name string, cfg map[string]cty.Value) (string, error) {
	return lookPath(name, commandPath(cfg))
}

// commandPath is the PATH a step's command sees.
func commandPath(cfg map[string]cty.Value) string {
	if env := cfg["env"]; env != cty.NilVal && !env.IsNull() && env.Type().IsMapType() {
		if p, ok := env.AsValueMap()["PATH"]; ok && !p.IsNull() {
			return p.AsString()
		}
	}
	return DefaultPath
}

// lookPath finds an executable regular file named name in the
// directories of pathList, as a shell would; a name with a slash must be
// an absolute path.
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			return "", fmt.Errorf("tool %q: name a program on PATH (\"python3\") or give its absolute path", name)
		}
		if err := executable(name); err != nil {
			return "", fmt.Errorf("tool %s: %w", name, err)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q is not found on the command's PATH (%s); install it, set PATH in env, or name it by its absolute path", name, pathList)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return errors.New("is not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return errors.New("is not executable")
	}
	return nil
}

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	c, err := decode(inv)
	if err != nil {
		return err
	}
	return run(ctx, inv, c)
}
