package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/plot"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// weatherRecord is a conversation record as synth_tools writes them: the
// tool's system prompt, a question, the call, the tool's result and an
// answer.
func weatherRecord(t *testing.T, question, location, date string) trainingdata.Record {
	t.Helper()
	call := weather.NewCall(location, date)
	res, err := weather.Execute(call)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []chat.Message{
		{Role: chat.RoleSystem, Content: weather.SystemPrompt()},
		{Role: chat.RoleUser, Content: question},
		{Role: chat.RoleAssistant, Content: "Thought: the place is " + location + ".\n" + weather.Format(call)},
		{Role: chat.RoleTool, Name: weather.ToolName, Content: res.JSON()},
		{Role: chat.RoleAssistant, Content: fmt.Sprintf("Expect %s and %d°C in %s.", res.Condition, res.TempC, location)},
	}
	return trainingdata.Record{Text: twainbot().Render(msgs, false), Messages: msgs,
		Call: trainingdata.CallArgs{Location: call.Arguments[weather.ArgLocation], Date: call.Arguments[weather.ArgDate]}}
}

// weatherRecords are two conversations.
func weatherRecords(t *testing.T) []trainingdata.Record {
	return []trainingdata.Record{
		weatherRecord(t, "What's the weather in SF tomorrow?", "San Francisco, CA", "tomorrow"),
		weatherRecord(t, "Will it rain in Paris today?", "Paris, France", "today"),
	}
}

// validationFile writes two conversations and one prose record.
func validationFile(t *testing.T) string {
	t.Helper()
	recs := weatherRecords(t)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	must(t, enc.Encode(recs[0]))
	b.WriteString(`{"text":"The report of my death was an exaggeration, and the report of the meeting was worse."}` + "\n")
	must(t, enc.Encode(recs[1]))
	path := filepath.Join(t.TempDir(), "validation.jsonl")
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

type setup struct {
	base, model, val string
}

func newSetup(t *testing.T) setup {
	return setup{base: writeTinyModel(t, 1, false), model: writeTinyModel(t, 2, true), val: validationFile(t)}
}

func (s setup) invocation(t *testing.T, config map[string]cty.Value) *steps.Invocation {
	t.Helper()
	cfg := map[string]cty.Value{"max_new_tokens": cty.NumberIntVal(12)}
	for k, v := range config {
		cfg[k] = v
	}
	return steptest.Invocation(t, Kind{}, "eval.twainbot", map[string][]steps.InputFile{
		"base":       {{Path: s.base, Name: "models/base", Digest: strings.Repeat("a", 64)}},
		"model":      {{Path: s.model, Name: "build/merge.twainbot/model", Digest: strings.Repeat("b", 64)}},
		"validation": {{Path: s.val, Name: "build/split.dataset/validation.jsonl", Digest: strings.Repeat("c", 64)}},
	}, cfg)
}

func run(t *testing.T, inv *steps.Invocation) *Report {
	t.Helper()
	must(t, (Kind{}).Run(context.Background(), inv))
	b, err := os.ReadFile(filepath.Join(inv.OutDir, "report", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	must(t, dec.Decode(&rep))
	return &rep
}

func approxEqual(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestRegistered(t *testing.T) {
	k, ok := steps.Default.Lookup("eval")
	if !ok {
		t.Fatal("eval is not registered")
	}
	s := k.Schema()
	if s.Kind != "eval" || !s.Heavy || len(s.Outputs) != 1 || s.Outputs[0].Path != "report" || !s.Outputs[0].Dir {
		t.Fatalf("schema %+v", s)
	}
	var names []string
	for _, a := range s.Attributes {
		names = append(names, a.Name)
		if (a.Name == "threads" || a.Name == "device") && !a.NotInKey {
			t.Errorf("%s must be NotInKey", a.Name)
		}
	}
	if got := strings.Join(names, ","); got != "base,model,validation,test,max_new_tokens,max_tool_prompts,prompts,no_tool_prompts,train,training_curves,threads,device" {
		t.Fatalf("attributes %s", got)
	}
}

func TestEndToEnd(t *testing.T) {
	s := newSetup(t)
	var progress []string
	inv := s.invocation(t, nil)
	inv.Progress = func(done, total float64, msg string) {
		if done > total {
			t.Errorf("progress %v/%v", done, total)
		}
		progress = append(progress, msg)
	}
	rep := run(t, inv)

	if rep.ToolPrompts != 2 || len(rep.Conversations) != 2 || len(rep.Examples) != len(DefaultPrompts) || rep.ValidationRecords != 3 {
		t.Fatalf("counts: tool_prompts %d, conversations %d, examples %d, records %d", rep.ToolPrompts, len(rep.Conversations), len(rep.Examples), rep.ValidationRecords)
	}
	if want := 2 * (3 + 2 + len(DefaultPrompts) + len(DefaultNoToolPrompts)); len(progress) != want {
		t.Errorf("%d progress reports, want %d", len(progress), want)
	}
	for key, m := range map[string]ModelReport{"base": rep.Models.Base, "finetuned": rep.Models.Finetuned} {
		if m.ValLoss == nil || m.ValPPL == nil || m.PersonaLoss == nil || m.ChatLoss == nil {
			t.Fatalf("%s: null losses: %+v", key, m)
		}
		if *m.ValLoss <= 0 || *m.ValLoss > 20 || !approxEqual(*m.ValPPL, math.Exp(*m.ValLoss)) {
			t.Errorf("%s: val_loss %v, val_ppl %v", key, *m.ValLoss, *m.ValPPL)
		}
		if m.ValRecords != 3 || m.PersonaRecords != 1 || m.ChatRecords != 2 || m.ValTokens != m.PersonaTokens+m.ChatTokens || m.PersonaTokens == 0 || m.ChatTokens == 0 {
			t.Errorf("%s: records/tokens %+v", key, m)
		}
		mix := (*m.PersonaLoss*float64(m.PersonaTokens) + *m.ChatLoss*float64(m.ChatTokens)) / float64(m.ValTokens)
		if !approxEqual(mix, *m.ValLoss) {
			t.Errorf("%s: val_loss %v is not the token-weighted mean of persona and chat (%v)", key, *m.ValLoss, mix)
		}
		if m.ToolPrompts != 2 || m.ExactArgs != 0 || m.ExactArgsRate == nil || *m.ExactArgsRate != 0 {
			t.Errorf("%s: a random model made exact calls: %+v", key, m)
		}
		if !(m.ExactArgs <= m.ValidCalls && m.ValidCalls <= m.ToolCalls && m.ToolCalls <= m.ToolPrompts && m.AnswerUsesTool <= m.Answers && m.Answers <= m.ValidCalls) {
			t.Errorf("%s: counts not nested: %+v", key, m)
		}
		for _, r := range []*float64{m.ToolCallRate, m.ValidCallRate, m.ExactArgsRate, m.AnswerUsesToolRate} {
			if r == nil || *r < 0 || *r > 1 {
				t.Errorf("%s: rate out of range: %+v", key, m)
			}
		}
		if m.NoToolPrompts != len(DefaultNoToolPrompts) || m.NoToolCallRate == nil || m.NoToolCalls > m.NoToolPrompts {
			t.Errorf("%s: no-tool prompts: %+v", key, m)
		}
		if m.PersonaWords > 0 && (m.Distinct1 == nil || m.Distinct2 == nil || *m.Distinct1 <= 0 || *m.Distinct1 > 1) {
			t.Errorf("%s: distinct-n: %+v", key, m)
		}
		if m.CopiedSentenceShare != nil {
			t.Errorf("%s: a copied-sentence share without training sets", key)
		}
		if m.Params != 2*128*32+2*(32+32*32+16*32*2+32*32+32+3*48*32)+32 {
			t.Errorf("%s: params %d", key, m.Params)
		}
	}
	if rep.Models.Base.Digest != strings.Repeat("a", 64) || rep.Models.Finetuned.Digest != strings.Repeat("b", 64) {
		t.Error("digests")
	}
	for i, c := range rep.Conversations {
		if c.File != 0 || c.Question == "" || c.Expected.Arguments["location"] == "" || len(c.Base.Transcript) == 0 || len(c.Finetuned.Transcript) == 0 {
			t.Errorf("conversation %d: %+v", i, c)
		}
	}
	if rep.Conversations[0].Line != 1 || rep.Conversations[1].Line != 3 {
		t.Errorf("lines %d, %d", rep.Conversations[0].Line, rep.Conversations[1].Line)
	}
	for i, e := range rep.Examples {
		if e.Prompt != DefaultPrompts[i] || len(e.Base.Transcript) == 0 || e.Base.Transcript[0].Stop == "" {
			t.Errorf("example %d: %+v", i, e)
		}
	}
	for i, e := range rep.NoTool {
		if e.Prompt != DefaultNoToolPrompts[i] || len(e.Finetuned.Transcript) == 0 {
			t.Errorf("no-tool prompt %d: %+v", i, e)
		}
	}
	dir := filepath.Join(inv.OutDir, "report")
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data:image/png;base64,", "Mark Twain&#39;s voice", "exact argument rate", html.EscapeString(rep.Conversations[0].Question),
		"tool called without need", "Failures of the fine-tuned model", "Tell me a joke about lawyers."} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, p := range rep.Plots {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("plot %s: %v", p, err)
		}
	}

	if out := os.Getenv("EVAL_OUT"); out != "" { // for a look by eye
		for _, name := range append([]string{"report.json", "report.html"}, rep.Plots...) {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			must(t, os.WriteFile(filepath.Join(out, name), b, 0o644))
		}
	}

	// Deterministic, whatever the thread count.
	inv2 := s.invocation(t, map[string]cty.Value{"threads": cty.NumberIntVal(1)})
	run(t, inv2)
	for _, name := range []string{"report.json", "report.html", "metrics.png", "loss.png"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(inv2.OutDir, "report", name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between runs", name)
		}
	}
}

func TestOptions(t *testing.T) {
	s := newSetup(t)
	rep := run(t, s.invocation(t, map[string]cty.Value{
		"max_tool_prompts": cty.NumberIntVal(1),
		"prompts":          cty.ListValEmpty(cty.String),
		"max_new_tokens":   cty.NumberIntVal(3),
	}))
	if rep.ToolPrompts != 1 || len(rep.Conversations) != 1 || len(rep.Examples) != 0 || rep.Models.Base.ToolPrompts != 1 || rep.MaxNewTokens != 3 {
		t.Fatalf("%+v", rep)
	}
	for _, turn := range rep.Conversations[0].Base.Transcript {
		if turn.Role == "assistant" && len(turn.Content) > 3 && turn.Stop == StopMaxTokens {
			t.Errorf("a 3-token turn of %d characters", len(turn.Content))
		}
	}
}

// TestLossChunking checks the chunked loss against one Forward over the
// whole sequence.
func TestLossChunking(t *testing.T) {
	l, err := loadLM(steps.InputFile{Path: writeTinyModel(t, 3, true)}, tensor.NewCPU(0))
	if err != nil {
		t.Fatal(err)
	}
	recs := weatherRecords(t)
	ex := l.enc.Encode(recs[0].Text)
	if len(ex.IDs) < 600 {
		t.Fatalf("record of %d tokens is too short to need two chunks", len(ex.IDs))
	}
	sum, n, err := l.loss(context.Background(), ex.IDs, ex.Labels)
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := l.m.NewCache(len(ex.IDs))
	logits, err := l.m.Forward(cache, ex.IDs, true)
	if err != nil {
		t.Fatal(err)
	}
	V := l.m.Config.VocabSize
	want, wn := 0.0, 0
	for i := 0; i+1 < len(ex.IDs); i++ {
		if lab := ex.Labels[i+1]; lab != trainingdata.IgnoreIndex {
			want += crossEntropy(logits[i*V:(i+1)*V], lab)
			wn++
		}
	}
	if n != wn || n != ex.Trained() || math.Abs(sum-want) > 1e-6*want {
		t.Fatalf("chunked loss %v over %d tokens, whole %v over %d", sum, n, want, wn)
	}
}

// TestPromptEncoding checks that a generation prompt is encoded as the
// same text is in training: its ids are a prefix of the training ids, for
// tokenizers with and without special chat tags.
func TestPromptEncoding(t *testing.T) {
	recs := weatherRecords(t)
	msgs := recs[0].Messages // system, user, assistant (call), tool, assistant
	for _, special := range []bool{false, true} {
		l, err := loadLM(steps.InputFile{Path: writeTinyModel(t, 1, special)}, tensor.NewCPU(1))
		if err != nil {
			t.Fatal(err)
		}
		full := l.enc.Encode(recs[0].Text).IDs
		for _, upTo := range []int{2, 4} {
			p := l.enc.EncodePrompt(msgs[:upTo])
			if len(p) >= len(full) || !reflect.DeepEqual(p, full[:len(p)]) {
				t.Errorf("special %v, %d messages: the prompt's ids are not a prefix of the training ids", special, upTo)
			}
			if got := l.tok.Decode(p, false); !strings.HasSuffix(got, "<|assistant|>\n") {
				t.Errorf("prompt ends %q", got[max(0, len(got)-20):])
			}
		}
	}
}

func TestErrors(t *testing.T) {
	s := newSetup(t)
	check := func(name string, inv *steps.Invocation, want ...string) {
		t.Helper()
		err := (Kind{}).Run(context.Background(), inv)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: multi-line error %q", name, msg)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q lacks %q", name, msg, w)
			}
		}
	}
	inv := s.invocation(t, nil)
	inv.Inputs["base"][0].Path = filepath.Join(t.TempDir(), "none")
	check("missing base", inv, "eval.twainbot", "models/base", "does not exist")

	inv = s.invocation(t, nil)
	inv.Inputs["model"][0].Path = t.TempDir()
	check("empty model dir", inv, "build/merge.twainbot/model", "config.json")

	noTok := writeTinyModel(t, 1, true)
	must(t, os.Remove(filepath.Join(noTok, "tokenizer.json")))
	inv = s.invocation(t, nil)
	inv.Inputs["model"][0].Path = noTok
	check("no tokenizer", inv, "build/merge.twainbot/model", "tokenizer.json")

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	must(t, os.WriteFile(bad, []byte("{\"text\":\"fine\"}\n{\"text\": oops}\n"), 0o644))
	inv = s.invocation(t, nil)
	inv.Inputs["validation"] = []steps.InputFile{{Path: bad, Name: "data/bad.jsonl"}}
	check("bad line", inv, "validation file data/bad.jsonl, line 2", "invalid JSON")

	must(t, os.WriteFile(bad, []byte("{\"text\":\"fine\"}\n\n{\"messages\":[]}\n"), 0o644))
	check("no text", inv, "data/bad.jsonl, line 3", `no "text"`)

	must(t, os.WriteFile(bad, []byte("{\"text\":\"fine\"}\n[1]\n"), 0o644))
	check("not an object", inv, "data/bad.jsonl, line 2", "JSON object")

	inv.Inputs["validation"] = []steps.InputFile{{Path: filepath.Join(t.TempDir(), "gone.jsonl"), Name: "data/gone.jsonl"}}
	check("missing file", inv, "data/gone.jsonl")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Kind{}).Run(ctx, s.invocation(t, nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestValidate(t *testing.T) {
	s := newSetup(t)
	for _, tc := range []struct {
		attr string
		v    cty.Value
		want string
	}{
		{"max_new_tokens", cty.NumberIntVal(0), "between 1 and"},
		{"max_new_tokens", cty.NumberFloatVal(2.5), "whole number"},
		{"max_tool_prompts", cty.NumberIntVal(-1), "0 (all)"},
		{"prompts", cty.ListVal([]cty.Value{cty.StringVal("hi"), cty.StringVal(" ")}), "prompt 2 is empty"},
		{"threads", cty.NumberIntVal(-2), "threads"},
	} {
		inv := s.invocation(t, map[string]cty.Value{tc.attr: tc.v})
		err := (Kind{}).Validate(inv)
		var ae *steps.AttrError
		if !errors.As(err, &ae) || ae.Attr != tc.attr || !strings.Contains(ae.Msg, tc.want) {
			t.Errorf("%s = %s: %v, want %q", tc.attr, tc.v.GoString(), err, tc.want)
		}
	}
	if err := (Kind{}).Validate(s.invocation(t, nil)); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestTrainAndCurves: with the training sets, the share of answer
// sentences copied from them is reported; the training curves appear in
// report.html; a curves folder without loss.png is refused by name.
func TestTrainAndCurves(t *testing.T) {
	s := newSetup(t)
	train := filepath.Join(t.TempDir(), "train.jsonl")
	must(t, os.WriteFile(train, []byte(`{"text":"Nothing to see here."}`+"\n"), 0o644))
	curves := t.TempDir()
	png, err := plotPNG()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(curves, "loss.png"), png, 0o644))
	inv := s.invocation(t, map[string]cty.Value{"prompts": cty.ListValEmpty(cty.String)})
	inv.Inputs["train"] = []steps.InputFile{{Path: train, Name: "build/split.persona/train.jsonl"}}
	inv.Inputs["training_curves"] = []steps.InputFile{{Path: curves, Name: "build/qlora_train.twainbot/curves"}}
	rep := run(t, inv)
	for key, m := range map[string]ModelReport{"base": rep.Models.Base, "finetuned": rep.Models.Finetuned} {
		if m.Sentences > 0 && m.CopiedSentenceShare == nil {
			t.Errorf("%s: no copied-sentence share with training sets", key)
		}
	}
	if len(rep.TrainingCurves) != 1 || rep.TrainingCurves[0] != "build/qlora_train.twainbot/curves" {
		t.Errorf("training_curves %q", rep.TrainingCurves)
	}
	page, err := os.ReadFile(filepath.Join(inv.OutDir, "report", "report.html"))
	must(t, err)
	if !bytes.Contains(page, []byte("loss curves of build/qlora_train.twainbot/curves")) {
		t.Error("report.html lacks the training curves")
	}

	inv = s.invocation(t, nil)
	inv.Inputs["training_curves"] = []steps.InputFile{{Path: t.TempDir(), Name: "build/x/curves"}}
	if err := (Kind{}).Run(context.Background(), inv); err == nil || !strings.Contains(err.Error(), "build/x/curves has no loss.png") {
		t.Errorf("curves without loss.png: %v", err)
	}
}

func plotPNG() ([]byte, error) {
	return plot.BarsPNG("x", []string{"a"}, plot.BarGroup{Name: "b", Values: []float64{1}})
}

func TestPersona(t *testing.T) {
	c := corpus{" " + normalizeText("The river is a wonderful book with a new story to tell every day.") + " "}
	st := persona([]string{
		"The river is a wonderful book. It rains.",
		"the river is a wonderful book!",
		"A brand new sentence of my very own.",
		"",
	}, c)
	if st.answers != 3 || st.sentences != 3 || st.repeated != 2 || st.copied != 2 {
		t.Errorf("%+v: want 3 answers, 3 sentences of 5+ words, 2 repeated, 2 copied", st)
	}
	if st.distinct1 <= 0 || st.distinct1 >= 1 || st.distinct2 <= 0 || st.distinct2 >= 1 {
		t.Errorf("distinct %v %v", st.distinct1, st.distinct2)
	}
	if st := persona([]string{"He went home to sleep again tonight."}, corpus{" and then he went home to sleep again tonight said tom "}); st.copied != 1 {
		t.Errorf("a sentence inside a longer one: copied %d", st.copied)
	}
	if st := persona([]string{"Xhe went home to sleep again tonight."}, corpus{" he went home to sleep again tonight "}); st.copied != 0 {
		t.Errorf("a word that only ends like one: copied %d", st.copied)
	}
}
