package eval

import (
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/steps/synthtools"
)

// TestNoToolPromptsAreHeldOut: synth_tools never trains on one of eval's
// default no-tool prompts, so no_tool_call_rate is measured on phrasings
// the model has not seen.
func TestNoToolPromptsAreHeldOut(t *testing.T) {
	recs, _, err := synthtools.Generate(synthtools.Options{Count: 20000, Seed: 1, NoToolFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	held := map[string]bool{}
	for _, p := range DefaultNoToolPrompts {
		held[norm(p)] = true
	}
	for i, rec := range recs {
		if q := rec.Messages[len(rec.Messages)-2].Content; held[norm(q)] {
			t.Fatalf("conversation %d trains on eval's no-tool prompt %q", i+1, q)
		}
	}
}
