package csvclean

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// defaultConfig returns the schema's defaults as the engine would pass them.
func defaultConfig() map[string]cty.Value { return steptest.Config(Kind{}, nil) }

// runKind runs the kind on the given files with the defaults overridden by
// over, and returns the output texts, the report and the raw output.
func runKind(t testing.TB, files []string, over map[string]cty.Value) ([]string, *Report, []byte, error) {
	t.Helper()
	cfg := defaultConfig()
	for k, v := range over {
		cfg[k] = v
	}
	var inputs []steps.InputFile
	for _, f := range files {
		inputs = append(inputs, steps.InputFile{Path: f, Name: filepath.Base(f)})
	}
	out := t.TempDir()
	inv := &steps.Invocation{Step: "csv_clean.test", Config: cfg,
		Inputs: map[string][]steps.InputFile{"source": inputs}, OutDir: out, TempDir: t.TempDir()}
	if err := (Kind{}).Run(context.Background(), inv); err != nil {
		return nil, nil, nil, err
	}
	raw, err := os.ReadFile(filepath.Join(out, OutputFile))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	if err := steps.ReadJSONL(filepath.Join(out, OutputFile), func(_ int, line []byte) error {
		var r struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		texts = append(texts, r.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rep := &Report{}
	rb, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rb, rep); err != nil {
		t.Fatal(err)
	}
	return texts, rep, raw, nil
}

// writeCSV writes content to a temp file and returns its path.
func writeCSV(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
