// Package steps defines the contract between the engine and step kinds
// (schema, implementation version, run) and the registry that maps a kind's
// name to its implementation. Each built-in kind lives in its own
// sub-package and registers itself; the engine knows kinds only through this
// package.
package steps

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/zclconf/go-cty/cty"
)

// Kind is one step kind: a self-describing, deterministic function from
// inputs and config to outputs.
type Kind interface {
	// Schema describes the kind: its name, version, attributes and outputs.
	Schema() Schema
	// Run executes one step. It reads inv.Inputs, writes every declared
	// output under inv.OutDir and returns an error describing what went
	// wrong (naming the file, line or field at fault). It must be
	// deterministic: the same inputs and config give byte-identical outputs.
	Run(ctx context.Context, inv *Invocation) error
}

// Validator is implemented by kinds that check their config when the
// pipeline is loaded, so that a bad value is reported with its file, line
// and column before anything runs. Validate sees an Invocation whose Step
// and Config are set (no inputs, no output folder). Return an *AttrError to
// point the diagnostic at the attribute at fault.
type Validator interface {
	Validate(inv *Invocation) error
}

// AttrError is a problem with one attribute's value.
type AttrError struct {
	Attr string
	Msg  string
}

func (e *AttrError) Error() string { return fmt.Sprintf("attribute %q: %s", e.Attr, e.Msg) }

// Schema describes a step kind.
type Schema struct {
	// Kind is the first label of a step block, e.g. "csv_clean".
	Kind string
	// Version is the implementation version. It enters every cache key, so
	// bump it whenever the kind can produce different output for the same
	// inputs and config.
	Version string
	// Doc is a one-paragraph description for docs and `mlbuild help`.
	Doc string
	// Attributes are the arguments a step block of this kind accepts.
	Attributes []Attribute
	// Outputs are the artifacts the kind writes, each referable as
	// KIND.NAME.OUTPUT from other steps.
	Outputs []Output
	// Heavy marks kinds (training) that must not run concurrently with
	// another heavy step.
	Heavy bool
}

// Attribute is one argument of a step block.
type Attribute struct {
	Name string
	// Type is the cty type the value is converted to. Input attributes use
	// cty.String (one path), cty.List(cty.String) (several paths) or
	// cty.Map(cty.String) (paths by name: each InputFile's Key is its name).
	Type cty.Type
	// Input marks attributes whose values are paths (files or directories,
	// or references to other steps' outputs) whose content is an input of
	// the step. Their content digests, not their paths, enter the key.
	Input bool
	// Required attributes must be set; others take Default.
	Required bool
	// Default is used when the attribute is absent; cty.NilVal means
	// "absent" (the step sees a null value).
	Default cty.Value
	// NotInKey marks settings that cannot change the output (thread count,
	// progress style, a device chosen by "auto"): they stay out of the key.
	NotInKey bool
	// Resolve, for an input attribute whose values are not paths (program
	// names looked up on a PATH, say), returns the absolute path of the
	// file a value names, given the step's evaluated config (every
	// non-input attribute). An error is reported at the attribute. The
	// file's digest enters the key under the value as its name, so the
	// step reruns when the file changes.
	Resolve func(value string, config map[string]cty.Value) (string, error)
	Doc     string
}

// DefaultValue is the value a step sees when the attribute is absent: its
// Default, or a null of its Type when it has none.
func (a Attribute) DefaultValue() cty.Value {
	if a.Default == cty.NilVal {
		return cty.NullVal(a.Type)
	}
	return a.Default
}

// Output is one artifact a step writes.
type Output struct {
	// Name is how other steps refer to it: KIND.NAME.<Name>.
	Name string
	// Path is the file (or directory, when Dir) the step writes under its
	// output folder.
	Path string
	Dir  bool
	Doc  string
	// Announce names a file inside a Dir output (e.g. "report.html") that
	// `mlbuild run` prints the path of after a successful build: the
	// artifact a person opens.
	Announce string
	// Headline, when set, names the figures of a JSON file in this output
	// that `mlbuild run` prints after a build and `mlbuild show` with the
	// step: the numbers a person looks at first (an eval's rates and
	// losses). It only says what to print: it enters no key.
	Headline *Headline
}

// Headline is a JSON file in an output and the numbers in it worth
// printing, as a table: a row per metric, a column per compared object.
type Headline struct {
	// File is the JSON file inside a Dir output; "" when the output is
	// the JSON file itself.
	File string
	// Columns are the objects compared side by side (e.g. a base and a
	// fine-tuned model), each a dotted path into the JSON; none: one
	// column, the metrics' paths start at the top.
	Columns []HeadlineColumn
	// Metrics are the rows.
	Metrics []HeadlineMetric
}

// HeadlineColumn is one compared object: a title and the dotted path of
// its JSON object ("models.base").
type HeadlineColumn struct {
	Title, Path string
}

// HeadlineMetric is one number: a name, its dotted path below each column
// ("exact_args_rate"), and how to print it. A missing or null value is
// printed as "-".
type HeadlineMetric struct {
	Name string
	Path string
	// Percent prints a fraction (0..1) as a whole percentage; otherwise
	// Format is the fmt verb ("%.2f"; "%.4g" when empty).
	Percent bool
	Format  string
	// Optional metrics (those of an optional input) are left out when no
	// column has them, where others print "-".
	Optional bool
}

// InputFile is one resolved input artifact.
type InputFile struct {
	// Path is where the step reads it (absolute).
	Path string
	// Name is the path as the pipeline names it, relative to the pipeline
	// (or build/KIND.NAME/... for another step's output). Use it for
	// messages and tagging, never to locate the file.
	Name string
	// Digest is the artifact's SHA-256 content digest (lower-case hex).
	Digest string
	// Key is the input's name in a map-typed input attribute ("" in a
	// list or a single path).
	Key string
}

// ProgressFunc receives a step's progress: done out of total units and a
// short message (e.g. "loss 2.31"). total may be 0 when unknown.
type ProgressFunc func(done, total float64, msg string)

// OutputFunc receives one line a step's program printed, and the stream
// ("stdout" or "stderr") it came on.
type OutputFunc func(stream, line string)

// OutputDeclarer is implemented by kinds whose outputs the step block
// declares rather than the schema (the command kind's outputs map). The
// engine evaluates the attribute OutputsAttr names with variables and
// functions only (what a step produces cannot depend on another step's
// output), before any reference is resolved, and uses the outputs
// DeclareOutputs returns in place of Schema.Outputs for that step.
type OutputDeclarer interface {
	OutputsAttr() string
	// DeclareOutputs returns the outputs the attribute's value declares,
	// or an error saying what is wrong with it.
	DeclareOutputs(v cty.Value) ([]Output, error)
}

// Resources are what one run of a step needs of the machine: CPU cores,
// memory in bytes and GPUs (zero: not said). The engine schedules a
// local step by its CPUs, and an executor for a cluster asks its
// scheduler for all three.
type Resources struct {
	CPUs        int   `json:"cpus,omitempty"`
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	GPUs        int   `json:"gpus,omitempty"`
}

// ResourceRequester is implemented by kinds whose steps say what they
// need (the command kind's resources attribute). It is called once at
// load time with the step's config (inputs excluded), after Validate.
type ResourceRequester interface {
	Resources(config map[string]cty.Value) (Resources, error)
}

// Invocation is everything a step run gets from the engine.
type Invocation struct {
	// Step is the step's address, "KIND.NAME".
	Step string
	// Config holds every non-input attribute, defaults applied. Read it
	// once with Decode.
	Config map[string]cty.Value
	// Inputs holds every input attribute's resolved files, in the order the
	// pipeline lists them.
	Inputs map[string][]InputFile
	// OutDir is an empty private directory: write each Output at
	// filepath.Join(OutDir, Output.Path). The engine moves it into place
	// atomically only after Run returns nil.
	OutDir string
	// TempDir is scratch space removed after the run.
	TempDir string
	// StateDir is a folder private to this step's cache key that survives
	// an interrupted run (a crash, a kill, Ctrl-C) and is removed once the
	// step succeeds. Long steps keep checkpoints there and resume from
	// them; whatever is there must give the same outputs as a run from
	// scratch.
	StateDir string
	// Log is the step's logger.
	Log *slog.Logger
	// Progress may be nil.
	Progress ProgressFunc
	// Output, which may be nil, streams what a step's program prints,
	// line by line, as it prints it (the CLI shows each line after the
	// step's name).
	Output OutputFunc
	// Device, which may be nil, receives the device the step computes on
	// ("cpu", "cuda:0"), which the engine records in the step's provenance
	// (see ReportDevice).
	Device func(name string)
	// LogDir is the step's report folder, build/.logs/KIND.NAME/, removed
	// before each run; a kind that keeps a report creates it. What a step
	// writes there (its program's full stdout and stderr) is kept after
	// the run, whether it succeeds or fails; it is not an output, enters
	// no digest and is not cached. Empty when the caller keeps no logs.
	LogDir string
}

// ReportProgress forwards progress to the engine when it listens.
func (inv *Invocation) ReportProgress(done, total float64, msg string) {
	if inv.Progress != nil {
		inv.Progress(done, total, msg)
	}
}

// PrintOutput forwards a line of a program's output to the engine when it
// listens.
func (inv *Invocation) PrintOutput(stream, line string) {
	if inv.Output != nil {
		inv.Output(stream, line)
	}
}

// ReportDevice tells the engine which device the step runs on (the name
// tensor.OpenDevice gave: "cpu", "cuda:0"); the engine records it in the
// step's provenance. A step that does not call it is recorded as "cpu".
func (inv *Invocation) ReportDevice(name string) {
	if inv.Device != nil {
		inv.Device(name)
	}
}

// Logger returns the step's logger, or a discarding one.
func (inv *Invocation) Logger() *slog.Logger {
	if inv.Log != nil {
		return inv.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Registry maps kind names to implementations.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]Kind{}} }

// Register adds a kind. Registering a name twice is a programming error and
// panics at start-up.
func (r *Registry) Register(k Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := k.Schema().Kind
	if _, dup := r.kinds[name]; dup {
		panic("steps: kind registered twice: " + name)
	}
	r.kinds[name] = k
}

// Lookup returns the kind with the given name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// Names returns the registered kind names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Default is the registry that built-in kinds register with from init.
var Default = NewRegistry()

// Register adds a kind to Default.
func Register(k Kind) { Default.Register(k) }
