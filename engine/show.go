package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/mlbuild/mlbuild/cache"
)

// StepInfo is what `mlbuild show` prints about a step's latest build.
type StepInfo struct {
	Step       string                     `json:"step"`
	Key        string                     `json:"key"`
	Outputs    map[string]OutputInfo      `json:"outputs"`
	Components cache.KeyComponents        `json:"components"`
	Provenance cache.Provenance           `json:"provenance"`
	Reports    map[string]json.RawMessage `json:"reports,omitempty"`
	// Logs are the files of the step's report folder from its last run in
	// this workspace (its program's stdout.log and stderr.log), relative
	// to the workspace; they are not outputs and are not cached.
	Logs []string `json:"logs,omitempty"`
	// Result is the action-cache entry the rest was read from.
	Result *cache.ActionResult `json:"-"`
}

// maxReportBytes bounds the JSON outputs show inlines.
const maxReportBytes = 1 << 20

// Show returns the step's latest build in this pipeline: outputs with
// paths and digests, key components, provenance and its JSON reports.
func (e *Engine) Show(addr string) (*StepInfo, error) {
	s, ok := e.p.byAddr[addr]
	if !ok {
		return nil, fmt.Errorf("no step %s in %s%s", addr, displayName(e.p.File), suggest(addr, e.p.addrs()))
	}
	head, ok, err := e.store.Head(e.pipelineID, addr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s has not been built in this workspace yet: run `mlbuild run %s --target %s`", addr, displayName(e.p.File), addr)
	}
	ar, ok, err := e.store.GetAction(head.Key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s's latest result (%s) is no longer in the cache: run the pipeline again", addr, shortDigest(head.Key))
	}
	info := &StepInfo{Step: addr, Key: ar.Key, Outputs: e.outputInfo(s, ar.Outputs), Components: ar.Components, Provenance: ar.Provenance, Result: ar}
	if ents, err := os.ReadDir(e.LogDir(s)); err == nil {
		for _, ent := range ents {
			info.Logs = append(info.Logs, BuildDirName+"/"+LogDirName+"/"+addr+"/"+ent.Name())
		}
	}
	for name, o := range ar.Outputs {
		if o.Dir || !strings.HasSuffix(o.Path, ".json") || o.Size > maxReportBytes {
			continue
		}
		b, err := e.store.ReadBlob(o.Digest)
		if err != nil || !json.Valid(b) {
			continue
		}
		if info.Reports == nil {
			info.Reports = map[string]json.RawMessage{}
		}
		info.Reports[name] = b
	}
	return info, nil
}

// GraphNode is a step in the graph export.
type GraphNode struct {
	Step    string   `json:"step"`
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Deps    []string `json:"deps"`
	Outputs []string `json:"outputs"`
	Heavy   bool     `json:"heavy,omitempty"`
}

// Graph lists the steps with their dependencies, in dependency order.
func (p *Pipeline) Graph() []GraphNode {
	want := map[*Step]bool{}
	for _, s := range p.Steps {
		want[s] = true
	}
	var out []GraphNode
	for _, s := range topoOrder(p.Steps, want) {
		n := GraphNode{Step: s.Addr, Kind: s.Kind, Name: s.Name, Deps: []string{}, Heavy: s.Schema.Heavy}
		for _, d := range s.Deps {
			n.Deps = append(n.Deps, d.Addr)
		}
		for _, o := range s.Schema.Outputs {
			n.Outputs = append(n.Outputs, o.Name)
		}
		out = append(out, n)
	}
	return out
}

// edges lists (from, to, label) with labels naming the outputs used.
func (p *Pipeline) edges() [][3]string {
	var out [][3]string
	for _, s := range p.Steps {
		for _, d := range s.Deps {
			var used []string
			seen := map[string]bool{}
			for _, ins := range s.Inputs {
				for _, in := range ins {
					if in.From == d && !seen[in.Output] {
						used, seen[in.Output] = append(used, in.Output), true
					}
				}
			}
			sort.Strings(used)
			out = append(out, [3]string{d.Addr, s.Addr, strings.Join(used, ",")})
		}
	}
	return out
}

// DOT renders the graph for Graphviz.
func (p *Pipeline) DOT() string {
	var b strings.Builder
	b.WriteString("digraph pipeline {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n")
	for _, n := range p.Graph() {
		fmt.Fprintf(&b, "  %q [label=%q];\n", n.Step, n.Kind+"\n"+n.Name)
	}
	for _, e := range p.edges() {
		fmt.Fprintf(&b, "  %q -> %q", e[0], e[1])
		if e[2] != "" {
			fmt.Fprintf(&b, " [label=%q]", e[2])
		}
		b.WriteString(";\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the graph as a Mermaid flowchart.
func (p *Pipeline) Mermaid() string {
	ids := map[string]string{}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, n := range p.Graph() {
		ids[n.Step] = fmt.Sprintf("s%d", i)
		fmt.Fprintf(&b, "  s%d[\"%s\"]\n", i, n.Step)
	}
	for _, e := range p.edges() {
		if e[2] != "" {
			fmt.Fprintf(&b, "  %s -->|%s| %s\n", ids[e[0]], e[2], ids[e[1]])
		} else {
			fmt.Fprintf(&b, "  %s --> %s\n", ids[e[0]], ids[e[1]])
		}
	}
	return b.String()
}
