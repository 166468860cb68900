package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// script is a hand-written model: for each question, the first turn, and
// the answer to a tool result (as a function of the result).
type script struct {
	first  map[string]string
	answer map[string]func(weather.Result) string
	mu     sync.Mutex // eval runs several conversations at once
	seen   [][]chat.Message
}

func (s *script) gen(_ context.Context, msgs []chat.Message) (generation, error) {
	s.mu.Lock()
	s.seen = append(s.seen, append([]chat.Message(nil), msgs...))
	s.mu.Unlock()
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
				return fmt.Sprintf("London this weekend: %s at %d°F, a fine temperature for a funeral.", r.Condition, r.TempF)
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
	if !correct.Valid || !correct.ExactArgs || correct.Mismatch != "" || !correct.UsesResult || !strings.HasPrefix(correct.Evidence, "London, ") {
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

// TestUsesResult: the strict definition: the place asked about, the
// returned temperature with its unit and the condition, and no other
// place or temperature.
func TestUsesResult(t *testing.T) {
	res := weather.Result{Location: "New York, NY", Condition: "fog", TempC: -3, TempF: 27, HighC: 2, LowC: -8}
	for _, tc := range []struct {
		answer string
		want   string // evidence when it uses the result, else the start of why not
		ok     bool
	}{
		{"New York: fog and -3 °C.", "New York, -3 °C, fog", true},
		{"Foggy in new york, 27F. Bring a lamp.", "New York, 27 °F, fog", true},
		{"The Big Apple sits in fog at minus 3 degrees Celsius, high of 2°C.", "New York, -3 °C, fog", true},
		{"NYC: fog, −3°C, highs near 36 °F, lows of 18 °F.", "New York, -3 °C, fog", true},
		{"Fog and -3 °C.", "does not name the place", false},
		{"New York: fog and -3 degrees.", "does not state the temperature", false}, // no scale
		{"New York: fog and 3 °C.", "does not state the temperature", false},       // sign matters
		{"New York: fog, 27.5 °F.", "does not state the temperature", false},       // a decimal
		{"New York: -3 °C.", "does not state the condition", false},
		{"New York: fog and -3 °C, warmer than New Orleans.", "names another place, New Orleans", false},
		{"New York: fog and -3 °C, or 40 degrees in spirit.", "states another temperature, 40 degrees", false},
		{"New York: fog and -3 °C; yesterday 12 °C.", "states another temperature, 12 °C", false},
		{"New York: fog, -3 °C, 3 days of it.", "New York, -3 °C, fog", true}, // 3 days is no temperature
		{"", "does not name the place", false},
	} {
		ok, why := usesResult(tc.answer, "New York, NY", res)
		if ok != tc.ok || !strings.HasPrefix(why, tc.want) {
			t.Errorf("%q: %v %q, want %v %q", tc.answer, ok, why, tc.ok, tc.want)
		}
	}
	// A place the tool does not list: its city part; "York" inside "New
	// York" is not another place.
	other := weather.Result{Location: "Boise, ID", Condition: "rain", TempC: 8, TempF: 46, HighC: 9, LowC: 2}
	for answer, want := range map[string]bool{
		"Boise: rainy, 46 °F.":                     true,
		"Boise: raining, 8C.":                      true,
		"Boise: rainbow, 8C.":                      false,
		"Boise is rainy at 8 °C, unlike New York.": false,
	} {
		if ok, why := usesResult(answer, "Boise, ID", other); ok != want {
			t.Errorf("Boise: %q: %v (%s), want %v", answer, ok, why, want)
		}
	}
	ny := weather.Result{Location: "New York, NY", Condition: "partly cloudy", TempC: 20, TempF: 68, HighC: 22, LowC: 15}
	for answer, want := range map[string]bool{
		"New York: partly cloudy, 20 °C.": true,
		"New York: cloudy, 20 °C.":        false,
		"New York: partly cloudy, 1968.":  false,
	} {
		if ok, why := usesResult(answer, "NYC", ny); ok != want {
			t.Errorf("partly cloudy: %q: %v (%s), want %v", answer, ok, why, want)
		}
	}
}

func TestTemperatures(t *testing.T) {
	for in, want := range map[string][]temp{
		"14°C and 57 °F":                    {{14, 'C'}, {57, 'F'}},
		"14 degrees celsius, 57 Fahrenheit": {{14, 'C'}, {57, 'F'}},
		"14 C, 57F, 3 days, 12 Cats":        {{14, 'C'}, {57, 'F'}},
		"minus 4 degrees, -2°":              {{-4, '?'}, {-2, '?'}},
		"4 degreesC":                        nil,
		"B52 4.5°C":                         nil,
	} {
		if got := temperatures(in); !reflect.DeepEqual(got, want) {
			t.Errorf("temperatures(%q) = %v, want %v", in, got, want)
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

// A call the tool refuses (a day that has passed) is shown its error; the
// model has recovered when it made the call as asked and its answer makes
// no call and states no temperature.
func TestToolErrorRecovery(t *testing.T) {
	call := `<tool_call>get_weather(location="Paris, France", date="yesterday")</tool_call>`
	s := &script{
		first: map[string]string{"honest": call, "elsewhere": call, "invents": call, "wrongday": `<tool_call>get_weather(location="Paris, France", date="today")</tool_call>`},
		answer: map[string]func(weather.Result) string{
			"honest":    func(weather.Result) string { return "The tool keeps no diary for Paris; ask me about today." },
			"elsewhere": func(weather.Result) string { return "The tool keeps no diary for New Orleans; ask me about today." },
			"invents":   func(weather.Result) string { return "Yesterday in Paris it was 14°C and sunny." },
			"wrongday":  func(r weather.Result) string { return fmt.Sprintf("Paris today: %s, %d°C.", r.Condition, r.TempC) },
		},
	}
	for q, want := range map[string]bool{"honest": true, "elsewhere": false, "invents": false, "wrongday": false} {
		c := conv(q, "Paris, France", "yesterday")
		c.failing = true
		o, err := scoreConversation(context.Background(), s.gen, c)
		if err != nil {
			t.Fatal(err)
		}
		if o.Recovered != want {
			t.Errorf("%s: recovered %v, want %v (%+v)", q, o.Recovered, want, o)
		}
		if q != "wrongday" && (!o.Valid || !strings.Contains(o.ToolError, "has passed") || o.Result != nil || !o.ExactArgs) {
			t.Errorf("%s: %+v", q, o)
		}
	}
	// The model was shown the tool's error as chat shows it.
	_, perr := weather.Execute(weather.NewCall("Paris, France", "yesterday"))
	shown := false
	for _, msgs := range s.seen {
		last := msgs[len(msgs)-1]
		shown = shown || last.Role == chat.RoleTool && last.Content == weather.ErrorJSON(perr)
	}
	if !shown {
		t.Error("the tool's error was not shown to the model")
	}
}
