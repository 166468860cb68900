package eval

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	mlconfig "github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/plot"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// Report is report.json.
type Report struct {
	// Models holds each model's metrics.
	Models struct {
		Base      ModelReport `json:"base"`
		Finetuned ModelReport `json:"finetuned"`
	} `json:"models"`
	// ValidationFiles lists the validation inputs in order (records are
	// referred to by index into this list and line number).
	ValidationFiles   []FileReport `json:"validation_files"`
	ValidationRecords int          `json:"validation_records"`
	// ToolPrompts is the number of held-out tool conversations replayed.
	ToolPrompts  int `json:"tool_prompts"`
	MaxNewTokens int `json:"max_new_tokens"`
	// Plots are the PNG files written beside report.json.
	Plots []string `json:"plots"`
	// Conversations are the held-out tool conversations, both models' outcomes side by side.
	Conversations []Conversation `json:"conversations"`
	// Examples are the prompts' transcripts, both models side by side.
	Examples []Example `json:"examples"`
	// NoTool are the no-tool prompts' transcripts, both models side by side.
	NoTool []Example `json:"no_tool"`
	// ValNoTool are the held-out conversations that need no tool, asked
	// as prompts (the training's phrasings), both models side by side.
	ValNoTool []Example `json:"val_no_tool"`
	// TestFiles, TestConversations and TestNoTool are the test input's
	// files and conversations (tool ones and ones that need none), both
	// models' outcomes side by side, each with its slice.
	TestFiles         []FileReport   `json:"test_files,omitempty"`
	TestConversations []Conversation `json:"test_conversations,omitempty"`
	TestNoTool        []Example      `json:"test_no_tool,omitempty"`
	// TrainingCurves names the training runs whose loss charts
	// report.html shows.
	TrainingCurves []string `json:"training_curves"`
}

// FileReport is one validation input.
type FileReport struct {
	Digest  string `json:"digest"`
	Records int    `json:"records"`
}

// ModelReport is one model's metrics. Metrics that are undefined (a loss
// over no tokens, a rate over no conversations, a non-finite value) are
// null.
type ModelReport struct {
	Digest string `json:"digest"`
	// Params is the number of parameters.
	Params int64 `json:"params"`

	// ValLoss is the mean cross-entropy (nats) over every scored token of
	// the validation set; ValPPL = exp(ValLoss). PersonaLoss is the mean
	// over the prose records' tokens, ChatLoss over the conversations'
	// (assistant) tokens.
	ValLoss     *float64 `json:"val_loss"`
	ValPPL      *float64 `json:"val_ppl"`
	PersonaLoss *float64 `json:"persona_loss"`
	ChatLoss    *float64 `json:"chat_loss"`
	// Records scored (ValRecords = PersonaRecords + ChatRecords); records
	// with no token to score are skipped; records longer than the model's
	// context are truncated to it.
	ValRecords       int `json:"val_records"`
	PersonaRecords   int `json:"persona_records"`
	ChatRecords      int `json:"chat_records"`
	SkippedRecords   int `json:"skipped_records"`
	TruncatedRecords int `json:"truncated_records"`
	// Tokens scored.
	ValTokens     int `json:"val_tokens"`
	PersonaTokens int `json:"persona_tokens"`
	ChatTokens    int `json:"chat_tokens"`

	// Tool use over the held-out tool conversations. Counts:
	// ToolAttempts first turns containing "<tool_call>", ToolCalls calls
	// parsed, ValidCalls parsed and valid (executed), ExactArgs valid and
	// matching the expected arguments, Answers executed calls followed by a
	// non-blank answer, AnswerUsesTool answers that use the result.
	// Rates are counts divided by ToolPrompts, so exact ≤ valid ≤ call.
	ToolPrompts        int      `json:"tool_prompts"`
	ToolAttempts       int      `json:"tool_attempts"`
	ToolCalls          int      `json:"tool_calls"`
	ValidCalls         int      `json:"valid_calls"`
	ExactArgs          int      `json:"exact_args"`
	Answers            int      `json:"answers"`
	AnswerUsesTool     int      `json:"answer_uses_tool"`
	ToolCallRate       *float64 `json:"tool_call_rate"`
	ValidCallRate      *float64 `json:"valid_call_rate"`
	ExactArgsRate      *float64 `json:"exact_args_rate"`
	AnswerUsesToolRate *float64 `json:"answer_uses_tool_rate"`

	// Held-out conversations whose call the tool refuses (a day that has
	// passed): ToolErrorRecovered made the call as asked and answered the
	// error naming the place asked about and no other, without a call or a
	// temperature; left out of the counts above.
	ToolErrorPrompts      int      `json:"tool_error_prompts"`
	ToolErrorRecovered    int      `json:"tool_error_recovered"`
	ToolErrorRecoveryRate *float64 `json:"tool_error_recovery_rate"`

	// Questions that need no tool (no_tool_prompts): NoToolCalls answers
	// that attempted a call ("<tool_call>" in the first turn, malformed
	// ones included), NoToolCallRate = NoToolCalls / NoToolPrompts.
	NoToolPrompts  int      `json:"no_tool_prompts"`
	NoToolCalls    int      `json:"no_tool_calls"`
	NoToolCallRate *float64 `json:"no_tool_call_rate"`
	// The same over the validation set's conversations that need no tool
	// (phrasings the training used, on held-out records).
	ValNoToolPrompts  int      `json:"val_no_tool_prompts"`
	ValNoToolCalls    int      `json:"val_no_tool_calls"`
	ValNoToolCallRate *float64 `json:"val_no_tool_call_rate"`

	// Slices are the test input's metrics by slice (trainingdata.Slice's
	// Key: "new_place_seen_phrasing", "no_tool_seen_phrasing"), by margin
	// ("new_place", "seen_phrasing") and over all its tool conversations
	// ("all"); absent without a test input.
	Slices map[string]*SliceReport `json:"slices,omitempty"`

	// The persona measures over the model's final answers (the tool
	// conversations' and the no-tool prompts', blank ones left out; see
	// persona): Distinct1 and Distinct2 are distinct word unigrams and
	// bigrams over their totals; of the answers' Sentences (5 words or
	// more), RepeatedSentenceShare occur more than once and
	// CopiedSentenceShare verbatim in the training sets (null without
	// the train input).
	PersonaAnswers        int      `json:"persona_answers"`
	PersonaWords          int      `json:"persona_words"`
	Distinct1             *float64 `json:"distinct_1"`
	Distinct2             *float64 `json:"distinct_2"`
	Sentences             int      `json:"sentences"`
	RepeatedSentences     int      `json:"repeated_sentences"`
	CopiedSentences       int      `json:"copied_sentences"`
	RepeatedSentenceShare *float64 `json:"repeated_sentence_share"`
	CopiedSentenceShare   *float64 `json:"copied_sentence_share"`
}

func (m *ModelReport) setNoTool(outs []Outcome) {
	m.NoToolPrompts, m.NoToolCalls, m.NoToolCallRate = attempted(outs)
}

func (m *ModelReport) setToolErrors(t toolTally) {
	m.ToolErrorPrompts, m.ToolErrorRecovered = t.prompts, t.recovered
	if t.prompts > 0 {
		m.ToolErrorRecoveryRate = num(float64(t.recovered) / float64(t.prompts))
	}
}

// SliceReport is one slice of the test input: for tool conversations the
// counts and rates of ModelReport's tool fields, for ones that need no
// tool the calls made without need.
type SliceReport struct {
	ToolPrompts        int      `json:"tool_prompts,omitempty"`
	ToolCalls          int      `json:"tool_calls,omitempty"`
	ExactArgs          int      `json:"exact_args,omitempty"`
	AnswerUsesTool     int      `json:"answer_uses_tool,omitempty"`
	ToolCallRate       *float64 `json:"tool_call_rate,omitempty"`
	ExactArgsRate      *float64 `json:"exact_args_rate,omitempty"`
	AnswerUsesToolRate *float64 `json:"answer_uses_tool_rate,omitempty"`
	NoToolPrompts      int      `json:"no_tool_prompts,omitempty"`
	NoToolCalls        int      `json:"no_tool_calls,omitempty"`
	NoToolCallRate     *float64 `json:"no_tool_call_rate,omitempty"`
}

func newSliceReport(t toolTally) *SliceReport {
	var m ModelReport
	m.setTool(t)
	return &SliceReport{ToolPrompts: m.ToolPrompts, ToolCalls: m.ToolCalls, ExactArgs: m.ExactArgs, AnswerUsesTool: m.AnswerUsesTool,
		ToolCallRate: m.ToolCallRate, ExactArgsRate: m.ExactArgsRate, AnswerUsesToolRate: m.AnswerUsesToolRate}
}

func (m *ModelReport) setValNoTool(outs []Outcome) {
	m.ValNoToolPrompts, m.ValNoToolCalls, m.ValNoToolCallRate = attempted(outs)
}

// attempted counts the outcomes that attempted a call, and their share
// (nil for none).
func attempted(outs []Outcome) (n, calls int, rate *float64) {
	for _, o := range outs {
		if o.Attempted {
			calls++
		}
	}
	if len(outs) > 0 {
		rate = num(float64(calls) / float64(len(outs)))
	}
	return len(outs), calls, rate
}

func (m *ModelReport) setPersona(st personaStats) {
	m.PersonaAnswers, m.PersonaWords = st.answers, st.words
	if st.words > 0 {
		m.Distinct1, m.Distinct2 = num(st.distinct1), num(st.distinct2)
	}
	m.Sentences, m.RepeatedSentences, m.CopiedSentences = st.sentences, st.repeated, st.copied
	if st.sentences > 0 {
		m.RepeatedSentenceShare = num(float64(st.repeated) / float64(st.sentences))
		if st.haveCorpus {
			m.CopiedSentenceShare = num(float64(st.copied) / float64(st.sentences))
		}
	}
}

func (m *ModelReport) setTool(t toolTally) {
	m.ToolPrompts, m.ToolAttempts, m.ToolCalls, m.ValidCalls = t.prompts, t.attempted, t.calls, t.valid
	m.ExactArgs, m.Answers, m.AnswerUsesTool = t.exact, t.answers, t.uses
	if t.prompts == 0 {
		return
	}
	rate := func(n int) *float64 { return num(float64(n) / float64(t.prompts)) }
	m.ToolCallRate, m.ValidCallRate = rate(t.calls), rate(t.valid)
	m.ExactArgsRate, m.AnswerUsesToolRate = rate(t.exact), rate(t.uses)
}

// Conversation is one held-out tool conversation.
type Conversation struct {
	// File is the index of the validation (or test) file, Line the record's line.
	File     int          `json:"file"`
	Line     int          `json:"line"`
	Question string       `json:"question"`
	Expected weather.Call `json:"expected"`
	// Slice is a test conversation's slice.
	Slice *trainingdata.Slice `json:"slice,omitempty"`
	// ToolError marks a conversation whose call the tool refuses (a day
	// that has passed): scored as tool_error_*, not with the others.
	ToolError bool        `json:"tool_error,omitempty"`
	Base      ToolOutcome `json:"base"`
	// Finetuned is the fine-tuned model's outcome.
	Finetuned ToolOutcome `json:"finetuned"`
}

// Example is one prompt's transcripts.
type Example struct {
	Prompt string `json:"prompt"`
	// Slice is a test conversation's slice.
	Slice     *trainingdata.Slice `json:"slice,omitempty"`
	Base      Outcome             `json:"base"`
	Finetuned Outcome             `json:"finetuned"`
}

// numParams counts a config's parameters (tied embeddings once).
func numParams(c *mlconfig.Config) int64 {
	var n int64
	for _, t := range c.Tensors() {
		p := int64(1)
		for _, d := range t.Shape {
			p *= int64(d)
		}
		n += p
	}
	return n
}

// Plot file names.
const (
	metricsPlot = "metrics.png"
	lossPlot    = "loss.png"
)

// writeReport writes report.json, the plots and report.html (with the
// training curves) into dir.
func writeReport(dir string, rep *Report, curves []curve) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, f := &rep.Models.Base, &rep.Models.Finetuned
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	metrics, err := plot.BarsPNG("Tool use on held-out conversations",
		[]string{"tool call", "valid call", "exact args", "answer uses result"},
		plot.BarGroup{Name: "base", Values: []float64{val(b.ToolCallRate), val(b.ValidCallRate), val(b.ExactArgsRate), val(b.AnswerUsesToolRate)}},
		plot.BarGroup{Name: "fine-tuned", Values: []float64{val(f.ToolCallRate), val(f.ValidCallRate), val(f.ExactArgsRate), val(f.AnswerUsesToolRate)}})
	if err != nil {
		return err
	}
	loss, err := plot.BarsPNG("Validation loss (nats per token)",
		[]string{"all", "persona (prose)", "chat (assistant turns)"},
		plot.BarGroup{Name: "base", Values: []float64{val(b.ValLoss), val(b.PersonaLoss), val(b.ChatLoss)}},
		plot.BarGroup{Name: "fine-tuned", Values: []float64{val(f.ValLoss), val(f.PersonaLoss), val(f.ChatLoss)}})
	if err != nil {
		return err
	}
	rep.Plots = []string{metricsPlot, lossPlot}
	for _, p := range []struct {
		name string
		data []byte
	}{{metricsPlot, metrics}, {lossPlot, loss}} {
		if err := os.WriteFile(filepath.Join(dir, p.name), p.data, 0o644); err != nil {
			return err
		}
	}
	rep.TrainingCurves = nil
	for _, c := range curves {
		rep.TrainingCurves = append(rep.TrainingCurves, c.Name)
	}
	if err := steps.WriteJSON(filepath.Join(dir, "report.json"), rep); err != nil {
		return err
	}
	html, err := renderHTML(rep, map[string][]byte{metricsPlot: metrics, lossPlot: loss}, curves)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.html"), html, 0o644)
}

// metricRow is one line of the HTML metrics table.
type metricRow struct {
	Name, Base, Finetuned, Doc string
}

func metricRows(rep *Report) []metricRow {
	b, f := &rep.Models.Base, &rep.Models.Finetuned
	fl := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return strconv.FormatFloat(*p, 'f', 4, 64)
	}
	pct := func(p *float64, n int) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%% (%d)", 100**p, n)
	}
	it := func(n int) string { return strconv.Itoa(n) }
	rows := []metricRow{
		{"parameters", strconv.FormatInt(b.Params, 10), strconv.FormatInt(f.Params, 10), ""},
		{"validation loss", fl(b.ValLoss), fl(f.ValLoss), "mean cross-entropy (nats) per scored token"},
		{"validation perplexity", fl(b.ValPPL), fl(f.ValPPL), "exp(validation loss)"},
		{"persona loss", fl(b.PersonaLoss), fl(f.PersonaLoss), "prose records, trained whole"},
		{"chat loss", fl(b.ChatLoss), fl(f.ChatLoss), "conversations, assistant tokens only"},
		{"scored records", it(b.ValRecords), it(f.ValRecords), "prose + conversations"},
		{"scored tokens", it(b.ValTokens), it(f.ValTokens), ""},
		{"tool call rate", pct(b.ToolCallRate, b.ToolCalls), pct(f.ToolCallRate, f.ToolCalls), "a call was parsed from the first turn"},
		{"valid call rate", pct(b.ValidCallRate, b.ValidCalls), pct(f.ValidCallRate, f.ValidCalls), "parsed and valid, so it was executed"},
		{"exact argument rate", pct(b.ExactArgsRate, b.ExactArgs), pct(f.ExactArgsRate, f.ExactArgs), "valid and matching the expected location and date"},
		{"answer uses tool result", pct(b.AnswerUsesToolRate, b.AnswerUsesTool), pct(f.AnswerUsesToolRate, f.AnswerUsesTool), "the answer names the place asked about, the returned temperature with its unit and the condition, and no other place or temperature"},
		{"tool errors recovered from", pct(b.ToolErrorRecoveryRate, b.ToolErrorRecovered), pct(f.ToolErrorRecoveryRate, f.ToolErrorRecovered), fmt.Sprintf("of the %d held-out questions about a day that has passed: the call made as asked, then an answer to the tool's error that names the place asked about and no other, with no call and no temperature", f.ToolErrorPrompts)},
		{"tool called without need", pct(b.NoToolCallRate, b.NoToolCalls), pct(f.NoToolCallRate, f.NoToolCalls), "of the questions that need no weather (rewrites, jokes, chit-chat, Twain; no_tool_prompts, phrasings not trained on), answered with a tool call (malformed ones included)"},
		{"… on held-out conversations", pct(b.ValNoToolCallRate, b.ValNoToolCalls), pct(f.ValNoToolCallRate, f.ValNoToolCalls), fmt.Sprintf("the same over the %d validation conversations that need no tool (the training's phrasings)", f.ValNoToolPrompts)},
		{"distinct-1 / distinct-2", distinct(b), distinct(f), "distinct words and word pairs over all, in the final answers"},
		{"repeated sentences", pct(b.RepeatedSentenceShare, b.RepeatedSentences), pct(f.RepeatedSentenceShare, f.RepeatedSentences), "answer sentences of 5+ words said more than once"},
		{"sentences copied from training", pct(b.CopiedSentenceShare, b.CopiedSentences), pct(f.CopiedSentenceShare, f.CopiedSentences), "answer sentences of 5+ words found verbatim in the training sets"},
	}
	for _, k := range sliceOrder {
		bs, fs := b.Slices[k], f.Slices[k]
		if bs == nil && fs == nil {
			continue
		}
		rows = append(rows, metricRow{"test: " + sliceNames[k], sliceCell(bs), sliceCell(fs), sliceNotes[k]})
	}
	return rows
}

// sliceOrder is the order report.html lists the test slices in; sliceNames
// and sliceNotes say what each is.
var sliceOrder = []string{"seen_place_seen_phrasing", "seen_place_new_phrasing", "new_place_seen_phrasing", "new_place_new_phrasing",
	"seen_place", "new_place", "seen_phrasing", "new_phrasing", "all", "no_tool_seen_phrasing"}

var sliceNames = map[string]string{
	"seen_place_seen_phrasing": "seen place, seen phrasing", "seen_place_new_phrasing": "seen place, new phrasing",
	"new_place_seen_phrasing": "new place, seen phrasing", "new_place_new_phrasing": "new place, new phrasing",
	"seen_place": "seen places", "new_place": "places never seen", "seen_phrasing": "seen phrasings", "new_phrasing": "phrasings never seen",
	"all": "all test conversations", "no_tool_seen_phrasing": "tool called without need",
}

var sliceNotes = map[string]string{
	"seen_place":            "places the tool lists, which training asks about",
	"new_place":             "places no training set names",
	"new_phrasing":          "question templates kept out of training",
	"all":                   "tool called / exact arguments / answer uses the result, over the test set's tool conversations",
	"no_tool_seen_phrasing": "the test set's questions that need no tool, answered with a tool call",
}

// sliceCell writes a slice's rates: for tool conversations the calls,
// exact arguments and answers that use the result, for ones that need no
// tool the calls made without need.
func sliceCell(s *SliceReport) string {
	switch {
	case s == nil:
		return "n/a"
	case s.NoToolPrompts > 0:
		return fmt.Sprintf("%.1f%% of %d", 100**s.NoToolCallRate, s.NoToolPrompts)
	case s.ToolPrompts == 0:
		return "n/a"
	}
	return fmt.Sprintf("call %.0f%% · exact %.0f%% · uses %.0f%% (of %d)", 100**s.ToolCallRate, 100**s.ExactArgsRate, 100**s.AnswerUsesToolRate, s.ToolPrompts)
}

func distinct(m *ModelReport) string {
	if m.Distinct1 == nil || m.Distinct2 == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.3f / %.3f (%d words)", *m.Distinct1, *m.Distinct2, m.PersonaWords)
}

// failure is a fine-tuned model's miss shown verbatim in report.html.
type failure struct {
	What     string
	Question string
	Outcome  Outcome
}

// maxFailures is how many failures of each kind report.html shows.
const maxFailures = 3

// failures picks the fine-tuned model's first misses of each kind: a
// wrong or missing call, an answer that does not use the result, and a
// tool call where none was needed.
func failures(rep *Report) []failure {
	var calls, answers, noTool []failure
	for _, c := range rep.Conversations {
		o := c.Finetuned
		switch {
		case !o.ExactArgs && len(calls) < maxFailures:
			why := callText(o)
			if o.Mismatch != "" {
				why += " (" + o.Mismatch + ")"
			}
			calls = append(calls, failure{What: "call: expected " + weather.FormatExpr(c.Expected) + ", got " + why, Question: c.Question, Outcome: o.Outcome})
		case o.ExactArgs && !o.UsesResult && len(answers) < maxFailures:
			answers = append(answers, failure{What: "answer: " + o.Evidence, Question: c.Question, Outcome: o.Outcome})
		}
	}
	for _, e := range rep.NoTool {
		if e.Finetuned.Attempted && len(noTool) < maxFailures {
			noTool = append(noTool, failure{What: "a tool call where none was needed", Question: e.Prompt, Outcome: e.Finetuned})
		}
	}
	return append(append(calls, answers...), noTool...)
}

// callText describes what a model did with a held-out conversation.
func callText(o ToolOutcome) string {
	switch {
	case o.Call != nil && o.InvalidReason != "":
		return weather.FormatExpr(*o.Call) + " — invalid: " + o.InvalidReason
	case o.Call != nil:
		return weather.FormatExpr(*o.Call)
	case o.ParseError != "":
		return "malformed call: " + o.ParseError
	default:
		return "no call"
	}
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

var reportTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"callText": callText,
		"expr":     weather.FormatExpr,
		"mark":     mark,
		"inc":      func(i int) int { return i + 1 },
	}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mlbuild eval: base vs fine-tuned</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0.2em 0; font-size: 0.9em; }
.role { font-weight: bold; color: #555; font-size: 0.85em; }
.stop { color: #888; font-size: 0.8em; }
.ok { color: #1a7f37; } .bad { color: #b42318; }
.doc { color: #666; font-size: 0.9em; }
img { max-width: 100%; }
</style>
</head>
<body>
<h1>Evaluation: base vs fine-tuned</h1>
<p>{{.Rep.ValidationRecords}} validation records, {{.Rep.ToolPrompts}} held-out tool conversations, {{len .Rep.NoTool}} questions that need no tool, {{len .Rep.Examples}} prompts; greedy decoding, at most {{.Rep.MaxNewTokens}} new tokens per turn.</p>

<h2>Metrics</h2>
<table>
<tr><th>metric</th><th>base</th><th>fine-tuned</th><th>meaning</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="num">{{.Base}}</td><td class="num">{{.Finetuned}}</td><td class="doc">{{.Doc}}</td></tr>
{{end}}</table>
{{range .Plots}}<p><img src="{{.URI}}" alt="{{.Name}}"></p>
{{end}}
{{if .Curves}}<h2>Training</h2>
{{range .Curves}}<p>{{.Name}}<br><img src="{{.URI}}" alt="loss curves of {{.Name}}"></p>
{{end}}{{end}}
<h2>Failures of the fine-tuned model</h2>
{{if .Failures}}<table>
<tr><th>what</th><th>question</th><th>transcript</th></tr>
{{range .Failures}}<tr><td>{{.What}}</td><td><pre>{{.Question}}</pre></td><td>{{template "transcript" .Outcome}}</td></tr>
{{end}}</table>{{else}}<p>None among the conversations and prompts run.</p>{{end}}

<h2>Prompts</h2>
<table>
<tr><th>prompt</th><th>base</th><th>fine-tuned</th></tr>
{{range .Rep.Examples}}<tr><td><pre>{{.Prompt}}</pre></td><td>{{template "transcript" .Base}}</td><td>{{template "transcript" .Finetuned}}</td></tr>
{{end}}</table>

<h2>Questions that need no tool</h2>
<table>
<tr><th>prompt</th><th>base</th><th>fine-tuned</th></tr>
{{range .Rep.NoTool}}<tr><td><pre>{{.Prompt}}</pre></td><td>{{template "transcript" .Base}}</td><td>{{template "transcript" .Finetuned}}</td></tr>
{{end}}</table>

<h2>Held-out tool conversations</h2>
<table>
<tr><th>#</th><th>question</th><th>expected call</th><th>base</th><th>fine-tuned</th></tr>
{{range $i, $c := .Rep.Conversations}}<tr><td>{{inc $i}}<br><span class="doc">file {{$c.File}}, line {{$c.Line}}</span></td><td>{{$c.Question}}</td><td><code>{{expr $c.Expected}}</code></td><td>{{template "tool" $c.Base}}</td><td>{{template "tool" $c.Finetuned}}</td></tr>
{{end}}</table>
</body>
</html>
{{define "transcript"}}{{range .Transcript}}<div><span class="role">{{.Role}}</span>{{if .Stop}} <span class="stop">(stop: {{.Stop}})</span>{{end}}<pre>{{.Content}}</pre></div>{{end}}{{end}}
{{define "tool"}}<code>{{callText .}}</code><br>
exact arguments: <span class="{{if .ExactArgs}}ok{{else}}bad{{end}}">{{mark .ExactArgs}}</span>{{if .Mismatch}} <span class="doc">({{.Mismatch}})</span>{{end}}<br>
answer uses result: <span class="{{if .UsesResult}}ok{{else}}bad{{end}}">{{mark .UsesResult}}</span>{{if .Evidence}} <span class="doc">({{.Evidence}})</span>{{end}}
<details><summary>transcript</summary>{{template "transcript" .Outcome}}</details>{{end}}
`))
})

// renderHTML renders report.html with the plots and training curves
// embedded as data URIs.
func renderHTML(rep *Report, pngs map[string][]byte, curves []curve) ([]byte, error) {
	type plotRef struct {
		Name string
		URI  template.URL
	}
	uri := func(png []byte) template.URL {
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	}
	var plots, curveRefs []plotRef
	for _, name := range rep.Plots {
		plots = append(plots, plotRef{Name: name, URI: uri(pngs[name])})
	}
	for _, c := range curves {
		curveRefs = append(curveRefs, plotRef{Name: c.Name, URI: uri(c.PNG)})
	}
	var buf bytes.Buffer
	err := reportTemplate().Execute(&buf, struct {
		Rep      *Report
		Rows     []metricRow
		Plots    []plotRef
		Curves   []plotRef
		Failures []failure
	}{rep, metricRows(rep), plots, curveRefs, failures(rep)})
	if err != nil {
		return nil, fmt.Errorf("render report.html: %w", err)
	}
	return buf.Bytes(), nil
}
