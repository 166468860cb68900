package synthtools

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// TestNoToolConversations: with no_tool_fraction f, round(count·f) of the
// conversations, spread evenly, are a user's question and an answer with
// no call; the tool conversations are the ones the same seed gives with
// f = 0, in order.
func TestNoToolConversations(t *testing.T) {
	const count = 1000
	plain, _, err := Generate(Options{Count: count, Seed: 3, CallOnlyFraction: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	mixed, rep, err := Generate(Options{Count: count, Seed: 3, CallOnlyFraction: 0.8, NoToolFraction: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if len(mixed) != count || rep.NoTool != 250 {
		t.Fatalf("%d records, %d without a tool; want %d and 250", len(mixed), rep.NoTool, count)
	}
	tool := 0
	for i, rec := range mixed {
		if rec.Call.Location != "" {
			if !reflect.DeepEqual(rec, plain[tool]) {
				t.Fatalf("record %d: tool conversation %d differs from the one without no-tool conversations", i+1, tool+1)
			}
			tool++
			continue
		}
		if i%4 != 3 {
			t.Fatalf("record %d needs no tool; want every fourth", i+1)
		}
		m := rec.Messages
		if len(m) != 3 || m[0].Role != chat.RoleSystem || m[1].Role != chat.RoleUser || m[2].Role != chat.RoleAssistant {
			t.Fatalf("record %d: messages %+v", i+1, m)
		}
		if _, err := weather.Parse(m[2].Content); err == nil || strings.Contains(m[2].Content, "<tool_call>") {
			t.Fatalf("record %d: the answer has a call: %q", i+1, m[2].Content)
		}
		if strings.Contains(m[2].Content, "{") || strings.Contains(m[1].Content, "{") {
			t.Fatalf("record %d: a placeholder is left: %+v", i+1, m)
		}
		if rec.Text != twainbot().Render(m, false) {
			t.Fatalf("record %d: text is not the messages' rendering", i+1)
		}
	}
	sum := 0
	for _, k := range NoToolKinds {
		if rep.NoToolKinds[k] == 0 {
			t.Errorf("no %s conversations in %d", k, rep.NoTool)
		}
		sum += rep.NoToolKinds[k]
	}
	if sum != rep.NoTool {
		t.Errorf("kinds sum to %d, want %d", sum, rep.NoTool)
	}
	if rep.Answered+rep.CallOnly != count-rep.NoTool {
		t.Errorf("answered %d + call-only %d, want %d", rep.Answered, rep.CallOnly, count-rep.NoTool)
	}
}

// TestNoToolRewritesKeepTheSentence: a rewrite restates the sentence it
// was given, as a clause.
func TestNoToolRewritesKeepTheSentence(t *testing.T) {
	r := newNoToolRNG(1)
	n := 0
	for range 500 {
		kind, _, q, a := noToolConversation(r)
		if kind != noToolRewrite {
			continue
		}
		n++
		found := false
		for _, s := range plainSentences {
			if strings.HasSuffix(strings.ToLower(q), strings.ToLower(s)) {
				found = strings.Contains(a, lowerFirst(strings.TrimSuffix(s, ".")))
				break
			}
		}
		if !found {
			t.Fatalf("rewrite %q of %q does not restate its sentence", a, q)
		}
	}
	if n == 0 {
		t.Fatal("no rewrites drawn")
	}
}

func TestNoToolFractionAttribute(t *testing.T) {
	if _, _, err := Generate(Options{Count: 10, NoToolFraction: 1.5}); err == nil || !strings.Contains(err.Error(), "no-tool fraction") {
		t.Fatalf("fraction 1.5: %v", err)
	}
}

// TestTestSet: a test set's conversations are tagged with their slices,
// about a quarter each; a new place is one no training set names (a
// listed place is seen) and a new phrasing a template training never
// uses.
func TestTestSet(t *testing.T) {
	recs, rep, err := Generate(Options{Count: 800, Seed: 9, Set: SetTest, NoToolFraction: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	train, _, err := Generate(Options{Count: 5000, Seed: 9, Places: PlacesAny})
	if err != nil {
		t.Fatal(err)
	}
	trained := map[string]bool{}
	for _, rec := range train {
		trained[weather.LocationKey(rec.Call.Location)] = true
	}
	heldOutText := map[string]bool{}
	for _, q := range heldOutQuestions {
		heldOutText[q.Text] = true
	}
	for _, q := range questions {
		if heldOutText[q.Text] {
			t.Fatalf("template %q is both trained on and held out", q.Text)
		}
	}
	counts := map[string]int{}
	for i, rec := range recs {
		if rec.Slice == nil {
			t.Fatalf("record %d has no slice", i+1)
		}
		counts[rec.Slice.Key()]++
		if rec.Call.Location == "" {
			continue
		}
		_, listed := weather.LookupPlace(rec.Call.Location)
		if isNew := rec.Slice.Place == "new"; isNew == listed || isNew && trained[weather.LocationKey(rec.Call.Location)] {
			t.Errorf("record %d: place %q in slice %s (listed %v)", i+1, rec.Call.Location, rec.Slice, listed)
		}
	}
	if !reflect.DeepEqual(counts, rep.Slices) || counts["no_tool_seen_phrasing"] != 80 {
		t.Fatalf("slices %v, report %v", counts, rep.Slices)
	}
	for _, place := range []string{"seen", "new"} {
		for _, phrasing := range []string{"seen", "new"} {
			if n := counts[place+"_place_"+phrasing+"_phrasing"]; n < 140 || n > 220 {
				t.Errorf("place=%s phrasing=%s: %d of 720", place, phrasing, n)
			}
		}
	}
}

// TestToolErrorConversations: with error_fraction, that share of the
// conversations that need the tool ask about a day that has passed; the
// tool's message is its error, the answer offers what it can do instead;
// the other conversations are those of error_fraction 0, in order.
func TestToolErrorConversations(t *testing.T) {
	plain, _, err := Generate(Options{Count: 500, Seed: 5, CallOnlyFraction: 0.5, NoToolFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	mixed, rep, err := Generate(Options{Count: 500, Seed: 5, CallOnlyFraction: 0.5, NoToolFraction: 0.2, ErrorFraction: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ToolErrors != 40 || rep.NoTool != 100 || rep.Answered+rep.CallOnly != 360 {
		t.Fatalf("errors %d, no-tool %d, answered %d + call-only %d", rep.ToolErrors, rep.NoTool, rep.Answered, rep.CallOnly)
	}
	// kinds splits records into no-tool, failing and other conversations.
	kinds := func(recs []trainingdata.Record) (noTool, failing, ok []trainingdata.Record) {
		for _, rec := range recs {
			switch {
			case rec.Call.Location == "":
				noTool = append(noTool, rec)
			case weather.IsPastDate(weather.CanonicalDate(rec.Call.Date)):
				failing = append(failing, rec)
			default:
				ok = append(ok, rec)
			}
		}
		return
	}
	n0, f0, ok0 := kinds(plain)
	n1, f1, ok1 := kinds(mixed)
	if len(f0) != 0 || len(f1) != 40 || !reflect.DeepEqual(n0, n1) || !reflect.DeepEqual(ok1, ok0[:360]) {
		t.Fatalf("failing %d and %d; the others are not those of error_fraction 0", len(f0), len(f1))
	}
	for i, rec := range f1 {
		m := rec.Messages[1:] // after the system message
		if len(m) != 4 || m[2].Role != chat.RoleTool {
			t.Fatalf("failing conversation %d: %+v", i+1, m)
		}
		call, err := weather.Parse(m[1].Content)
		if err != nil || call.Arguments["date"] != rec.Call.Date {
			t.Fatalf("failing conversation %d: call %q (%v)", i+1, m[1].Content, err)
		}
		if _, err := weather.Execute(call); !errors.Is(err, weather.ErrPastDate) || m[2].Content != weather.ErrorJSON(err) {
			t.Fatalf("failing conversation %d: tool message %q", i+1, m[2].Content)
		}
		if a := m[3].Content; strings.ContainsAny(a, "{}°") || strings.Contains(a, "<tool_call>") {
			t.Fatalf("failing conversation %d: answer %q", i+1, a)
		}
	}
}
