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
// (steps.Output.Headline) from its JSON file's bytes: a header of the
// columns' titles, then a row per metric, each line indented by indent.
func writeHeadline(w io.Writer, h *steps.Headline, data []byte, indent string) error {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	cols := h.Columns
	if len(cols) == 0 {
		cols = []steps.HeadlineColumn{{}}
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
	_, err := io.WriteString(w, b.String())
	return err
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
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

// readWorkspaceHeadline reads an output's headline file where the run
// materialized it, under the workspace ws.
func readWorkspaceHeadline(ws string, s *engine.Step, o steps.Output) ([]byte, error) {
	path := filepath.Join(ws, filepath.FromSlash(engine.OutputName(s, o.Name)))
	if o.Headline.File != "" {
		path = filepath.Join(path, filepath.FromSlash(o.Headline.File))
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxHeadlineBytes {
		return nil, errors.New("too large to print from")
	}
	return os.ReadFile(path)
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
