package eval

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/synthtools"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

// TestNoToolPromptsAreHeldOut: synth_tools never trains on one of eval's
// default no-tool prompts, so no_tool_call_rate is measured on phrasings
// the model has not seen.
func TestNoToolPromptsAreHeldOut(t *testing.T) {
	recs, _, err := synthtools.Generate(synthtools.Options{Count: 20000, Seed: 1, NoToolFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	small, _, err := synthtools.Generate(synthtools.Options{Count: 5000, Seed: 1, NoToolFraction: 1, SmallTalkFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, small...)
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

// TestNoToolQuestions: eval asks the validation set's conversations that
// need no tool, and only those: not prose, not tool conversations.
func TestNoToolQuestions(t *testing.T) {
	recs, _, err := synthtools.Generate(synthtools.Options{Count: 40, Seed: 2, CallOnlyFraction: 0.5, NoToolFraction: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	var vals []valRecord
	var want []string
	for i, rec := range recs {
		if rec.Call.Location == "" {
			want = append(want, rec.Messages[len(rec.Messages)-2].Content)
		}
		if i%2 == 0 {
			rec.Messages = nil // read from the text
		}
		vals = append(vals, valRecord{rec: rec})
	}
	vals = append(vals, valRecord{rec: trainingdata.Record{Text: "A prose record, trained on whole."}})
	got := noToolQuestions(vals, 0)
	if len(want) != 10 || !reflect.DeepEqual(got, want) {
		t.Fatalf("questions %q, want the 10 no-tool ones %q", got, want)
	}
	if got := noToolQuestions(vals, 3); !reflect.DeepEqual(got, want[:3]) {
		t.Fatalf("limit 3: %q", got)
	}
}

// TestTestInput: a test set's conversations are replayed and reported by
// slice, its cells adding up to the margins and to "all".
func TestTestInput(t *testing.T) {
	s := newSetup(t)
	recs, _, err := synthtools.Generate(synthtools.Options{Count: 10, Seed: 4, Set: synthtools.SetTest, NoToolFraction: 0.2, SystemPrompt: new(string)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		must(t, enc.Encode(r))
	}
	path := filepath.Join(t.TempDir(), "test.jsonl")
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
	inv := s.invocation(t, map[string]cty.Value{"no_tool_prompts": cty.ListValEmpty(cty.String), "prompts": cty.ListValEmpty(cty.String)})
	inv.Inputs["test"] = []steps.InputFile{{Path: path, Name: "build/synth_tools.test/conversations.jsonl", Digest: strings.Repeat("d", 64)}}
	rep := run(t, inv)
	if len(rep.TestConversations) != 8 || len(rep.TestNoTool) != 2 || len(rep.TestFiles) != 1 || rep.TestFiles[0].Records != 10 {
		t.Fatalf("test conversations %d, no-tool %d, files %+v", len(rep.TestConversations), len(rep.TestNoTool), rep.TestFiles)
	}
	for key, m := range map[string]ModelReport{"base": rep.Models.Base, "finetuned": rep.Models.Finetuned} {
		sl := m.Slices
		if sl["all"] == nil || sl["all"].ToolPrompts != 8 || sl["no_tool_seen_phrasing"] == nil || sl["no_tool_seen_phrasing"].NoToolPrompts != 2 {
			t.Fatalf("%s: slices %v", key, sl)
		}
		cells, places, phrasings := 0, 0, 0
		for _, p := range []string{"seen", "new"} {
			for _, q := range []string{"seen", "new"} {
				if c := sl[p+"_place_"+q+"_phrasing"]; c != nil {
					cells += c.ToolPrompts
				}
			}
			if c := sl[p+"_place"]; c != nil {
				places += c.ToolPrompts
			}
			if c := sl[p+"_phrasing"]; c != nil {
				phrasings += c.ToolPrompts
			}
		}
		if cells != 8 || places != 8 || phrasings != 8 {
			t.Errorf("%s: cells %d, places %d, phrasings %d; want 8 each", key, cells, places, phrasings)
		}
	}
	for i, c := range rep.TestConversations {
		if c.Slice == nil || c.Slice.Place == "" || len(c.Finetuned.Transcript) == 0 {
			t.Errorf("test conversation %d: %+v", i, c)
		}
	}
}
