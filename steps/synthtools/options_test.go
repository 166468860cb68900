package synthtools

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// TestCallAsWritten: with call_location "as_written" every call names the
// place as the question writes it, and the tool takes it for the same
// place as the canonical call, so the draws and the results are those of
// the canonical conversations.
func TestCallAsWritten(t *testing.T) {
	canon, _, err := Generate(Options{Count: 400, Seed: 3, SystemPrompt: new(string)})
	if err != nil {
		t.Fatal(err)
	}
	written, _, err := Generate(Options{Count: 400, Seed: 3, CallLocation: CallAsWritten, SystemPrompt: new(string)})
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i := range canon {
		c, w := canon[i], written[i]
		q := w.Messages[0].Content
		if !strings.Contains(strings.ToLower(q), strings.ToLower(w.Call.Location)) {
			t.Fatalf("conversation %d: call location %q is not in the question %q", i+1, w.Call.Location, q)
		}
		if weather.CanonicalLocation(w.Call.Location) != c.Call.Location || w.Call.Date != c.Call.Date {
			t.Fatalf("conversation %d: %q resolves to %q, the canonical call is %q", i+1, w.Call.Location, weather.CanonicalLocation(w.Call.Location), c.Call.Location)
		}
		if w.Call.Location != c.Call.Location {
			differ++
		}
		// The tool's result is the same: it resolves the written name.
		if len(c.Messages) == 4 && c.Messages[2].Content != w.Messages[2].Content {
			t.Fatalf("conversation %d: tool results differ:\n%s\n%s", i+1, c.Messages[2].Content, w.Messages[2].Content)
		}
	}
	if differ < 100 {
		t.Fatalf("only %d of 400 calls name the place otherwise than canonically", differ)
	}
}

// TestAnswerSimple: with answer_style "simple" every answer states the
// result's °F and no other temperature, its condition in the tool's word,
// and no wind or humidity; the templates left are those that need no °C
// and open with the facts.
func TestAnswerSimple(t *testing.T) {
	recs, rep, err := Generate(Options{Count: 300, Seed: 5, AnswerStyle: AnswerSimple, SystemPrompt: new(string)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if len(r.Messages) != 4 {
			continue
		}
		ans := r.Messages[3].Content
		if strings.Contains(ans, "°C") || strings.Count(ans, "°F") != 1 || strings.Contains(ans, "km/h") || strings.Contains(ans, "umidity") {
			t.Fatalf("conversation %d: %q", i+1, ans)
		}
		var res weather.Result
		if err := json.Unmarshal([]byte(r.Messages[2].Content), &res); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ans, fmt.Sprintf("%d°F", res.TempF)) {
			t.Fatalf("conversation %d: %q does not state the result's %d°F", i+1, ans, res.TempF)
		}
		if !strings.Contains(strings.ToLower(ans), res.Condition) || strings.Contains(ans, "windy weather") {
			t.Fatalf("conversation %d: %q does not name the condition %q as the tool does", i+1, ans, res.Condition)
		}
	}
	simple := answerTemplates(AnswerSimple)
	if n := len(simple); n < 12 || n >= len(answers) || len(rep.AnswerTemplates) > n {
		t.Fatalf("%d simple templates of %d, %d used", n, len(answers), len(rep.AnswerTemplates))
	}
	for _, tpl := range simple {
		if strings.HasPrefix(tpl.Text, "{Advice}") || strings.HasPrefix(tpl.Text, "The sky over") {
			t.Fatalf("template %s does not open with the facts: %q", tpl.ID, tpl.Text)
		}
	}
	if !reflect.DeepEqual(answerTemplates(AnswerFull), answers) {
		t.Fatal("full: not every template")
	}
}

// TestSmallTalk: small_talk turns that fraction of the no-tool
// conversations into small talk naming a day, answered without a call, and
// leaves the others as they were.
func TestSmallTalk(t *testing.T) {
	plain, _, err := Generate(Options{Count: 200, Seed: 9, NoToolFraction: 0.5, SystemPrompt: new(string)})
	if err != nil {
		t.Fatal(err)
	}
	recs, rep, err := Generate(Options{Count: 200, Seed: 9, NoToolFraction: 0.5, SmallTalkFraction: 0.25, SystemPrompt: new(string)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.NoToolKinds[noToolSmallTalk] != 25 {
		t.Fatalf("no-tool kinds %v, want 25 small talk of 100", rep.NoToolKinds)
	}
	for i, r := range recs {
		if r.Call.Location != "" {
			if !reflect.DeepEqual(r, plain[i]) {
				t.Fatalf("conversation %d: a tool conversation changed", i+1)
			}
			continue
		}
		if strings.Contains(r.Text, weather.OpenTag) || len(r.Messages) != 2 {
			t.Fatalf("conversation %d: %q", i+1, r.Text)
		}
		if q := r.Messages[0].Content; strings.ContainsAny(q, "{}") {
			t.Fatalf("conversation %d: unfilled %q", i+1, q)
		}
	}
}

// TestCallAsWrittenNeedsItsSystemPrompt: the default system message tells
// the model to expand abbreviations, which "as_written" calls do not.
func TestCallAsWrittenNeedsItsSystemPrompt(t *testing.T) {
	if _, _, err := Generate(Options{Count: 1, CallLocation: CallAsWritten}); err == nil || !strings.Contains(err.Error(), "system_prompt") {
		t.Fatalf("err = %v", err)
	}
}
