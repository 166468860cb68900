// Package provenance exports a step's action-cache entry as an in-toto
// Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
// carrying a SLSA Provenance v1 predicate (https://slsa.dev/spec/v1.0/provenance),
// the form `mlbuild show --provenance` prints.
//
// The statement's fields, for the build type
// https://github.com/mlbuild/mlbuild/step@v1 (one run of one mlbuild step):
//
//   - subject: one entry per output, sorted by name: name = its workspace
//     path build/KIND.NAME/PATH, digest {"sha256": HEX}, annotations
//     {output, size, dir}. A directory's digest is the SHA-256 of mlbuild's
//     canonical manifest of the tree, not of an archive.
//   - buildDefinition.externalParameters: pipeline (the pipeline file's
//     path, relative, slash-separated), step (KIND.NAME), kind, and config
//     (each keyed attribute's evaluated value as canonical JSON).
//   - buildDefinition.internalParameters: implementationVersion (the step
//     kind's version that enters the key), key (the step key), device (the
//     device the step ran on) and host (the machine, when recorded).
//   - buildDefinition.resolvedDependencies: each input, roles sorted, in
//     pipeline order within a role: name = the path as the pipeline wrote it
//     (or build/KIND.NAME/PATH for another step's output), digest
//     {"sha256": HEX}, annotations {role, size, dir}.
//   - runDetails.builder: id https://github.com/mlbuild/mlbuild@VERSION of
//     the mlbuild that ran the step, version {"mlbuild", "go"}.
//   - runDetails.metadata: invocationId = the step key; startedOn and
//     finishedOn in RFC 3339, UTC, to the millisecond.
//   - runDetails.byproducts: the step's key components (kind, version,
//     config, input digests by role), whose canonical JSON's SHA-256 is the
//     key, named "key-components.json".
//
// Nothing here reads the clock or the machine: the statement is a pure
// function of the cache entry, so the same entry always gives the same
// bytes.
package provenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

const (
	// StatementType is the in-toto Statement v1 _type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is the SLSA Provenance v1 predicateType.
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType identifies the template of an mlbuild step run.
	BuildType = "https://github.com/mlbuild/mlbuild/step@v1"
	// BuilderID is the builder.id prefix; "@VERSION" follows.
	BuilderID = "https://github.com/mlbuild/mlbuild"
	// buildDir is where the engine materializes outputs (engine.BuildDirName).
	buildDir = "build"
	// timeFormat is RFC 3339 in UTC with milliseconds, as protobuf's JSON
	// encoding of a Timestamp writes it.
	timeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// ResourceDescriptor is an in-toto v1 ResourceDescriptor (the fields used).
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// InTotoStatement is an in-toto Statement v1 with a SLSA Provenance v1 predicate.
type InTotoStatement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     Provenance           `json:"predicate"`
}

// Provenance is the SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is SLSA's buildDefinition.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	InternalParameters   InternalParameters   `json:"internalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
}

// ExternalParameters are what the pipeline author controls.
type ExternalParameters struct {
	Pipeline string                     `json:"pipeline"`
	Step     string                     `json:"step"`
	Kind     string                     `json:"kind"`
	Config   map[string]json.RawMessage `json:"config"`
}

// InternalParameters are what mlbuild decided.
type InternalParameters struct {
	ImplementationVersion string `json:"implementationVersion"`
	Key                   string `json:"key"`
	Device                string `json:"device,omitempty"`
	Host                  string `json:"host,omitempty"`
}

// RunDetails is SLSA's runDetails.
type RunDetails struct {
	Builder    Builder              `json:"builder"`
	Metadata   *BuildMetadata       `json:"metadata,omitempty"`
	Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
}

// Builder is SLSA's runDetails.builder.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// BuildMetadata is SLSA's runDetails.metadata.
type BuildMetadata struct {
	InvocationID string `json:"invocationId,omitempty"`
	StartedOn    string `json:"startedOn,omitempty"`
	FinishedOn   string `json:"finishedOn,omitempty"`
}

// Build returns the statement for ar as a value; Statement encodes it.
// pipeline is the pipeline file's path relative to the workspace (an
// absolute path is an error: statements must not depend on where a
// checkout lives); outputPaths maps output names to workspace paths, and an
// output it does not name gets build/KIND.NAME/PATH.
func Build(pipeline string, ar *cache.ActionResult, outputPaths map[string]string) (*InTotoStatement, error) {
	if ar == nil {
		return nil, errors.New("provenance: no action result")
	}
	if pipeline == "" {
		return nil, errors.New("provenance: empty pipeline path")
	}
	if filepath.IsAbs(pipeline) || path.IsAbs(filepath.ToSlash(pipeline)) {
		return nil, fmt.Errorf("provenance: pipeline path %q is absolute; pass it relative to the workspace", pipeline)
	}
	if len(ar.Outputs) == 0 {
		return nil, fmt.Errorf("provenance: step %s has no outputs to attest", ar.Step)
	}

	names := sortedKeys(ar.Outputs)
	subject := make([]ResourceDescriptor, 0, len(names))
	for _, name := range names {
		o := ar.Outputs[name]
		p := outputPaths[name]
		if p == "" {
			p = buildDir + "/" + ar.Step + "/" + o.Path
		} else if filepath.IsAbs(p) {
			return nil, fmt.Errorf("provenance: output %s path %q is absolute; pass it relative to the workspace", name, p)
		}
		ann := map[string]any{"output": name, "size": o.Size}
		if o.Dir {
			ann["dir"] = true
		}
		subject = append(subject, ResourceDescriptor{
			Name:        filepath.ToSlash(p),
			Digest:      map[string]string{"sha256": o.Digest},
			Annotations: ann,
		})
	}

	config := ar.Components.Config
	if config == nil {
		config = map[string]json.RawMessage{}
	}
	for attr, v := range config {
		if !json.Valid(v) {
			return nil, fmt.Errorf("provenance: step %s: config %s is not valid JSON", ar.Step, attr)
		}
	}

	deps := []ResourceDescriptor{}
	for _, role := range sortedKeys(ar.Components.Inputs) {
		paths := ar.Provenance.InputPaths[role]
		for i, in := range ar.Components.Inputs[role] {
			name := in.Name
			if i < len(paths) && paths[i] != "" {
				name = paths[i]
			}
			ann := map[string]any{"role": role, "size": in.Size}
			if in.Dir {
				ann["dir"] = true
			}
			deps = append(deps, ResourceDescriptor{
				Name:        name,
				Digest:      map[string]string{"sha256": in.Digest},
				Annotations: ann,
			})
		}
	}

	pv := ar.Provenance
	builder := Builder{ID: BuilderID, Version: map[string]string{}}
	if pv.MlbuildVersion != "" {
		builder.ID += "@" + pv.MlbuildVersion
		builder.Version["mlbuild"] = pv.MlbuildVersion
	}
	if pv.GoVersion != "" {
		builder.Version["go"] = pv.GoVersion
	}
	md := &BuildMetadata{InvocationID: ar.Key}
	if !pv.Started.IsZero() {
		start := pv.Started.UTC()
		md.StartedOn = start.Format(timeFormat)
		md.FinishedOn = start.Add(time.Duration(pv.Seconds * float64(time.Second))).Format(timeFormat)
	}

	var byproducts []ResourceDescriptor
	if ar.Key != "" {
		byproducts = append(byproducts, ResourceDescriptor{
			Name:      "key-components.json",
			Digest:    map[string]string{"sha256": ar.Key},
			MediaType: "application/json",
			Annotations: map[string]any{
				"description": "canonical JSON of the step's key components (kind, version, config, input digests by role); its SHA-256 is the step key",
			},
		})
	}

	return &InTotoStatement{
		Type:          StatementType,
		Subject:       subject,
		PredicateType: PredicateType,
		Predicate: Provenance{
			BuildDefinition: BuildDefinition{
				BuildType: BuildType,
				ExternalParameters: ExternalParameters{
					Pipeline: filepath.ToSlash(pipeline),
					Step:     ar.Step,
					Kind:     ar.Components.Kind,
					Config:   config,
				},
				InternalParameters: InternalParameters{
					ImplementationVersion: ar.Components.Version,
					Key:                   ar.Key,
					Device:                pv.Device,
					Host:                  pv.Host,
				},
				ResolvedDependencies: deps,
			},
			RunDetails: RunDetails{Builder: builder, Metadata: md, Byproducts: byproducts},
		},
	}, nil
}

// Statement returns the in-toto statement for ar as indented JSON ending in
// a newline. The same arguments always give the same bytes: maps are
// encoded with sorted keys and lists are sorted.
func Statement(pipeline string, ar *cache.ActionResult, outputPaths map[string]string) ([]byte, error) {
	st, err := Build(pipeline, ar, outputPaths)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return b.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
