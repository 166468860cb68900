package synthtools

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// run runs the kind with its schema defaults overridden by config and
// returns the output folder.
func run(t *testing.T, config map[string]cty.Value) (string, error) {
	t.Helper()
	inv := steptest.Invocation(t, Kind{}, "synth_tools.test", nil, config)
	return inv.OutDir, Kind{}.Run(context.Background(), inv)
}

func mustRun(t *testing.T, config map[string]cty.Value) (conv, report []byte) {
	t.Helper()
	dir, err := run(t, config)
	if err != nil {
		t.Fatal(err)
	}
	conv, err = os.ReadFile(filepath.Join(dir, "conversations.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	report, err = os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	return conv, report
}

func readRecords(t *testing.T, conv []byte) []trainingdata.Record {
	t.Helper()
	var recs []trainingdata.Record
	sc := bufio.NewScanner(bytes.NewReader(conv))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r trainingdata.Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %d: %v", len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestRegistered(t *testing.T) {
	k, ok := steps.Default.Lookup("synth_tools")
	if !ok {
		t.Fatal("synth_tools is not registered")
	}
	s := k.Schema()
	if s.Version != Version || len(s.Outputs) != 2 || s.Outputs[0].Path != "conversations.jsonl" || s.Outputs[1].Path != "report.json" {
		t.Fatalf("schema: %+v", s)
	}
}

func TestDeterministicBySeed(t *testing.T) {
	a, ra := mustRun(t, nil)
	b, rb := mustRun(t, nil)
	if !bytes.Equal(a, b) || !bytes.Equal(ra, rb) {
		t.Fatal("same seed gave different outputs")
	}
	c, rc := mustRun(t, map[string]cty.Value{"seed": cty.NumberIntVal(7)})
	if bytes.Equal(a, c) || bytes.Equal(ra, rc) {
		t.Fatal("different seeds gave the same outputs")
	}
}

// TestGoldenDigest pins the output for the default config. When it fails
// because you changed templates, the chat format or package weather, bump
// Version (so that cached outputs are not reused) and update the digest.
func TestGoldenDigest(t *testing.T) {
	conv, _ := mustRun(t, nil)
	sum := sha256.Sum256(conv)
	const want = "9ef396103f41279fcac96b92dd861f0247fee395e884d343e6211f9f8a5be6c5"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("output digest %s, want %s: if the change is intended, bump Version and update the digest", got, want)
	}
}

func TestConversations(t *testing.T) {
	conv, reportJSON := mustRun(t, nil)
	if !bytes.HasSuffix(conv, []byte("\n")) {
		t.Fatal("output does not end with a newline")
	}
	recs := readRecords(t, conv)
	if len(recs) != 400 {
		t.Fatalf("%d records, want 400", len(recs))
	}
	questionsSeen := map[string]bool{}
	for i, rec := range recs {
		where := fmt.Sprintf("record %d", i+1)
		m := rec.Messages
		roles := make([]string, len(m))
		for j := range m {
			roles[j] = m[j].Role
		}
		if strings.Join(roles, ",") != "system,user,assistant,tool,assistant" {
			t.Fatalf("%s: roles %v", where, roles)
		}
		if m[0].Content != weather.SystemPrompt() || m[3].Name != weather.ToolName {
			t.Fatalf("%s: system or tool message: %+v", where, m)
		}
		// The call round-trips exactly and matches the recorded call.
		want := weather.NewCall(rec.Call.Location, rec.Call.Date)
		got, err := weather.Parse(m[2].Content)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Parse(%q) = %#v, %v; want %#v", where, m[2].Content, got, err, want)
		}
		if !strings.HasPrefix(m[2].Content, "Thought: ") || strings.Count(m[2].Content, "\n") != 1 ||
			!strings.HasSuffix(m[2].Content, "\n"+weather.Format(want)) {
			t.Fatalf("%s: assistant call message %q", where, m[2].Content)
		}
		if _, ok := weather.LookupPlace(rec.Call.Location); !ok || weather.CanonicalLocation(rec.Call.Location) != rec.Call.Location {
			t.Fatalf("%s: call location %q is not canonical", where, rec.Call.Location)
		}
		if weather.CanonicalDate(rec.Call.Date) != rec.Call.Date || rec.Call.Date == "" {
			t.Fatalf("%s: call date %q is not canonical", where, rec.Call.Date)
		}
		// The tool message is the tool's actual result.
		res, err := weather.Execute(want)
		if err != nil || m[3].Content != res.JSON() {
			t.Fatalf("%s: tool content %q, want %q (%v)", where, m[3].Content, res.JSON(), err)
		}
		// The answer uses the result.
		ans := m[4].Content
		for _, s := range []string{fmt.Sprintf("%d°F", res.TempF), fmt.Sprintf("%d°C", res.TempC), title(res.Condition)} {
			if !strings.Contains(ans, s) && !strings.Contains(ans, strings.ToLower(s)) {
				t.Fatalf("%s: answer does not mention %q: %s", where, s, ans)
			}
		}
		lower := strings.ToLower(ans)
		if needsUmbrella(res) && !strings.Contains(lower, "umbrella") {
			t.Fatalf("%s: wet weather without an umbrella: %s\n%s", where, ans, res.JSON())
		}
		if (isSnowy(res) || res.TempC <= 5) && !strings.Contains(lower, "coat") {
			t.Fatalf("%s: cold weather without a coat: %s\n%s", where, ans, res.JSON())
		}
		if adviceCategory(res) == adviceSunscreen && !strings.Contains(lower, "sunscreen") {
			t.Fatalf("%s: sunny heat without sunscreen: %s", where, ans)
		}
		for _, s := range []string{m[1].Content, m[2].Content, ans} {
			if strings.ContainsAny(s, "{}") || strings.Contains(s, "  ") || strings.Contains(s, "<|") {
				t.Fatalf("%s: unfilled placeholder or stray markup in %q", where, s)
			}
		}
		// The text is the rendering of the messages and parses back.
		if rec.Text != twainbot().Render(m, false) {
			t.Fatalf("%s: text is not Render(messages)", where)
		}
		back, err := twainbot().Parse(rec.Text)
		if err != nil || !reflect.DeepEqual(back, withoutNames(m)) {
			t.Fatalf("%s: Parse: %v\n%#v", where, err, back)
		}
		questionsSeen[normKey(m[1].Content)] = true
	}
	if len(questionsSeen) != len(recs) {
		t.Errorf("%d distinct questions in %d records", len(questionsSeen), len(recs))
	}

	var rep Report
	if err := json.Unmarshal(reportJSON, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Count != 400 || rep.DuplicateQuestions != 0 || rep.DistinctQuestions != 400 {
		t.Errorf("report counts: %+v", rep)
	}
	if len(rep.QuestionTemplates) < 30 || len(rep.AnswerTemplates) < 20 || len(rep.QuestionStyles) != 4 {
		t.Errorf("templates used: %d questions, %d answers, %d styles", len(rep.QuestionTemplates), len(rep.AnswerTemplates), len(rep.QuestionStyles))
	}
	if rep.DistinctLocations < 30 || rep.DistinctLocations != len(rep.Locations) {
		t.Errorf("only %d distinct locations", rep.DistinctLocations)
	}
	if len(rep.DateKinds) < 7 || rep.DateKinds[dateOmitted] == 0 || rep.DateKinds[dateTomorrow] == 0 {
		t.Errorf("date kinds: %v", rep.DateKinds)
	}
	if rep.Abbreviations < 20 || rep.LocationForms[formAlias] < 60 {
		t.Errorf("abbreviations %d, alias forms %d", rep.Abbreviations, rep.LocationForms[formAlias])
	}
	abbrevs := 0
	for _, a := range []string{"SF", "NYC", "LA", "DC", "Philly", "NOLA"} {
		if rep.Aliases[a] > 0 {
			abbrevs++
		}
	}
	if abbrevs < 4 {
		t.Errorf("only %d of the common abbreviations used: %v", abbrevs, rep.Aliases)
	}
	if len(rep.Advice) < 6 || len(rep.Conditions) < 7 {
		t.Errorf("advice %v, conditions %v", rep.Advice, rep.Conditions)
	}
	sum := 0
	for _, n := range rep.QuestionTemplates {
		sum += n
	}
	if sum != 400 {
		t.Errorf("question template counts sum to %d", sum)
	}
}

func TestCount(t *testing.T) {
	conv, _ := mustRun(t, map[string]cty.Value{"count": cty.NumberIntVal(3)})
	if n := bytes.Count(conv, []byte("\n")); n != 3 {
		t.Fatalf("%d lines, want 3", n)
	}
	for _, tc := range []struct {
		v    cty.Value
		want string
	}{
		{cty.NumberIntVal(0), "must be between 1"},
		{cty.NumberIntVal(2_000_000), "must be between 1"},
		{cty.NumberFloatVal(2.5), "must be a whole number"},
	} {
		if _, err := run(t, map[string]cty.Value{"count": tc.v}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("count %v: error %v, want %q", tc.v.GoString(), err, tc.want)
		}
	}
}

func TestManyWithoutDuplicates(t *testing.T) {
	recs, rep, err := Generate(Options{Count: 3000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3000 || rep.DuplicateQuestions > 30 {
		t.Fatalf("%d records, %d duplicate questions", len(recs), rep.DuplicateQuestions)
	}
}

func TestHoldoutAndSystemPrompt(t *testing.T) {
	empty := ""
	recs, rep, err := Generate(Options{Count: 300, Seed: 3, Holdout: []string{"SF", "paris", "San Francisco, CA"}, SystemPrompt: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.HoldoutLocations, []string{"Paris, France", "San Francisco, CA"}) || rep.SystemPrompt != "none" {
		t.Fatalf("report: %v %q", rep.HoldoutLocations, rep.SystemPrompt)
	}
	for _, r := range recs {
		if r.Call.Location == "San Francisco, CA" || r.Call.Location == "Paris, France" {
			t.Fatalf("held-out place used: %+v", r.Call)
		}
		if r.Messages[0].Role != chat.RoleUser || !strings.HasPrefix(r.Text, "<|user|>\n") {
			t.Fatalf("system message present: %q", r.Text[:40])
		}
	}
	custom := "Be brief."
	recs, _, err = Generate(Options{Count: 1, Seed: 3, SystemPrompt: &custom})
	if err != nil || recs[0].Messages[0].Content != custom {
		t.Fatalf("custom system prompt: %v %+v", err, recs)
	}
	if _, _, err := Generate(Options{Count: 1, Holdout: []string{"Atlantis"}}); err == nil || !strings.Contains(err.Error(), `"Atlantis" is not a built-in place`) {
		t.Fatalf("unknown holdout: %v", err)
	}
	var all []string
	for _, p := range weather.Places() {
		all = append(all, p.Name)
	}
	if _, _, err := Generate(Options{Count: 1, Holdout: all}); err == nil {
		t.Fatal("holding out every place succeeded")
	}
	if _, err := run(t, map[string]cty.Value{"holdout_locations": cty.ListVal([]cty.Value{cty.StringVal("NYC")}),
		"system_prompt": cty.StringVal("")}); err != nil {
		t.Fatal(err)
	}
}

func TestTemplates(t *testing.T) {
	if len(questions) < 30 || len(answers) < 20 {
		t.Fatalf("%d question and %d answer templates", len(questions), len(answers))
	}
	ids := map[string]bool{}
	for _, q := range questions {
		if ids[q.ID] || strings.Count(q.Text, "{loc}") != 1 || strings.Count(q.Text, "{when}") != 1 {
			t.Errorf("question template %+v", q)
		}
		ids[q.ID] = true
	}
	for _, a := range answers {
		if ids[a.ID] || !strings.Contains(a.Text, "{tf}°F") || !strings.Contains(a.Text, "{tc}°C") ||
			!strings.Contains(a.Text, "{City}") || !strings.Contains(a.Text, "{Advice}") ||
			!(strings.Contains(a.Text, "{cond}") || strings.Contains(a.Text, "{Cond}")) {
			t.Errorf("answer template %+v", a)
		}
		ids[a.ID] = true
	}
	// Every way of naming a place maps back to it; every date is canonical.
	r := newRNG(9)
	for _, p := range weather.Places() {
		for i := 0; i < 20; i++ {
			loc := chooseLocation(r, p)
			if got := weather.CanonicalLocation(loc.Surface); got != p.Name {
				t.Errorf("%s form %q → %q, want %q", loc.Form, loc.Surface, got, p.Name)
			}
			if got := weather.CanonicalLocation(strings.ToLower(loc.Surface)); got != p.Name {
				t.Errorf("lower-cased %q → %q, want %q", loc.Surface, got, p.Name)
			}
		}
	}
	kinds := map[string]bool{}
	for i := 0; i < 2000; i++ {
		d := chooseDate(r, i%2 == 0)
		kinds[d.Kind] = true
		if weather.CanonicalDate(d.Call) != d.Call || (d.Surface == "") != (d.Kind == dateOmitted) ||
			(d.Surface != "" && d.Surface[0] != ' ') {
			t.Fatalf("date %+v", d)
		}
	}
	if len(kinds) != len(dateKindWeights) {
		t.Errorf("date kinds drawn: %v", kinds)
	}
	for _, a := range []string{"SF", "NYC", "L.A.", "T.O.", "DC"} {
		if !isAbbreviation(a) {
			t.Errorf("%q is an abbreviation", a)
		}
	}
	for _, a := range []string{"Philly", "the Big Apple", "S", "Chi-town"} {
		if isAbbreviation(a) {
			t.Errorf("%q is not an abbreviation", a)
		}
	}
}

func TestRNGPinned(t *testing.T) {
	// The stream of choices for a seed must not depend on the Go release.
	r := newRNG(42)
	var got []int
	for i := 0; i < 8; i++ {
		got = append(got, r.intN(1000))
	}
	want := []int{168, 599, 244, 238, 855, 305, 747, 244}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("intN stream %v, want %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	cfg := func(name string, v cty.Value) *steps.Invocation {
		c := map[string]cty.Value{}
		for _, a := range (Kind{}).Schema().Attributes {
			c[a.Name] = a.Default
			if a.Default == cty.NilVal {
				c[a.Name] = cty.NullVal(a.Type)
			}
		}
		c[name] = v
		return &steps.Invocation{Step: "synth_tools.x", Config: c}
	}
	if err := (Kind{}).Validate(cfg("count", cty.NumberIntVal(5))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		attr string
		v    cty.Value
	}{
		{"count", cty.NumberIntVal(0)},
		{"seed", cty.NumberFloatVal(0.5)},
		{"holdout_locations", cty.ListVal([]cty.Value{cty.StringVal("Atlantis")})},
		{"answer_fraction", cty.NumberFloatVal(1.5)},
		{"answer_fraction", cty.NumberFloatVal(-0.1)},
		{"call_location", cty.StringVal("canonicalized")},
		{"answer_style", cty.StringVal("terse")},
		{"small_talk", cty.NumberFloatVal(2)},
	} {
		var ae *steps.AttrError
		if err := (Kind{}).Validate(cfg(tc.attr, tc.v)); !errors.As(err, &ae) || ae.Attr != tc.attr || strings.Contains(ae.Msg, "synth_tools.x") {
			t.Errorf("%s: %v", tc.attr, err)
		}
	}
}

// TestAnswerFraction: a fraction of the conversations, spread evenly, go
// on to the tool's result and an answer; the others end with the call, and
// are otherwise the same conversations as with every one answered.
func TestAnswerFraction(t *testing.T) {
	all, _ := mustRun(t, map[string]cty.Value{"count": cty.NumberIntVal(200)})
	conv, report := mustRun(t, map[string]cty.Value{"count": cty.NumberIntVal(200), "answer_fraction": cty.NumberFloatVal(0.25)})
	full, some := readRecords(t, all), readRecords(t, conv)
	var rep Report
	if err := json.Unmarshal(report, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Answered != 50 || rep.CallOnly != 150 {
		t.Fatalf("answered %d, call-only %d; want 50 and 150", rep.Answered, rep.CallOnly)
	}
	answered := 0
	for i, r := range some {
		f := full[i]
		k := len(f.Messages) - 2 // system, user, call
		if r.Call != f.Call || !reflect.DeepEqual(r.Messages[:k], f.Messages[:k]) {
			t.Fatalf("conversation %d differs up to the call:\n%v\n%v", i+1, r.Messages[:k], f.Messages[:k])
		}
		switch len(r.Messages) {
		case len(f.Messages):
			answered++
			if r.Text != f.Text {
				t.Fatalf("answered conversation %d differs", i+1)
			}
		case k:
			if last := r.Messages[k-1]; last.Role != chat.RoleAssistant || !strings.HasSuffix(last.Content, weather.CloseTag) {
				t.Fatalf("conversation %d does not end at its call: %+v", i+1, r.Messages)
			}
			if msgs, err := twainbot().Parse(r.Text); err != nil || !reflect.DeepEqual(msgs, withoutNames(r.Messages)) {
				t.Fatalf("conversation %d: the text does not parse back: %v", i+1, err)
			}
		default:
			t.Fatalf("conversation %d has %d messages", i+1, len(r.Messages))
		}
		// Evenly spread: one in every four.
		if want := (i+1)/4 - i/4; (len(r.Messages) > k) != (want == 1) {
			t.Fatalf("conversation %d: answered %v", i+1, len(r.Messages) > k)
		}
	}
	if answered != 50 {
		t.Fatalf("%d answered", answered)
	}
	none, _ := mustRun(t, map[string]cty.Value{"count": cty.NumberIntVal(20), "answer_fraction": cty.NumberIntVal(0), "system_prompt": cty.StringVal("")})
	for i, r := range readRecords(t, none) {
		if len(r.Messages) != 2 {
			t.Fatalf("answer_fraction 0: conversation %d has %d messages", i+1, len(r.Messages))
		}
	}
}

// TestThoughtStyles: "arguments" opens the free thought with the call's
// arguments in the call's syntax, "none" leaves the call alone; the rest of
// every conversation is the same.
func TestThoughtStyles(t *testing.T) {
	cfg := func(style string) map[string]cty.Value {
		return map[string]cty.Value{"count": cty.NumberIntVal(50), "thought": cty.StringVal(style)}
	}
	free, _ := mustRun(t, cfg(ThoughtFree))
	args, report := mustRun(t, cfg(ThoughtArguments))
	none, _ := mustRun(t, cfg(ThoughtNone))
	var rep Report
	if err := json.Unmarshal(report, &rep); err != nil || rep.Thought != ThoughtArguments {
		t.Fatalf("report thought %q (%v)", rep.Thought, err)
	}
	fr, ar, nr := readRecords(t, free), readRecords(t, args), readRecords(t, none)
	for i := range fr {
		k := len(fr[i].Messages) - 3 // the assistant's first turn
		f, a, n := fr[i].Messages[k].Content, ar[i].Messages[k].Content, nr[i].Messages[k].Content
		thought, call, _ := strings.Cut(f, "\n")
		if n != call || !strings.HasPrefix(call, weather.OpenTag) {
			t.Fatalf("conversation %d: none gives %q, want %q", i+1, n, call)
		}
		c := fr[i].Call
		want := fmt.Sprintf(`Thought: location=%q, date=%q. %s`, c.Location, c.Date, strings.TrimPrefix(thought, "Thought: ")) + "\n" + call
		if a != want {
			t.Fatalf("conversation %d: arguments gives\n%q\nwant\n%q", i+1, a, want)
		}
		for j := range fr[i].Messages {
			if j != k && fr[i].Messages[j] != ar[i].Messages[j] {
				t.Fatalf("conversation %d: message %d differs between styles", i+1, j)
			}
		}
	}
	if _, err := run(t, cfg("verbose")); err == nil || !strings.Contains(err.Error(), "thought") {
		t.Fatalf("an unknown style: %v", err)
	}
}

// withoutNames returns msgs without their tool names, which the rendered
// text does not hold.
func withoutNames(msgs []chat.Message) []chat.Message {
	out := append([]chat.Message(nil), msgs...)
	for i := range out {
		out[i].Name = ""
	}
	return out
}
