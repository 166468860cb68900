package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// script is a hand-written model: for each question, the first turn, and
// the answer to a tool result (as a function of the result).
type script struct {
	first  map[string]string
	answer map[string]func(weather.Result) string
	seen   [][]chat.Message
}

func (s *script) gen(_ context.Context, msgs []chat.Message) (generation, error) {
	s.seen = append(s.seen, append([]chat.Message(nil), msgs...))
	q := ""
	for _, m := range msgs {
		if m.Role == chat.RoleUser {
			q = m.Content
		}
	}
	last := msgs[len(msgs)-1]
	if last.Role == chat.RoleTool {
		var res weather.Result
		if err := jsonUnmarshal(last.Content, &res); err != nil {
			return generation{}, err
		}
		return generation{Text: s.answer[q](res), Stop: StopEnd}, nil
	}
	text, ok := s.first[q]
	if !ok {
		return generation{}, fmt.Errorf("unscripted question %q", q)
	}
	stop := StopEnd
	if strings.Contains(text, weather.OpenTag) {
		stop = StopTool
	}
	return generation{Text: text, Stop: stop}, nil
}

func conv(q, location, date string) toolConv {
	return toolConv{
		src:      &valRecord{where: "test:1"},
		prompt:   []chat.Message{{Role: chat.RoleSystem, Content: weather.SystemPrompt()}, {Role: chat.RoleUser, Content: q}},
		question: q,
		expected: weather.NewCall(location, date),
	}
}

func TestToolLoopScripted(t *testing.T) {
	s := &script{
		first: map[string]string{
			"correct":   "Thought: London, the weekend.\n" + `<tool_call>get_weather(location="London", date="weekend")</tool_call>` + "\nand some trailing chatter",
			"wrongdate": `<tool_call>get_weather(location="London, UK", date="tomorrow")</tool_call>`,
			"malformed": `Thought: easy.` + "\n" + `<tool_call>get_weather(location=London)</tool_call>`,
			"nocall":    "It is always raining in London, friend.",
			"invalid":   `<tool_call>get_weather(city="London")</tool_call>`,
		},
		answer: map[string]func(weather.Result) string{
			"correct": func(r weather.Result) string {
				return fmt.Sprintf("Expect %d°F, which is a fine temperature for a funeral.", r.TempF)
			},
			"wrongdate": func(weather.Result) string { return "Bring a book and low expectations." },
		},
	}
	convs := []toolConv{
		conv("correct", "London, UK", "this weekend"),
		conv("wrongdate", "London, UK", "this weekend"),
		conv("malformed", "London, UK", "today"),
		conv("nocall", "London, UK", "today"),
		conv("invalid", "London, UK", "today"),
	}
	var steps []string
	outs, exs, err := runGenerations(context.Background(), s.gen, convs, []string{"nocall"}, func(m string) { steps = append(steps, m) })
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 6 || len(exs) != 1 {
		t.Fatalf("%d steps, %d examples", len(steps), len(exs))
	}
	var tally toolTally
	for _, o := range outs {
		tally.add(o)
	}
	if want := (toolTally{prompts: 5, attempted: 4, calls: 3, valid: 2, exact: 1, answers: 2, uses: 1}); tally != want {
		t.Errorf("tally %+v, want %+v", tally, want)
	}

	correct := outs[0]
	if !correct.Valid || !correct.ExactArgs || correct.Mismatch != "" || !correct.UsesResult || !strings.HasPrefix(correct.Evidence, "temp_f ") {
		t.Errorf("correct call: %+v", correct)
	}
	if len(correct.Transcript) != 3 || correct.Transcript[1].Role != chat.RoleTool || correct.Transcript[1].Content != correct.Result.JSON() ||
		correct.Transcript[0].Stop != StopTool || correct.Transcript[2].Stop != StopEnd {
		t.Errorf("correct transcript: %+v", correct.Transcript)
	}
	// The second prompt holds the assistant turn cut after the call and
	// the tool result.
	var second []chat.Message
	for _, m := range s.seen {
		if len(m) == 4 && m[1].Content == "correct" {
			second = m
		}
	}
	if second == nil {
		t.Fatal("no second generation for the correct call")
	}
	wantAsst := "Thought: London, the weekend.\n" + `<tool_call>get_weather(location="London", date="weekend")</tool_call>`
	if second[2] != (chat.Message{Role: chat.RoleAssistant, Content: wantAsst}) ||
		second[3] != (chat.Message{Role: chat.RoleTool, Name: weather.ToolName, Content: correct.Result.JSON()}) {
		t.Errorf("second prompt: %+v", second[2:])
	}
	if res, _ := weather.Execute(weather.NewCall("London, UK", "this weekend")); !reflect.DeepEqual(*correct.Result, res) {
		t.Errorf("result %+v, want %+v", *correct.Result, res)
	}

	wrong := outs[1]
	if !wrong.Valid || wrong.ExactArgs || !strings.Contains(wrong.Mismatch, "date") || wrong.UsesResult || wrong.Answer != "Bring a book and low expectations." {
		t.Errorf("wrong date: %+v", wrong)
	}
	mal := outs[2]
	if !mal.Attempted || mal.Call != nil || mal.ParseError == "" || mal.Valid || mal.Answer != "" || len(mal.Transcript) != 1 {
		t.Errorf("malformed: %+v", mal)
	}
	no := outs[3]
	if no.Attempted || no.Call != nil || no.ParseError != "" || no.Answer != "It is always raining in London, friend." || no.UsesResult {
		t.Errorf("no call: %+v", no)
	}
	inv := outs[4]
	if inv.Call == nil || inv.Valid || !strings.Contains(inv.InvalidReason, "location") || inv.ExactArgs || inv.Mismatch == "" || inv.Result != nil {
		t.Errorf("invalid call: %+v", inv)
	}
	if exs[0].Answer != no.Answer {
		t.Errorf("example: %+v", exs[0])
	}

	var rep ModelReport
	rep.setTool(tally)
	if *rep.ToolCallRate != 0.6 || *rep.ValidCallRate != 0.4 || *rep.ExactArgsRate != 0.2 || *rep.AnswerUsesToolRate != 0.2 {
		t.Errorf("rates %+v", rep)
	}
	rep = ModelReport{}
	rep.setTool(toolTally{})
	if rep.ToolCallRate != nil {
		t.Error("a rate over no conversations is not null")
	}
}

func TestGenerationErrorsAndCancel(t *testing.T) {
	boom := errors.New("boom")
	fail := func(context.Context, []chat.Message) (generation, error) { return generation{}, boom }
	_, _, err := runGenerations(context.Background(), fail, []toolConv{conv("q", "Paris, France", "")}, nil, func(string) {})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "test:1") {
		t.Errorf("error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	gen := func(context.Context, []chat.Message) (generation, error) {
		calls++
		cancel()
		return generation{Text: "no call", Stop: StopEnd}, nil
	}
	_, _, err = runGenerations(ctx, gen, []toolConv{conv("a", "Paris, France", ""), conv("b", "Paris, France", "")}, []string{"x"}, func(string) {})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("cancel: %v after %d generations", err, calls)
	}
}

func TestUsesResult(t *testing.T) {
	res := weather.Result{Condition: "fog", TempC: -3, TempF: 27, HighC: 2, LowC: -8}
	for _, tc := range []struct {
		answer string
		want   string // evidence, "" for no
	}{
		{"It will be -3 degrees.", "temp_c -3"},
		{"A balmy minus 3, they say.", "temp_c -3"},
		{"It will be −3°C.", "temp_c -3"},
		{"27F and grim", "temp_f 27"},
		{"a high of 2°C", "high_c 2"},
		{"lows near -8", "low_c -8"},
		{"It will be 3 degrees.", ""},    // sign matters
		{"between 10-3 and so on", ""},   // "10-3" is 10 and 3
		{"It will be 27.5 degrees.", ""}, // a decimal
		{"Take the B2 bus.", ""},         // part of a word
		{"On the 2nd of May", ""},        // "2nd" is a word
		{"Foggy as a sermon.", `condition "fog"`},
		{"FOG everywhere", `condition "fog"`},
		{"The fogs of war", `condition "fog"`},
		{"A fogbound harbour", ""},
		{"Nothing to report.", ""},
		{"", ""},
	} {
		ok, ev := usesResult(tc.answer, res)
		if ok != (tc.want != "") || ev != tc.want {
			t.Errorf("%q: %v %q, want %q", tc.answer, ok, ev, tc.want)
		}
	}
	pc := weather.Result{Condition: "partly cloudy", TempC: 20, TempF: 68, HighC: 22, LowC: 15}
	for answer, want := range map[string]bool{
		"Partly cloudy, like my conscience.": true,
		"Partly-cloudy skies":                false,
		"cloudy":                             false,
		"rain, 200 miles away":               false,
		"20 degrees":                         true,
		"1968 was a year":                    false,
	} {
		if ok, _ := usesResult(answer, pc); ok != want {
			t.Errorf("partly cloudy: %q: %v, want %v", answer, ok, want)
		}
	}
	rain := weather.Result{Condition: "rain", TempC: 100}
	for answer, want := range map[string]bool{"rainy days": true, "raining cats": true, "rains": true, "rainbow": false, "brain": false} {
		if ok, _ := usesResult(answer, rain); ok != want {
			t.Errorf("rain: %q: %v, want %v", answer, ok, want)
		}
	}
}

func TestCutAfterCall(t *testing.T) {
	for in, want := range map[string]string{
		"T.\n<tool_call>f()</tool_call>\nmore": "T.\n<tool_call>f()</tool_call>",
		"<tool_call>f()":                       "<tool_call>f()",
		"plain":                                "plain",
	} {
		if got := cutAfterCall(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func TestCutAtTag(t *testing.T) {
	tags := twainbot().SpecialTokens
	for _, tc := range []struct{ in, text, tag string }{
		{"Thought: x\n<tool_call>f()</tool_call>\n<|tool|>\nmore<|end|>", "Thought: x\n<tool_call>f()</tool_call>\n", StopTool},
		{"answer\n<|end|><|tool|>", "answer\n", StopEnd},
		{"hi <|user|>", "hi ", "<|user|>"},
		{"<|to", "<|to", ""},
	} {
		text, tag, ok := cutAtTag(tc.in, tags)
		if text != tc.text || tag != tc.tag || ok != (tc.tag != "") {
			t.Errorf("%q: %q %q %v", tc.in, text, tag, ok)
		}
	}
}
