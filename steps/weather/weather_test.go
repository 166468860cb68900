package weather

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFormatExample(t *testing.T) {
	got := Format(NewCall("San Francisco, CA", "tomorrow"))
	want := `<tool_call>get_weather(location="San Francisco, CA", date="tomorrow")</tool_call>`
	if got != want {
		t.Fatalf("Format = %s, want %s", got, want)
	}
	c := Call{Name: "get_weather", Arguments: map[string]string{"zeta": "z", "date": "a\"b\\c\nd\te\x01\xff", "location": "São Paulo\u200b", "alpha": ""}}
	got = FormatExpr(c)
	want = `get_weather(location="São Paulo\u200b", date="a\"b\\c\nd\te\x01\xff", alpha="", zeta="z")`
	if got != want {
		t.Fatalf("FormatExpr = %s\nwant          %s", got, want)
	}
	back, err := ParseExpr(got)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("ParseExpr(%s) = %#v, %v; want %#v", got, back, err, c)
	}
}

func TestParseFindsCallInOutput(t *testing.T) {
	out := "Thought: the user wants NYC.\n<tool_call>\n  get_weather( location = \"New York, NY\" ,\n date=\"this weekend\", )\n</tool_call>\nI'll wait."
	c, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	want := NewCall("New York, NY", "this weekend")
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %#v, want %#v", c, want)
	}
	// A closing marker inside a string argument does not end the call.
	c = NewCall("a</tool_call>b", "today")
	back, err := Parse("x" + Format(c) + "y")
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("got %#v, %v", back, err)
	}
	// Escapes the formatter never writes are still read.
	c, err = ParseExpr(`get_weather(location="Caf\u00e9 \U0001F600 \'q\' \x41\0")`)
	if err != nil || c.Arguments["location"] != "Café 😀 'q' A\x00" {
		t.Fatalf("got %#v, %v", c, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"It is sunny.", "no <tool_call>"},
		{"<tool_call>get_weather(location=\"Paris\")", "missing </tool_call>"},
		{"<tool_call>get_weather(location=\"Paris\") extra</tool_call>", `unexpected "extra</tool_…" after the call; expected </tool_call>`},
		{"<tool_call>(location=\"Paris\")</tool_call>", "expected a tool name"},
		{"<tool_call>get_weather location=\"Paris\"</tool_call>", "expected '(' after tool name \"get_weather\""},
		{"<tool_call>get_weather(\"Paris\")</tool_call>", "positional argument"},
		{"<tool_call>get_weather(location='Paris')</tool_call>", "single-quoted"},
		{"<tool_call>get_weather(location=Paris)</tool_call>", "must be a double-quoted string"},
		{"<tool_call>get_weather(location=42)</tool_call>", "must be a double-quoted string"},
		{"<tool_call>get_weather(location:\"Paris\")</tool_call>", "expected '=' after argument name \"location\""},
		{"<tool_call>get_weather(location=\"Paris\" date=\"today\")</tool_call>", "expected ',' or ')' after argument \"location\""},
		{"<tool_call>get_weather(location=\"Paris\", location=\"Rome\")</tool_call>", "argument \"location\" given twice"},
		{"<tool_call>get_weather(location=\"Paris</tool_call>", "unterminated string"},
		{"<tool_call>get_weather(location=\"Par\nis\")</tool_call>", "newline inside the string"},
		{"<tool_call>get_weather(location=\"P\\qaris\")</tool_call>", `unknown escape \q`},
		{"<tool_call>get_weather(location=\"P\\x4\")</tool_call>", `needs 2 hex digits`},
		{"<tool_call>get_weather(location=\"P\\ud800\")</tool_call>", "not a valid Unicode code point"},
		{"<tool_call>get_weather(location=\"Paris\"", "missing ')'"},
		{"<tool_call>get_weather(location=", "missing value for argument \"location\""},
		{"<tool_call>get_weather(, )</tool_call>", "expected an argument name or ')'"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error containing %q", tc.in, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error %q, want it to contain %q", tc.in, err, tc.want)
		}
	}
	_, err := Parse("no call here")
	if !errors.Is(err, ErrNoCall) {
		t.Errorf("want ErrNoCall, got %v", err)
	}
	_, err = Parse("<tool_call>get_weather(location=Paris)</tool_call>")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Offset != len("<tool_call>get_weather(location=") {
		t.Errorf("want *ParseError at offset %d, got %#v", len("<tool_call>get_weather(location="), err)
	}
}

// randString returns strings mixing ASCII, quotes, escapes, control bytes,
// non-ASCII runes and invalid UTF-8.
func randString(r *rand.Rand) string {
	pieces := []string{"a", "Z", " ", ",", "\"", "\\", "\n", "\r", "\t", "\x00", "\x7f", "é", "ß", "😀", "\u200b", "\u0085", "\xff", "\xc3", "</tool_call>", "<tool_call>", ")", "=", "'", "\\x41", "\U0010FFFF", "\ufeff"}
	var b strings.Builder
	for n := r.IntN(8); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"get_weather", "x", "_a1", "getWeather"}
	for i := 0; i < 5000; i++ {
		c := Call{Name: names[r.IntN(len(names))], Arguments: map[string]string{}}
		for n := r.IntN(4); n > 0; n-- {
			arg := []string{"location", "date", "units", "q_2"}[r.IntN(4)]
			c.Arguments[arg] = randString(r)
		}
		text := Format(c)
		// Any text may follow; the text before must not hold an opening marker.
		prefix := strings.ReplaceAll(randString(r), OpenTag, "")
		back, err := Parse(prefix + text + randString(r))
		if err != nil {
			t.Fatalf("Parse(Format(%#v)) = %v\ntext: %s", c, err, text)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the call:\n in  %#v\n out %#v\ntext %s", c, back, text)
		}
		if !utf8.ValidString(text) {
			t.Fatalf("Format wrote invalid UTF-8: %q", text)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		Format(NewCall("San Francisco, CA", "tomorrow")),
		`<tool_call>get_weather(location="a\"b\\c\x00\u00e9\U0001F600", date="x",)</tool_call>`,
		`<tool_call>get_weather(`,
		`<tool_call>get_weather(location="`,
		`<tool_call>get_weather(location="\`,
		`<tool_call>get_weather(location="\U0011ffff")</tool_call>`,
		`<tool_call>get_weather(location="\u+123")</tool_call>`,
		"<tool_call>f()</tool_call>",
		"",
		"<tool_call>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if c.Name != "" || c.Arguments != nil {
				t.Fatalf("error with a non-zero call: %#v", c)
			}
			return
		}
		// Whatever parses must format and parse back to the same call.
		back, err := Parse(Format(c))
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("re-parse of %q: %#v, %v (want %#v)", Format(c), back, err, c)
		}
		_, _ = Execute(c) // must not panic
	})
}

func TestCanonicalLocation(t *testing.T) {
	cases := map[string]string{
		"SF":                         "San Francisco, CA",
		"sf":                         "San Francisco, CA",
		"San Francisco":              "San Francisco, CA",
		"san francisco , california": "San Francisco, CA",
		"NYC":                        "New York, NY",
		"New York City":              "New York, NY",
		"LA":                         "Los Angeles, CA",
		"L.A.":                       "Los Angeles, CA",
		"NOLA":                       "New Orleans, LA",
		"DC":                         "Washington, DC",
		"Washington, D.C.":           "Washington, DC",
		"Philly":                     "Philadelphia, PA",
		"the Big Apple":              "New York, NY",
		"Big Apple":                  "New York, NY",
		"Sao Paulo":                  "São Paulo, Brazil",
		"zurich":                     "Zürich, Switzerland",
		"Bombay":                     "Mumbai, India",
		"St Louis":                   "St. Louis, MO",
		"Seattle, Washington":        "Seattle, WA",
		"  Springfield,   IL ":       "Springfield, IL",
		"Paris, Texas":               "Paris, Texas",
	}
	for in, want := range cases {
		if got := CanonicalLocation(in); got != want {
			t.Errorf("CanonicalLocation(%q) = %q, want %q", in, got, want)
		}
	}
	if n := len(Places()); n < 60 {
		t.Errorf("only %d built-in places, want at least 60", n)
	}
	for _, p := range Places() {
		if got := CanonicalLocation(p.Name); got != p.Name {
			t.Errorf("canonical name %q is not a fixed point: %q", p.Name, got)
		}
		for _, a := range p.Aliases {
			if got := CanonicalLocation(a); got != p.Name {
				t.Errorf("alias %q → %q, want %q", a, got, p.Name)
			}
		}
	}
}

func TestCanonicalDate(t *testing.T) {
	cases := map[string]string{
		"":                   "today",
		" Today ":            "today",
		"right now":          "today",
		"Tomorrow":           "tomorrow",
		"tmrw":               "tomorrow",
		"weekend":            "this weekend",
		"This  Weekend":      "this weekend",
		"on Tuesday":         "tuesday",
		"tue":                "tuesday",
		"this Friday":        "friday",
		"Next Tues":          "next tuesday",
		"next week":          "next week",
		"2025-07-04":         "2025-07-04",
		"Day after tomorrow": "the day after tomorrow",
	}
	for in, want := range cases {
		if got := CanonicalDate(in); got != want {
			t.Errorf("CanonicalDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExecuteDeterministicAndPlausible(t *testing.T) {
	a, err := Execute(NewCall("SF", "Tomorrow"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Execute(NewCall("San Francisco, CA", "tomorrow"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("aliases give different weather: %+v vs %+v", a, b)
	}
	if a.Location != "San Francisco, CA" || a.Date != "tomorrow" {
		t.Fatalf("result not canonical: %+v", a)
	}
	c, _ := Execute(NewCall("San Francisco, CA", "friday"))
	d, _ := Execute(NewCall("Reykjavik", "friday"))
	if a == c || c == d {
		t.Fatalf("different calls gave identical results: %+v %+v %+v", a, c, d)
	}
	// No date means today.
	e, _ := Execute(Call{Name: ToolName, Arguments: map[string]string{"location": "Paris"}})
	f, _ := Execute(NewCall("Paris, France", "today"))
	if e != f {
		t.Fatalf("missing date differs from today: %+v vs %+v", e, f)
	}
	// Invariants over many calls, and climates that differ.
	var sumDubai, sumOslo int
	conds := map[string]int{}
	for _, p := range Places() {
		for _, dt := range append(Weekdays(), "today", "tonight", "tomorrow", "this weekend") {
			r, err := Execute(NewCall(p.Name, dt))
			if err != nil {
				t.Fatal(err)
			}
			conds[r.Condition]++
			if r.LowC >= r.TempC || r.HighC <= r.TempC || r.TempF != CToF(r.TempC) ||
				r.PrecipChance < 0 || r.PrecipChance > 1 || r.Humidity < 0 || r.Humidity > 100 || r.WindKph <= 0 {
				t.Fatalf("implausible result %+v", r)
			}
			if strings.Contains(r.Condition, "snow") && r.TempC > 1 {
				t.Fatalf("snow at %d°C: %+v", r.TempC, r)
			}
			switch p.Name {
			case "Dubai, UAE":
				sumDubai += r.TempC
			case "Oslo, Norway":
				sumOslo += r.TempC
			}
		}
	}
	if sumDubai <= sumOslo {
		t.Errorf("Dubai (%d) not warmer than Oslo (%d) over the same dates", sumDubai, sumOslo)
	}
	if len(conds) < 7 {
		t.Errorf("only %d conditions seen: %v", len(conds), conds)
	}
	js := a.JSON()
	if !strings.HasPrefix(js, `{"location":"San Francisco, CA","date":"tomorrow","condition":`) {
		t.Errorf("JSON field order: %s", js)
	}
	var back Result
	if err := json.Unmarshal([]byte(js), &back); err != nil || back != a {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		c    Call
		want string
	}{
		{Call{Name: "get_forecast", Arguments: map[string]string{"location": "x"}}, `unknown tool "get_forecast"`},
		{Call{Name: ToolName, Arguments: map[string]string{}}, "missing required argument location"},
		{Call{Name: ToolName, Arguments: map[string]string{"location": "  "}}, "location is empty"},
		{Call{Name: ToolName, Arguments: map[string]string{"location": "x", "city": "y"}}, `unknown argument "city"`},
		{Call{Name: ToolName, Arguments: map[string]string{"location": strings.Repeat("x", 201)}}, "at most 200"},
	}
	for _, tc := range cases {
		_, err := Execute(tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Execute(%#v) error %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestArgsMatch(t *testing.T) {
	want := NewCall("San Francisco, CA", "tomorrow")
	for _, got := range []Call{
		NewCall("SF", "Tomorrow"),
		NewCall("san francisco", " tomorrow"),
		NewCall("San Francisco, California", "tmrw"),
	} {
		if ok, why := CompareArgs(want, got); !ok {
			t.Errorf("%#v should match: %s", got, why)
		}
	}
	for _, tc := range []struct {
		got Call
		why string
	}{
		{NewCall("Oakland, CA", "tomorrow"), `location "Oakland, CA", want "San Francisco, CA"`},
		{NewCall("SF", "today"), `date "today", want "tomorrow"`},
		{NewCall("SF", ""), `date "today", want "tomorrow"`},
		{Call{Name: "weather", Arguments: want.Arguments}, `tool "weather"`},
		{Call{Name: ToolName, Arguments: map[string]string{"location": "SF", "date": "tomorrow", "units": "f"}}, `argument "units" differs`},
		{Call{Name: ToolName, Arguments: map[string]string{"date": "tomorrow"}}, "location given in only one"},
	} {
		ok, why := CompareArgs(want, tc.got)
		if ok || !strings.Contains(why, tc.why) {
			t.Errorf("CompareArgs(%#v) = %v %q, want mismatch %q", tc.got, ok, why, tc.why)
		}
	}
	if !ArgsMatch(NewCall("Paris", ""), NewCall("paris, france", "today")) {
		t.Error("missing date should match today")
	}
}

func TestDefinitionAndPrompt(t *testing.T) {
	b, err := json.Marshal(Definition())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	params := m["parameters"].(map[string]any)
	props := params["properties"].(map[string]any)
	if m["name"] != "get_weather" || params["type"] != "object" || props["location"] == nil || props["date"] == nil {
		t.Fatalf("definition: %s", b)
	}
	if req := params["required"].([]any); len(req) != 1 || req[0] != "location" {
		t.Fatalf("required: %v", req)
	}
	p := SystemPrompt()
	c, err := Parse(p)
	if err != nil || !ArgsMatch(c, NewCall("SF", "tomorrow")) {
		t.Fatalf("system prompt's example call does not parse: %v\n%s", err, p)
	}
	call := Call{Name: ToolName, Arguments: map[string]string{"date": "d", "location": "l"}}
	j, _ := json.Marshal(call)
	if string(j) != `{"name":"get_weather","arguments":{"location":"l","date":"d"}}` {
		t.Errorf("Call JSON: %s", j)
	}
	var back Call
	if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(back, call) {
		t.Errorf("Call JSON round trip: %v %#v", err, back)
	}
}

func TestPastDatesFail(t *testing.T) {
	for _, d := range []string{"yesterday", "Yesterday", "yday", "last night", "last week", "last weekend", "the day before yesterday", "last fri", "last Monday", "two days ago"} {
		_, err := Execute(NewCall("Paris, France", d))
		if !errors.Is(err, ErrPastDate) || !strings.Contains(err.Error(), fmt.Sprintf("%q", d)) {
			t.Errorf("%q: %v", d, err)
			continue
		}
		if got := ErrorJSON(err); !strings.HasPrefix(got, `{"error":"get_weather: date `) {
			t.Errorf("%q: %s", d, got)
		}
	}
	for _, d := range []string{"today", "tomorrow", "next week", "last", "friday", "this weekend"} {
		if _, err := Execute(NewCall("Paris, France", d)); err != nil {
			t.Errorf("%q: %v", d, err)
		}
	}
}
