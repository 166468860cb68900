package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/steps"
)

// maxHeadlineBytes bounds the JSON file a headline is read from.
const maxHeadlineBytes = 64 << 20

// writeHeadline prints the table a step kind declares for an output
// (steps.Output.Headline) from its JSON file, read from r as far as the
// metrics need: a header of the columns' titles, then a row per metric,
// each line indented by indent.
func writeHeadline(w io.Writer, h *steps.Headline, r io.Reader, indent string) error {
	cols := h.Columns
	if len(cols) == 0 {
		cols = []steps.HeadlineColumn{{}}
	}
	want := map[string]bool{}
	for _, c := range cols {
		for _, m := range h.Metrics {
			first, _, _ := strings.Cut(joinPath(c.Path, m.Path), ".")
			want[first] = true
		}
	}
	doc, err := decodeMembers(io.LimitReader(r, maxHeadlineBytes), want)
	if err != nil {
		return err
	}
	// The table: names left-aligned, numbers right-aligned under the
	// titles.
	rows := [][]string{{""}}
	for _, c := range cols {
		rows[0] = append(rows[0], c.Title)
	}
	for _, m := range h.Metrics {
		row, found := []string{m.Name}, false
		for _, c := range cols {
			v := lookupJSON(doc, joinPath(c.Path, m.Path))
			found = found || v != nil
			row = append(row, formatMetric(m, v))
		}
		if found || !m.Optional { // an optional metric that no column has is left out
			rows = append(rows, row)
		}
	}
	if len(h.Columns) == 0 {
		rows = rows[1:]
	}
	width := make([]int, len(cols)+1)
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.WriteString(indent)
		b.WriteString(row[0] + strings.Repeat(" ", width[0]-utf8.RuneCountInString(row[0])))
		for i, cell := range row[1:] {
			b.WriteString(strings.Repeat(" ", 3+width[i+1]-utf8.RuneCountInString(cell)) + cell)
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// decodeMembers decodes, from a JSON object, the members whose names want
// holds, and stops reading once it has them all: a report keeps its
// summary first, so printing a headline after every no-op run reads a few
// kilobytes of a report that may be megabytes long, not all of it.
func decodeMembers(r io.Reader, want map[string]bool) (map[string]any, error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	got := map[string]any{}
	for dec.More() && len(got) < len(want) {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		if want[name] {
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, err
			}
			got[name] = v
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if len(got) < len(want) {
		// Read to the end: the object must be complete.
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// lookupJSON follows a dotted path of object keys; nil when it leads
// nowhere.
func lookupJSON(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[k]
	}
	return v
}

func formatMetric(m steps.HeadlineMetric, v any) string {
	switch x := v.(type) {
	case float64:
		if m.Percent {
			return fmt.Sprintf("%.0f%%", 100*x)
		}
		f := m.Format
		if f == "" {
			f = "%.4g"
		}
		return fmt.Sprintf(f, x)
	case string:
		return x
	case bool:
		return fmt.Sprint(x)
	}
	return "-"
}

// headlineOutputs lists the step's outputs that declare a headline.
func headlineOutputs(s *engine.Step) []steps.Output {
	var out []steps.Output
	for _, o := range s.Schema.Outputs {
		if o.Headline != nil {
			out = append(out, o)
		}
	}
	return out
}

// openWorkspaceHeadline opens an output's headline file where the run
// materialized it, under the workspace ws.
func openWorkspaceHeadline(ws string, s *engine.Step, o steps.Output) (*os.File, error) {
	path := filepath.Join(ws, filepath.FromSlash(engine.OutputName(s, o.Name)))
	if o.Headline.File != "" {
		path = filepath.Join(path, filepath.FromSlash(o.Headline.File))
	}
	return os.Open(path)
}

// readStoredHeadline reads an output's headline file from the cache: the
// output's own blob, or the file in its directory's manifest.
func readStoredHeadline(store *cache.Store, o steps.Output, info engine.OutputInfo) ([]byte, error) {
	digest, size := info.Digest, info.Size
	if info.Dir {
		m, err := store.Manifest(info.Digest)
		if err != nil {
			return nil, err
		}
		digest = ""
		for _, e := range m.Entries {
			if e.Path == o.Headline.File && !e.Dir {
				digest, size = e.Digest, e.Size
			}
		}
		if digest == "" {
			return nil, fmt.Errorf("%s has no %s", info.Path, o.Headline.File)
		}
	}
	if size > maxHeadlineBytes {
		return nil, errors.New("too large to print from")
	}
	return store.ReadBlob(digest)
}
