// Package engine turns a pipeline file into a typed step graph, computes
// each step's cache key from the content of its inputs, decides what is
// stale and why, and executes the stale steps in parallel, storing their
// outputs in the content-addressed cache. It knows step kinds only through
// the steps package's registry.
package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/mlbuild/mlbuild/steps"
)

// BuildDirName is the folder, under the workspace, where step outputs are
// materialized: build/KIND.NAME/.
const BuildDirName = "build"

// Pipeline is a loaded, fully evaluated pipeline.
type Pipeline struct {
	// File is the pipeline file's absolute path, or the folder's when the
	// pipeline is a folder of files (see Load).
	File string
	// Dir is the directory relative source paths are resolved against:
	// the file's folder, or the folder itself.
	Dir string
	// Files are the files the pipeline was read from, in load order:
	// File alone, or the folder's pipeline files.
	Files []string
	// Variables are the variables' final values.
	Variables map[string]cty.Value
	// Cache is the pipeline's cache block (zero when absent).
	Cache CacheConfig
	// Executors are the pipeline's executor blocks, by name: where steps
	// with executor = NAME run (see Executor).
	Executors map[string]*ExecutorConfig
	// Steps are in file order.
	Steps  []*Step
	byAddr map[string]*Step
	// files holds the parsed sources, for rendering diagnostics.
	files map[string]*hcl.File
	// reads is what loading read besides the pipeline's text, for the
	// no-op stamp.
	reads *loadReads
	// partial says that only the steps some targets need were evaluated
	// (LoadOptions.Targets).
	partial bool
}

// Partial reports whether only the steps some targets need were evaluated
// (LoadOptions.Targets): the others have no config or inputs.
func (p *Pipeline) Partial() bool { return p.partial }

// Step is one step block, evaluated.
type Step struct {
	Kind string
	Name string
	// Addr is "KIND.NAME".
	Addr   string
	Impl   steps.Kind
	Schema steps.Schema
	// Range is where the block is declared.
	Range hcl.Range
	// Deps are the steps whose outputs this one references, sorted by
	// address.
	Deps []*Step
	// Config holds every non-input attribute, defaults applied.
	Config map[string]cty.Value
	// KeyConfig is the canonical JSON of each attribute that enters the key.
	KeyConfig map[string]json.RawMessage
	// Inputs holds each input attribute's artifacts in pipeline order (a
	// map's by name).
	Inputs map[string][]Input
	// Resources are what the step says it needs (zero when it says
	// nothing): the local scheduler reserves its CPUs.
	Resources steps.Resources
	// Executor names where the step runs when it is stale: "local" (or
	// "" when neither the step nor a default executor block says) for
	// this process, else an executor block's name.
	Executor string
	// attrRanges locate each attribute for diagnostics.
	attrRanges map[string]hcl.Range
	attrs      hcl.Attributes
}

// Input is one input artifact of a step: a source file or directory, or
// another step's output.
type Input struct {
	// Name is the path as written in the pipeline (relative to it) or, for
	// a step output, "build/KIND.NAME/PATH".
	Name string
	// Path is the absolute path of a source (empty for a step output: the
	// engine knows where it materializes outputs).
	Path string
	// Key is the input's name in a map-typed attribute ("" otherwise).
	// It stands in the key for the path's base name.
	Key string
	// From is the producing step (nil for a source); Output is its output.
	From   *Step
	Output string
}

// Step returns the step with the given address.
func (p *Pipeline) Step(addr string) (*Step, bool) {
	s, ok := p.byAddr[addr]
	return s, ok
}

// LoadOptions are the inputs of Load besides the file.
type LoadOptions struct {
	// Vars are -var NAME=VALUE overrides, in order.
	Vars []string
	// VarFiles are -var-file paths, in order.
	VarFiles []string
	// Environ is the environment MLBUILD_VAR_* values are read from
	// (os.Environ() when nil).
	Environ []string
	// Registry maps kinds to implementations (steps.Default when nil).
	Registry *steps.Registry
	// Targets, when set, are the addresses of the steps a command needs:
	// Load then evaluates only them and their dependencies, so that
	// building one step of a large pipeline does not evaluate the rest.
	// The other steps are declared (kind, name, address, schema,
	// executor, dependencies) and checked for references and cycles, but
	// have no Config, KeyConfig or Inputs, and their attribute errors are
	// not reported. An address that names no step is left to the engine
	// to report.
	Targets []string
	// ParseCache, when set, is the parse cache's folder (ParseCacheDir of
	// the cache folder): a pipeline file parsed before is decoded from it
	// instead of parsed again, and a file parsed is recorded there. The
	// pipeline is the same with or without it.
	ParseCache string
}

// Load parses and evaluates a pipeline. Every problem is reported as an
// HCL diagnostic (file:line:column with a snippet) inside a *DiagError.
//
// path is a pipeline file, or a folder: then every .hcl file directly in
// it, except variable files (named *.vars.hcl, given with -var-file), is
// one pipeline together, as a Terraform module's .tf files are, so that a
// large pipeline can be split by team or stage. Blocks may refer to those
// of any file of the folder; relative paths are resolved against the
// folder.
func Load(path string, opts LoadOptions) (*Pipeline, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	reads := newLoadReads(opts)
	dir, files := filepath.Dir(abs), []string{abs}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		dir = abs
		matches := folderMatches(abs)
		if files, err = pipelineFiles(abs, matches); err != nil {
			return nil, err
		}
		// A file added to or removed from the folder changes the
		// pipeline: the no-op stamp records the listing.
		reads.glob(filepath.Join(abs, "*.hcl"), matches)
	}
	reg := opts.Registry
	if reg == nil {
		reg = steps.Default
	}
	l := &loader{parser: hclparse.NewParser(), reg: reg, validated: map[string]bool{}, defaults: map[string]json.RawMessage{},
		reads: reads, schemas: map[string]steps.Schema{}}
	p := &Pipeline{File: abs, Dir: dir, Files: files, byAddr: map[string]*Step{}, reads: reads}
	l.p = p
	var (
		parsed []*hcl.File
		diags  hcl.Diagnostics
		cache  []*pendingEntry
	)
	for _, f := range files {
		reads.file(f)
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read pipeline %s: %w", displayName(f), unwrapPathErr(err))
		}
		file, d, entry := parseCached(l.parser, opts.ParseCache, src, displayName(f))
		diags = append(diags, d...)
		parsed = append(parsed, file)
		if entry != nil {
			cache = append(cache, entry)
		}
	}
	p.files = l.parser.Files()
	if diags.HasErrors() {
		return nil, &DiagError{Diags: diags, Files: p.files}
	}
	body := parsed[0].Body
	if len(parsed) > 1 {
		body = hcl.MergeFiles(parsed)
	}
	diags = l.load(body, opts)
	// The files parsed are cached once the pipeline is evaluated: encoding
	// then overlaps with what the command does next, not with the load.
	writeParseEntries(cache)
	p.files = l.parser.Files()
	if diags.HasErrors() {
		return nil, &DiagError{Diags: diags, Files: p.files}
	}
	return p, nil
}

// VarFileSuffix ends the names of variable files, which a folder's
// pipeline leaves out (they are given with -var-file).
const VarFileSuffix = ".vars.hcl"

// FolderFiles lists the pipeline files of a folder pipeline: the .hcl
// files directly in dir, sorted, variable files (*.vars.hcl) left out. A
// folder without any is an error saying so.
func FolderFiles(dir string) ([]string, error) {
	return pipelineFiles(dir, folderMatches(dir))
}

// pipelineFiles is FolderFiles of the folder's listing.
func pipelineFiles(dir string, matches []string) ([]string, error) {
	var out []string
	for _, m := range matches {
		if !strings.HasSuffix(filepath.Base(m), VarFileSuffix) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pipeline folder %s holds no .hcl file (other than *%s variable files)", displayName(dir), VarFileSuffix)
	}
	return out, nil
}

// folderMatches is every .hcl file directly in dir, sorted.
func folderMatches(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	sort.Strings(m)
	return m
}

// displayName is the name diagnostics use for a file: relative to the
// working directory when it is below it.
func displayName(abs string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return abs
}

var topSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "step", LabelNames: []string{"kind", "name"}},
		{Type: "cache"},
		{Type: "executor", LabelNames: []string{"name"}},
	},
}

var cacheSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "remote"}, {Name: "mode"}},
}

// CacheConfig is the pipeline's cache block.
type CacheConfig struct {
	// Remote is the shared cache's URL ("" for none).
	Remote string
	// Mode is "read-write" (default) or "read-only".
	Mode RemoteMode
}

type loader struct {
	// mu guards validated and defaults while steps are evaluated in
	// parallel.
	mu     sync.Mutex
	parser *hclparse.Parser
	reg    *steps.Registry
	p      *Pipeline
	// refs holds, per step and attribute, the step outputs it references.
	refs map[*Step]map[string][]stepRef
	// validated remembers the configs (by kind) that passed Validate;
	// defaults memoizes
	// the canonical JSON of default values.
	validated map[string]bool
	defaults  map[string]json.RawMessage
	// disabled holds the steps whose enabled attribute is false, by
	// address; disabledRefs, per step and attribute, the references to
	// them (which evaluate to null).
	disabled     map[string]*Step
	disabledRefs map[*Step]map[string][]stepRef
	// reads records the files, globs and settings loading depends on.
	reads *loadReads
	// schemas memoizes each kind's Schema (a generated pipeline has
	// thousands of steps of a few kinds).
	schemas map[string]steps.Schema
}

// EnabledAttr is the meta-attribute every step block accepts: a bool
// computed from variables only. A step whose enabled is false is left out
// of the pipeline, and references to its outputs evaluate to null (use
// them in a conditional: var.base_model != "" ? var.base_model :
// pretrain.base.output).
const EnabledAttr = "enabled"

type stepRef struct {
	step   *Step
	output string
	rng    hcl.Range
}

func (l *loader) load(body hcl.Body, opts LoadOptions) hcl.Diagnostics {
	content, diags := body.Content(topSchema)
	var varBlocks, stepBlocks, cacheBlocks, execBlocks []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			varBlocks = append(varBlocks, b)
		case "cache":
			cacheBlocks = append(cacheBlocks, b)
		case "executor":
			execBlocks = append(execBlocks, b)
		default:
			stepBlocks = append(stepBlocks, b)
		}
	}
	vars, vdiags := l.loadVariables(varBlocks, opts)
	diags = append(diags, vdiags...)
	l.p.Variables = vars
	diags = append(diags, l.loadExecutors(execBlocks, l.varContext())...)
	diags = append(diags, l.declareSteps(stepBlocks, l.varContext())...)
	if diags.HasErrors() {
		return diags
	}
	if def := l.p.defaultExecutor(); def != "" {
		for _, s := range l.p.Steps {
			if s.Executor == "" {
				s.Executor = def
			}
		}
	}
	diags = append(diags, l.resolveReferences()...)
	if diags.HasErrors() {
		return diags
	}
	if d := l.checkCycles(); d != nil {
		return append(diags, d)
	}
	ctx := l.evalContext()
	diags = append(diags, l.loadCache(cacheBlocks, ctx)...)
	need := l.needed(opts.Targets)
	var todo []*Step
	for _, s := range l.p.Steps {
		if need == nil || need[s] {
			todo = append(todo, s)
		}
	}
	return append(diags, l.evaluateAll(todo, ctx)...)
}

// parallelEvalMin is the number of steps from which they are evaluated on
// every core (a variable for tests).
var parallelEvalMin = 256

// evaluateAll evaluates the steps, on every core when there are many
// (each step's evaluation reads the shared context and writes only its
// own Step, and the loader's memos and read record under their locks),
// and returns their diagnostics in step order, as a serial evaluation
// would.
func (l *loader) evaluateAll(todo []*Step, ctx *hcl.EvalContext) hcl.Diagnostics {
	workers := min(runtime.GOMAXPROCS(0), len(todo)/parallelEvalMin)
	if workers < 2 {
		var diags hcl.Diagnostics
		for _, s := range todo {
			diags = append(diags, l.evaluate(s, ctx)...)
		}
		return diags
	}
	per := make([]hcl.Diagnostics, len(todo))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(todo); i = int(next.Add(1) - 1) {
				per[i] = l.evaluate(todo[i], ctx)
			}
		})
	}
	wg.Wait()
	var diags hcl.Diagnostics
	for _, d := range per {
		diags = append(diags, d...)
	}
	return diags
}

// needed is the set of steps the targets need, themselves and their
// dependencies; nil (every step) without targets. A partial evaluation
// leaves the load record incomplete, so the no-op stamp gets none.
func (l *loader) needed(targets []string) map[*Step]bool {
	if len(targets) == 0 {
		return nil
	}
	need := map[*Step]bool{}
	var mark func(s *Step)
	mark = func(s *Step) {
		if need[s] {
			return
		}
		need[s] = true
		for _, d := range s.Deps {
			mark(d)
		}
	}
	for _, a := range targets {
		if s, ok := l.p.byAddr[a]; ok {
			mark(s)
		}
	}
	if len(need) < len(l.p.Steps) {
		l.reads.markUnstable()
		l.p.partial = true
	}
	return need
}

// declareSteps creates a Step for each block, checking kinds, duplicate
// addresses and the attributes against each kind's schema.
func (l *loader) declareSteps(blocks []*hcl.Block, varCtx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	l.refs = map[*Step]map[string][]stepRef{}
	l.disabled = map[string]*Step{}
	l.disabledRefs = map[*Step]map[string][]stepRef{}
	for _, b := range blocks {
		kind, name := b.Labels[0], b.Labels[1]
		impl, ok := l.reg.Lookup(kind)
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown step kind",
				Detail:   fmt.Sprintf("There is no step kind %q.%s Known kinds: %s.", kind, suggest(kind, l.reg.Names()), strings.Join(l.reg.Names(), ", ")),
				Subject:  b.LabelRanges[0].Ptr(),
				Context:  b.DefRange.Ptr(),
			})
			continue
		}
		if !validName(name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid step name",
				Detail:   fmt.Sprintf("Step name %q must start with a letter and contain only letters, digits, '_' and '-'.", name),
				Subject:  b.LabelRanges[1].Ptr(),
			})
			continue
		}
		addr := kind + "." + name
		prev, dup := l.p.byAddr[addr]
		if !dup {
			prev, dup = l.disabled[addr]
		}
		if dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate step",
				Detail:   fmt.Sprintf("Step %s is already declared at %s.", addr, prev.Range),
				Subject:  b.DefRange.Ptr(),
			})
			continue
		}
		schema, ok := l.schemas[kind]
		if !ok {
			schema = impl.Schema()
			l.schemas[kind] = schema
		}
		s := &Step{Kind: kind, Name: name, Addr: addr, Impl: impl, Schema: schema, Range: b.DefRange,
			attrRanges: map[string]hcl.Range{}}
		content, cdiags := b.Body.Content(bodySchema(schema))
		diags = append(diags, cdiags...)
		s.attrs = content.Attributes
		for n, a := range content.Attributes {
			s.attrRanges[n] = a.Expr.Range()
		}
		if od, ok := impl.(steps.OutputDeclarer); ok {
			outs, d := declaredOutputs(s, od, varCtx)
			diags = append(diags, d...)
			s.Schema.Outputs = outs
		}
		if a, ok := content.Attributes[ExecutorAttr]; ok {
			name, d := l.stepExecutor(s, a, varCtx)
			diags = append(diags, d...)
			s.Executor = name
			delete(s.attrs, ExecutorAttr)
		}
		if a, ok := content.Attributes[EnabledAttr]; ok {
			on, d := enabled(a, varCtx)
			diags = append(diags, d...)
			delete(s.attrs, EnabledAttr)
			if !on {
				l.disabled[addr] = s
				continue
			}
		}
		l.p.byAddr[addr] = s
		l.p.Steps = append(l.p.Steps, s)
	}
	return diags
}

// enabled evaluates a step's enabled attribute, which may use variables
// and functions only.
func enabled(a *hcl.Attribute, ctx *hcl.EvalContext) (bool, hcl.Diagnostics) {
	for _, tr := range a.Expr.Variables() {
		if tr.RootName() != "var" {
			return true, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid enabled expression",
				Detail:  fmt.Sprintf("%q may use variables (var.NAME) and functions only, not %q: whether a step exists cannot depend on another step.", EnabledAttr, tr.RootName()),
				Subject: tr.SourceRange().Ptr()}}
		}
	}
	v, d := a.Expr.Value(ctx)
	if d.HasErrors() {
		return true, d
	}
	cv, err := convert.Convert(v, cty.Bool)
	if err != nil || cv.IsNull() || !cv.IsKnown() {
		return true, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Wrong type",
			Detail: fmt.Sprintf("%q must be true or false.", EnabledAttr), Subject: a.Expr.Range().Ptr()}}
	}
	return cv.True(), nil
}

// declaredOutputs evaluates the attribute in which a step block declares
// its outputs (variables and functions only, as for enabled) and asks the
// kind what outputs it declares.
func declaredOutputs(s *Step, od steps.OutputDeclarer, ctx *hcl.EvalContext) ([]steps.Output, hcl.Diagnostics) {
	name := od.OutputsAttr()
	a, set := s.attrs[name]
	var v cty.Value
	subject := s.Range
	if set {
		subject = a.Expr.Range()
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() != "var" {
				return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid outputs expression",
					Detail:  fmt.Sprintf("%s: %q may use variables (var.NAME) and functions only, not %q: what a step produces cannot depend on another step.", s.Addr, name, tr.RootName()),
					Subject: tr.SourceRange().Ptr()}}
			}
		}
		val, d := a.Expr.Value(ctx)
		if d.HasErrors() {
			return nil, d
		}
		v = val
	} else {
		for _, at := range s.Schema.Attributes {
			if at.Name == name {
				v = at.DefaultValue()
			}
		}
	}
	outs, err := od.DeclareOutputs(v)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid outputs",
			Detail: fmt.Sprintf("%s: attribute %q: %s.", s.Addr, name, strings.TrimSuffix(err.Error(), ".")), Subject: subject.Ptr()}}
	}
	return outs, nil
}

// varContext is the evaluation context of enabled: variables and
// functions, no step outputs.
func (l *loader) varContext() *hcl.EvalContext {
	vars := map[string]cty.Value{"var": cty.EmptyObjectVal}
	if len(l.p.Variables) > 0 {
		vars["var"] = cty.ObjectVal(l.p.Variables)
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions(l.p.Dir, l.reads)}
}

func bodySchema(s steps.Schema) *hcl.BodySchema {
	bs := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: EnabledAttr}, {Name: ExecutorAttr}}}
	for _, a := range s.Attributes {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.Name, Required: a.Required})
	}
	return bs
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// resolveReferences checks every variable and step reference of every
// attribute and records the step graph's edges.
func (l *loader) resolveReferences() hcl.Diagnostics {
	var diags hcl.Diagnostics
	kinds := map[string]bool{}
	for _, n := range l.reg.Names() {
		kinds[n] = true
	}
	for _, s := range l.p.Steps {
		deps := map[*Step]bool{}
		l.refs[s] = map[string][]stepRef{}
		for name, attr := range s.attrs {
			for _, tr := range attr.Expr.Variables() {
				root := tr.RootName()
				switch {
				case root == "var":
					diags = append(diags, l.checkVarRef(tr)...)
				case kinds[root]:
					ref, d := l.stepRef(tr)
					if d != nil {
						diags = append(diags, d)
						continue
					}
					if ref.step == s {
						diags = append(diags, &hcl.Diagnostic{
							Severity: hcl.DiagError,
							Summary:  "Step references itself",
							Detail:   fmt.Sprintf("%s cannot use its own output %q as an input.", s.Addr, ref.output),
							Subject:  tr.SourceRange().Ptr(),
						})
						continue
					}
					if _, off := l.disabled[ref.step.Addr]; off {
						if l.disabledRefs[s] == nil {
							l.disabledRefs[s] = map[string][]stepRef{}
						}
						l.disabledRefs[s][name] = append(l.disabledRefs[s][name], ref)
						continue
					}
					deps[ref.step] = true
					l.refs[s][name] = append(l.refs[s][name], ref)
				default:
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Unknown reference",
						Detail: fmt.Sprintf("%q is neither a variable (var.NAME) nor a step output (KIND.NAME.OUTPUT).%s",
							root, suggest(root, append([]string{"var"}, l.reg.Names()...))),
						Subject: tr.SourceRange().Ptr(),
					})
				}
			}
		}
		for d := range deps {
			s.Deps = append(s.Deps, d)
		}
		sort.Slice(s.Deps, func(i, j int) bool { return s.Deps[i].Addr < s.Deps[j].Addr })
	}
	return diags
}

func (l *loader) checkVarRef(tr hcl.Traversal) hcl.Diagnostics {
	if len(tr) < 2 {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid variable reference",
			Detail:   "Refer to a variable as var.NAME.",
			Subject:  tr.SourceRange().Ptr(),
		}}
	}
	name, ok := traverseName(tr[1])
	if !ok {
		return nil
	}
	if _, ok := l.p.Variables[name]; !ok {
		names := make([]string, 0, len(l.p.Variables))
		for n := range l.p.Variables {
			names = append(names, n)
		}
		sort.Strings(names)
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown variable",
			Detail:   fmt.Sprintf("There is no variable %q; declare it with a variable block.%s", name, suggest(name, names)),
			Subject:  tr.SourceRange().Ptr(),
		}}
	}
	return nil
}

func (l *loader) stepRef(tr hcl.Traversal) (stepRef, *hcl.Diagnostic) {
	kind := tr.RootName()
	bad := func(detail string) (stepRef, *hcl.Diagnostic) {
		return stepRef{}, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid step reference", Detail: detail, Subject: tr.SourceRange().Ptr()}
	}
	if len(tr) < 3 {
		return bad(fmt.Sprintf("Refer to a step's output as %s.NAME.OUTPUT.", kind))
	}
	name, ok1 := traverseName(tr[1])
	out, ok2 := traverseName(tr[2])
	if !ok1 || !ok2 {
		return bad(fmt.Sprintf("Refer to a step's output as %s.NAME.OUTPUT.", kind))
	}
	s, ok := l.p.byAddr[kind+"."+name]
	if !ok {
		s, ok = l.disabled[kind+"."+name]
	}
	if !ok {
		var names []string
		for _, st := range l.p.Steps {
			if st.Kind == kind {
				names = append(names, st.Name)
			}
		}
		return stepRef{}, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown step",
			Detail:   fmt.Sprintf("There is no step %s.%s in this pipeline.%s", kind, name, suggest(name, names)),
			Subject:  tr.SourceRange().Ptr(),
		}
	}
	var outs []string
	for _, o := range s.Schema.Outputs {
		if o.Name == out {
			return stepRef{step: s, output: out, rng: tr.SourceRange()}, nil
		}
		outs = append(outs, o.Name)
	}
	return stepRef{}, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Unknown step output",
		Detail:   fmt.Sprintf("Step kind %s has no output %q; its outputs are: %s.", kind, out, strings.Join(outs, ", ")),
		Subject:  tr.SourceRange().Ptr(),
	}
}

func traverseName(t hcl.Traverser) (string, bool) {
	switch t := t.(type) {
	case hcl.TraverseAttr:
		return t.Name, true
	case hcl.TraverseIndex:
		if t.Key.Type() == cty.String {
			return t.Key.AsString(), true
		}
	}
	return "", false
}

// checkCycles reports the first cycle of the step graph, printed in full.
func (l *loader) checkCycles() *hcl.Diagnostic {
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[*Step]int{}
	var stack []*Step
	var found []*Step
	var visit func(s *Step) bool
	visit = func(s *Step) bool {
		state[s] = onStack
		stack = append(stack, s)
		for _, d := range s.Deps {
			switch state[d] {
			case onStack:
				for i, x := range stack {
					if x == d {
						found = append(append([]*Step(nil), stack[i:]...), d)
						return true
					}
				}
			case unvisited:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[s] = done
		return false
	}
	for _, s := range l.p.Steps {
		if state[s] == unvisited && visit(s) {
			break
		}
	}
	if found == nil {
		return nil
	}
	// found lists dependents before their dependencies; print the cycle in
	// data-flow order ("a feeds b feeds a").
	names := make([]string, len(found))
	for i, s := range found {
		names[len(found)-1-i] = s.Addr
	}
	first := found[0]
	var subject *hcl.Range
	for _, refs := range l.refs[first] {
		for _, r := range refs {
			if r.step == found[1] {
				subject = r.rng.Ptr()
			}
		}
	}
	if subject == nil {
		subject = first.Range.Ptr()
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Dependency cycle",
		Detail:   "The steps form a cycle: " + strings.Join(names, " -> ") + ". A step cannot depend, directly or through others, on its own output.",
		Subject:  subject,
	}
}

// OutputName is the workspace-relative path an output is materialized at,
// which is also the value a KIND.NAME.OUTPUT reference evaluates to.
func OutputName(s *Step, output string) string {
	for _, o := range s.Schema.Outputs {
		if o.Name == output {
			return BuildDirName + "/" + s.Addr + "/" + o.Path
		}
	}
	return BuildDirName + "/" + s.Addr
}

func (l *loader) evalContext() *hcl.EvalContext {
	vars := map[string]cty.Value{"var": cty.EmptyObjectVal}
	if len(l.p.Variables) > 0 {
		vars["var"] = cty.ObjectVal(l.p.Variables)
	}
	byKind := map[string]map[string]cty.Value{}
	for _, s := range l.p.Steps {
		outs := map[string]cty.Value{}
		for _, o := range s.Schema.Outputs {
			outs[o.Name] = cty.StringVal(OutputName(s, o.Name))
		}
		if byKind[s.Kind] == nil {
			byKind[s.Kind] = map[string]cty.Value{}
		}
		byKind[s.Kind][s.Name] = cty.ObjectVal(outs)
	}
	for _, s := range l.disabled {
		outs := map[string]cty.Value{}
		for _, o := range s.Schema.Outputs {
			outs[o.Name] = cty.NullVal(cty.String)
		}
		if byKind[s.Kind] == nil {
			byKind[s.Kind] = map[string]cty.Value{}
		}
		byKind[s.Kind][s.Name] = cty.ObjectVal(outs)
	}
	for k, m := range byKind {
		vars[k] = cty.ObjectVal(m)
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions(l.p.Dir, l.reads)}
}

// evaluate computes a step's config and inputs.
func (l *loader) evaluate(s *Step, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	s.Config = map[string]cty.Value{}
	s.KeyConfig = map[string]json.RawMessage{}
	s.Inputs = map[string][]Input{}
	var configID strings.Builder
	// Inputs whose values the kind resolves (program names) are resolved
	// after the loop, with the whole config.
	var resolved []steps.Attribute
	resolvedVals := map[string]cty.Value{}
	for _, a := range s.Schema.Attributes {
		attr, set := s.attrs[a.Name]
		var v cty.Value
		if set {
			val, d := attr.Expr.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			if a.Input && a.Type.IsListType() && val.Type() == cty.String {
				val = cty.ListVal([]cty.Value{val})
			}
			cv, err := convert.Convert(val, a.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Wrong type",
					Detail:   fmt.Sprintf("%s: attribute %q must be %s: %s.", s.Addr, a.Name, a.Type.FriendlyName(), err),
					Subject:  attr.Expr.Range().Ptr(),
				})
				continue
			}
			if !cv.IsWhollyKnown() {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Value not known",
					Detail:   fmt.Sprintf("%s: attribute %q has no known value.", s.Addr, a.Name),
					Subject:  attr.Expr.Range().Ptr(),
				})
				continue
			}
			v = cv
			if a.Required && cv.IsNull() && len(l.disabledRefs[s][a.Name]) == 0 {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Missing required value",
					Detail:   fmt.Sprintf("%s: attribute %q is required, but its value is null.", s.Addr, a.Name),
					Subject:  attr.Expr.Range().Ptr(),
				})
				continue
			}
		} else {
			v = a.DefaultValue()
		}
		if refs := l.disabledRefs[s][a.Name]; a.Input && len(refs) > 0 && hasNull(v) {
			r := refs[0]
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to a disabled step",
				Detail: fmt.Sprintf("%s: attribute %q uses %s.%s, but that step is disabled (its %s is false), so it has no output.",
					s.Addr, a.Name, r.step.Addr, r.output, EnabledAttr),
				Subject: r.rng.Ptr()})
			continue
		}
		if a.Input {
			if a.Resolve != nil {
				resolved, resolvedVals[a.Name] = append(resolved, a), v
				continue
			}
			ins, d := l.inputs(s, a, v)
			diags = append(diags, d...)
			s.Inputs[a.Name] = ins
			continue
		}
		s.Config[a.Name] = v
		b, err := l.canonical(s.Kind, a.Name, v, set)
		if err != nil {
			subject := s.Range
			if set {
				subject = attr.Expr.Range()
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unencodable value",
				Detail: fmt.Sprintf("%s: attribute %q: %s", s.Addr, a.Name, err), Subject: subject.Ptr()})
			continue
		}
		fmt.Fprintf(&configID, "%s=%s\n", a.Name, b)
		if !a.NotInKey {
			s.KeyConfig[a.Name] = b
		}
	}
	for _, a := range resolved {
		ins, d := l.inputs(s, a, resolvedVals[a.Name])
		diags = append(diags, d...)
		s.Inputs[a.Name] = ins
	}
	if v, ok := s.Impl.(steps.Validator); ok && !diags.HasErrors() {
		// Steps with the same kind and config validate alike: a generated
		// pipeline of thousands of similar steps validates each config once.
		memo := s.Kind + "\x00" + configID.String()
		var err error
		l.mu.Lock()
		ok := l.validated[memo]
		l.mu.Unlock()
		if !ok {
			err = v.Validate(&steps.Invocation{Step: s.Addr, Config: s.Config})
			l.mu.Lock()
			l.validated[memo] = err == nil
			l.mu.Unlock()
		}
		if err != nil {
			diags = append(diags, l.attrDiag(s, err))
		}
	}
	if rr, ok := s.Impl.(steps.ResourceRequester); ok && !diags.HasErrors() {
		res, err := rr.Resources(s.Config)
		if err != nil {
			diags = append(diags, l.attrDiag(s, err))
		}
		s.Resources = res
	}
	return diags
}

// attrDiag turns an error a kind returned about its config into a
// diagnostic, at the attribute an *steps.AttrError names (else at the
// block).
func (l *loader) attrDiag(s *Step, err error) *hcl.Diagnostic {
	subject := s.Range
	var ae *steps.AttrError
	if errors.As(err, &ae) {
		if r, ok := s.attrRanges[ae.Attr]; ok {
			subject = r
		}
	}
	msg := strings.TrimSuffix(err.Error(), ".")
	if !strings.HasPrefix(msg, s.Addr) {
		msg = s.Addr + ": " + msg
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value", Detail: msg + ".", Subject: subject.Ptr(), Extra: err}
}

// maxMagnitude bounds the numbers a config may hold: float64's range.
// The canonical JSON writes a number's every digit, so 1e100000000 would
// take minutes and gigabytes to encode.
var maxMagnitude = new(big.Float).SetFloat64(math.MaxFloat64)

// checkMagnitudes refuses numbers in v beyond float64's range.
func checkMagnitudes(v cty.Value) error {
	return cty.Walk(v, func(_ cty.Path, e cty.Value) (bool, error) {
		if e.Type() == cty.Number && e.IsKnown() && !e.IsNull() {
			if new(big.Float).Abs(e.AsBigFloat()).Cmp(maxMagnitude) > 0 {
				return false, fmt.Errorf("the number %s is beyond the range of a 64-bit float (±%g)", roughly(e.AsBigFloat()), math.MaxFloat64)
			}
		}
		return true, nil
	})
}

// roughly writes a huge number as its order of magnitude ("about
// -1e+100000000"), computed from its binary exponent: its decimal digits
// (big.Float.Text) would take minutes to compute.
func roughly(f *big.Float) string {
	var mant big.Float
	exp := f.MantExp(&mant) // f = mant × 2^exp, 0.5 <= |mant| < 1
	m, _ := mant.Float64()
	dec := math.Log10(math.Abs(m)) + float64(exp)*math.Log10(2)
	sign := ""
	if f.Sign() < 0 {
		sign = "-"
	}
	return fmt.Sprintf("about %s1e+%.0f", sign, math.Floor(dec))
}

// hasNull reports whether v is null or a collection with a null element.
func hasNull(v cty.Value) bool {
	if v.IsNull() {
		return true
	}
	if v.CanIterateElements() {
		for it := v.ElementIterator(); it.Next(); {
			if _, e := it.Element(); e.IsNull() {
				return true
			}
		}
	}
	return false
}

// canonical is a config value's canonical JSON; defaults are encoded once
// per kind and attribute.
func (l *loader) canonical(kind, attr string, v cty.Value, set bool) (json.RawMessage, error) {
	if set {
		if err := checkMagnitudes(v); err != nil {
			return nil, err
		}
		return ctyjson.Marshal(v, v.Type())
	}
	k := kind + "." + attr
	l.mu.Lock()
	b, ok := l.defaults[k]
	l.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err == nil {
		l.mu.Lock()
		l.defaults[k] = b
		l.mu.Unlock()
	}
	return b, err
}

// inputs resolves an input attribute's values: step outputs it
// references, files and directories relative to the pipeline (which must
// exist), or, for an attribute with a Resolve function, the files the
// kind resolves them to. A map's entries keep their names as Keys.
func (l *loader) inputs(s *Step, a steps.Attribute, v cty.Value) ([]Input, hcl.Diagnostics) {
	if v.IsNull() {
		return nil, nil
	}
	attr := a.Name
	rng := s.Range
	if at, ok := s.attrs[attr]; ok {
		rng = at.Expr.Range()
	}
	type entry struct{ key, path string }
	var entries []entry
	if v.Type() == cty.String {
		entries = []entry{{path: v.AsString()}}
	} else {
		keyed := v.Type().IsMapType()
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			var key string
			if keyed {
				key = k.AsString()
				if err := checkInputKey(key); err != nil {
					return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid input name",
						Detail: fmt.Sprintf("%s: attribute %q: input name %q %s.", s.Addr, attr, key, err), Subject: rng.Ptr()}}
				}
			}
			if e.IsNull() {
				return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Null input",
					Detail: fmt.Sprintf("%s: attribute %q lists a null path.", s.Addr, attr), Subject: rng.Ptr()}}
			}
			entries = append(entries, entry{key, e.AsString()})
		}
		if len(entries) == 0 && !keyed {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No input files",
				Detail:  fmt.Sprintf("%s: attribute %q lists no files (a glob() that matched nothing?). Paths are relative to the pipeline file's folder, %s.", s.Addr, attr, l.p.Dir),
				Subject: rng.Ptr()}}
		}
	}
	refs := map[string]stepRef{}
	for _, r := range l.refs[s][attr] {
		refs[OutputName(r.step, r.output)] = r
	}
	var diags hcl.Diagnostics
	var out []Input
	for _, en := range entries {
		p := en.path
		if r, ok := refs[p]; ok {
			out = append(out, Input{Name: p, Key: en.key, From: r.step, Output: r.output})
			continue
		}
		if p == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty input path",
				Detail: fmt.Sprintf("%s: attribute %q lists an empty path.", s.Addr, attr), Subject: rng.Ptr()})
			continue
		}
		if a.Resolve != nil {
			// What a kind resolves (a program on PATH) cannot be
			// checked without loading the pipeline.
			l.reads.markUnstable()
			abs, err := a.Resolve(p, s.Config)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot resolve input",
					Detail: fmt.Sprintf("%s: attribute %q: %s.", s.Addr, attr, strings.TrimSuffix(err.Error(), ".")), Subject: rng.Ptr()})
				continue
			}
			out = append(out, Input{Name: p, Key: en.key, Path: abs})
			continue
		}
		abs := resolve(l.p.Dir, p)
		if _, err := os.Stat(abs); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing input file",
				Detail:   fmt.Sprintf("%s: %s (attribute %q) does not exist: %s. Paths are relative to the pipeline file's folder, %s.", s.Addr, p, attr, unwrapPathErr(err), l.p.Dir),
				Subject:  rng.Ptr(),
			})
			continue
		}
		out = append(out, Input{Name: filepath.ToSlash(p), Key: en.key, Path: abs})
	}
	return out, diags
}

// checkInputKey says what is wrong with the name of an input in a map,
// which kinds use as a file name.
func checkInputKey(k string) error {
	switch {
	case k == "", k == ".", k == "..":
		return errors.New("is not a file name")
	case strings.ContainsAny(k, "/\\\x00"):
		return errors.New("must be a file name, without '/', '\\' or NUL")
	}
	return nil
}

// loadVariables declares the variables and applies, in increasing
// precedence, defaults, MLBUILD_VAR_* environment variables, -var-file
// files and -var flags.
func (l *loader) loadVariables(blocks []*hcl.Block, opts LoadOptions) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	decls := map[string]*varDecl{}
	var order []string
	for _, b := range blocks {
		d, dd := decodeVariable(b)
		diags = append(diags, dd...)
		if d == nil {
			continue
		}
		if prev, dup := decls[d.name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is already declared at %s.", d.name, prev.rng), Subject: b.DefRange.Ptr()})
			continue
		}
		decls[d.name] = d
		order = append(order, d.name)
	}
	env := opts.Environ
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "MLBUILD_VAR_") {
			continue
		}
		name := strings.TrimPrefix(k, "MLBUILD_VAR_")
		if d, ok := decls[name]; ok {
			diags = append(diags, d.setRaw(v, "environment variable "+k)...)
		}
	}
	for _, f := range opts.VarFiles {
		diags = append(diags, l.applyVarFile(f, decls)...)
	}
	for _, kv := range opts.Vars {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var",
				Detail: fmt.Sprintf("-var %q must have the form NAME=VALUE.", kv)})
			continue
		}
		d, ok := decls[name]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown variable",
				Detail: fmt.Sprintf("-var %s: the pipeline declares no variable %q.%s", kv, name, suggest(name, order))})
			continue
		}
		diags = append(diags, d.setRaw(raw, "-var "+name)...)
	}
	vals := map[string]cty.Value{}
	for _, n := range order {
		d := decls[n]
		if d.value == cty.NilVal {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Variable not set",
				Detail:  fmt.Sprintf("Variable %q has no default: set it with -var %s=VALUE or MLBUILD_VAR_%s.", n, n, n),
				Subject: d.rng.Ptr()})
			continue
		}
		vals[n] = d.value
	}
	return vals, diags
}

// loadCache reads the optional cache block.
func (l *loader) loadCache(blocks []*hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i, b := range blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate cache block",
				Detail: fmt.Sprintf("A pipeline has at most one cache block; the first is at %s.", blocks[0].DefRange), Subject: b.DefRange.Ptr()})
			continue
		}
		content, d := b.Body.Content(cacheSchema)
		diags = append(diags, d...)
		for name, a := range content.Attributes {
			v, d := a.Expr.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			if v.IsNull() || v.Type() != cty.String {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Wrong type",
					Detail: fmt.Sprintf("cache: %q must be a string.", name), Subject: a.Expr.Range().Ptr()})
				continue
			}
			switch name {
			case "remote":
				l.p.Cache.Remote = v.AsString()
			case "mode":
				m := RemoteMode(v.AsString())
				if m != RemoteReadWrite && m != RemoteReadOnly {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value",
						Detail: fmt.Sprintf("cache: mode must be %q or %q.", RemoteReadWrite, RemoteReadOnly), Subject: a.Expr.Range().Ptr()})
					continue
				}
				l.p.Cache.Mode = m
			}
		}
	}
	return diags
}
