// Package eval implements the eval step kind: it compares a base model and
// its fine-tuned version side by side on a validation set and writes a
// report (report.json, a self-contained report.html and PNG charts).
//
// For each model, with the model directory's own tokenizer:
//
//   - Validation loss and perplexity: every validation record is encoded
//     with trainingdata (conversations masked to the assistant's tokens,
//     prose trained whole), run through the model with a fresh cache, and
//     scored by the cross-entropy of the labels shifted by one; val_loss is
//     the mean over every scored token of the set, val_ppl = exp(val_loss);
//     persona_loss and chat_loss are the same mean over the prose records
//     and over the conversations.
//   - Tool use: each held-out tool conversation (a validation record whose
//     "call" names a location) is replayed from its system and user
//     messages with greedy decoding; the first assistant turn is parsed
//     with weather.Parse, scored against the conversation's call with
//     weather.CompareArgs, executed when valid, and the model's answer to
//     the result is checked strictly: it must name the place asked about,
//     the returned temperature with its unit and the condition, and no
//     other place or temperature (see usesResult).
//   - Questions that need no tool (no_tool_prompts: rewrites, jokes,
//     chit-chat, questions about Twain) are run through the same tool loop;
//     a first turn with "<tool_call>" in it counts against the model.
//   - Persona: distinct-1/2 over the final answers, the share of their
//     sentences said more than once, and, given the training sets, the
//     share found verbatim in them (see persona).
//   - The prompts (persona, joke, tool and combined by default) are run
//     through the same tool loop, with the tool conversations' system prompt,
//     and their transcripts recorded.
//
// The output depends only on the inputs' contents and the config: no
// timestamps, no file names (validation files are numbered in input
// order), no map-order effects; the CPU backend's results do not depend on
// the thread count.
package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/device"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// twainbot is the chat format of the conversations eval scores and prompts with.
var twainbot = sync.OnceValue(chat.TwainBot)

func init() { steps.Register(Kind{}) }

// Kind is the eval step kind.
type Kind struct{}

// Version is the implementation version; bump it whenever the output for
// the same inputs and config can change (scoring, prompts, report layout,
// and changes to the model code, tokenizer, trainingdata or weather; 8:
// the charts drawn by ml/plot's own renderer).
const Version = "8"

// DefaultPrompts are the seed's four prompts: a persona rewrite, a joke, a
// tool question and a question that needs the tool and advice.
var DefaultPrompts = []string{
	"Rewrite in Mark Twain's voice: The meeting has been moved to Thursday.",
	"Tell me a joke about bureaucracy.",
	"What's the weather in London this weekend?",
	"Do I need a coat in New York on Tuesday?",
}

// DefaultNoToolPrompts are questions that need no weather: rewrites in
// the persona, jokes, chit-chat and questions about Twain and his books.
// A model that calls the tool for them has learned to call it always;
// their answers are also what the persona measures (distinct-n, sentences
// repeated or copied from training) are computed on.
var DefaultNoToolPrompts = []string{
	"Rewrite in Mark Twain's voice: The quarterly report is due on Friday.",
	"Rewrite in Mark Twain's voice: Our new app makes grocery shopping effortless.",
	"Rewrite in Mark Twain's voice: The city council approved the budget after a long debate.",
	"Rewrite this like Mark Twain would: Please remember to silence your phones.",
	"Tell me a joke about lawyers.",
	"Tell me a joke about trains.",
	"Make a joke about committees.",
	"Say something funny about cats.",
	"How are you today?",
	"What do you like to read?",
	"Good morning! Any advice for a Monday?",
	"Thank you for your help.",
	"Who wrote The Adventures of Tom Sawyer?",
	"What did Mark Twain do on the Mississippi?",
	"Tell me about Huckleberry Finn.",
	"What is your opinion of politicians?",
}

// Limits of the attributes.
const (
	maxNewTokensLimit = 8192
)

// Model keys in the report, in report order.
const (
	ModelBase      = "base"
	ModelFinetuned = "finetuned"
)

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	list := func(ss []string) cty.Value {
		vs := make([]cty.Value, len(ss))
		for i, p := range ss {
			vs[i] = cty.StringVal(p)
		}
		return cty.ListVal(vs)
	}
	return steps.Schema{
		Kind:    "eval",
		Version: Version,
		Doc: "Evaluates a base model and its fine-tuned version side by side: validation loss and " +
			"perplexity (overall, on prose and on conversations), tool use on the held-out tool " +
			"conversations (call rate, valid calls, exact arguments, answers that use the executed " +
			"tool's result) and generations for a few prompts, written as report.json, a " +
			"self-contained report.html and PNG charts.",
		Heavy: true,
		Attributes: []steps.Attribute{
			{Name: "base", Type: cty.String, Input: true, Required: true,
				Doc: "The base model: a Hugging Face directory (config.json, model.safetensors, tokenizer.json) or a llama-architecture .gguf file. Each model is prompted in the chat template its tokenizer_config.json names (TwainBot's when none that mlbuild knows)."},
			{Name: "model", Type: cty.String, Input: true, Required: true,
				Doc: "The fine-tuned model directory (for example merge's output), with its own tokenizer.json."},
			{Name: "validation", Type: cty.List(cty.String), Input: true, Required: true,
				Doc: "JSONL validation sets (for example split's validation.jsonl): records with a \"text\"; synth_tools records also hold \"messages\" and \"call\"."},
			{Name: "test", Type: cty.List(cty.String), Input: true, Default: cty.ListValEmpty(cty.String),
				Doc: "JSONL test sets (synth_tools with set = \"test\"), optional: their conversations, tagged with whether their place and their phrasing were seen in training, " +
					"are replayed as the held-out ones are and reported by slice (models.NAME.slices: seen_place_seen_phrasing, new_place_new_phrasing and the rest, and the margins seen_place, new_place, seen_phrasing, new_phrasing)."},
			{Name: "max_new_tokens", Type: cty.Number, Default: cty.NumberIntVal(96),
				Doc: fmt.Sprintf("Most tokens per generated turn (1 to %d).", maxNewTokensLimit)},
			{Name: "max_tool_prompts", Type: cty.Number, Default: cty.NumberIntVal(0),
				Doc: "Most held-out tool conversations to replay, the first ones in input order; 0 for all."},
			{Name: "prompts", Type: cty.List(cty.String), Default: list(DefaultPrompts),
				Doc: "User prompts to generate for, each with the system prompt of the held-out tool conversations (the weather tool's default when there are none), so a tool call can happen; [] for none."},
			{Name: "no_tool_prompts", Type: cty.List(cty.String), Default: list(DefaultNoToolPrompts),
				Doc: "Questions that need no tool (rewrites, jokes, chit-chat, questions about Twain), asked as prompts are: the share a model answers with a tool call is no_tool_call_rate, and their answers, with the tool conversations', are what the persona measures are computed on; [] for none."},
			{Name: "train", Type: cty.List(cty.String), Input: true, Default: cty.ListValEmpty(cty.String),
				Doc: "The JSONL training sets (split.NAME.train), optional: copied_sentence_share is the share of the models' answer sentences (of 5 words or more) found verbatim in them; null without them."},
			{Name: "training_curves", Type: cty.List(cty.String), Input: true, Default: cty.ListValEmpty(cty.String),
				Doc: "Folders with a training run's loss.png (qlora_train.NAME.curves, pretrain.NAME.curves), optional: report.html shows them."},
			{Name: "threads", Type: cty.Number, Default: cty.NumberIntVal(0), NotInKey: true,
				Doc: "CPU threads; 0 for all cores. Results do not depend on it."},
			device.Attribute(),
		},
		Outputs: []steps.Output{
			{Name: "report", Path: "report", Dir: true,
				Doc: "report.json (metrics, per-conversation tool results, transcripts), report.html (self-contained) and the charts metrics.png and loss.png.", Announce: "report.html",
				Headline: &steps.Headline{File: "report.json",
					Columns: []steps.HeadlineColumn{{Title: "base", Path: "models." + ModelBase}, {Title: "fine-tuned", Path: "models." + ModelFinetuned}},
					Metrics: []steps.HeadlineMetric{
						{Name: "tool called when needed", Path: "tool_call_rate", Percent: true},
						{Name: "tool called without need", Path: "no_tool_call_rate", Percent: true},
						{Name: "exact tool arguments", Path: "exact_args_rate", Percent: true},
						{Name: "valid tool calls", Path: "valid_call_rate", Percent: true},
						{Name: "answers using the tool", Path: "answer_uses_tool_rate", Percent: true},
						{Name: "test: exact arguments, seen places", Path: "slices.seen_place.exact_args_rate", Percent: true, Optional: true},
						{Name: "test: exact arguments, places never seen", Path: "slices.new_place.exact_args_rate", Percent: true, Optional: true},
						{Name: "test: exact arguments, phrasings never seen", Path: "slices.new_phrasing.exact_args_rate", Percent: true, Optional: true},
						{Name: "test: answers using the tool", Path: "slices.all.answer_uses_tool_rate", Percent: true, Optional: true},
						{Name: "persona loss", Path: "persona_loss", Format: "%.2f"},
						{Name: "validation loss", Path: "val_loss", Format: "%.2f"},
					}}},
		},
	}
}

// config is an eval step's attributes, as steps.Decode reads them.
type config struct {
	MaxNewTokens   int      `attr:"max_new_tokens"`
	MaxToolPrompts int      `attr:"max_tool_prompts"`
	Prompts        []string `attr:"prompts"`
	NoToolPrompts  []string `attr:"no_tool_prompts"`
	Threads        int      `attr:"threads"`
	Device         string   `attr:"device"`
}

// readConfig decodes and checks the non-input attributes, in the schema's
// order; errors are *steps.AttrError naming the attribute at fault.
func readConfig(inv *steps.Invocation) (config, error) {
	var c config
	if err := inv.Decode(&c); err != nil {
		return c, err
	}
	if c.MaxNewTokens < 1 || c.MaxNewTokens > maxNewTokensLimit {
		return c, &steps.AttrError{Attr: "max_new_tokens", Msg: fmt.Sprintf("must be between 1 and %d, got %d", maxNewTokensLimit, c.MaxNewTokens)}
	}
	if c.MaxToolPrompts < 0 || c.MaxToolPrompts > math.MaxInt32 {
		return c, &steps.AttrError{Attr: "max_tool_prompts", Msg: fmt.Sprintf("must be 0 (all) or a positive number of conversations, got %d", c.MaxToolPrompts)}
	}
	for _, a := range []struct {
		attr string
		ps   []string
	}{{"prompts", c.Prompts}, {"no_tool_prompts", c.NoToolPrompts}} {
		attr := a.attr
		for i, p := range a.ps {
			if strings.TrimSpace(p) == "" {
				return c, &steps.AttrError{Attr: attr, Msg: fmt.Sprintf("prompt %d is empty", i+1)}
			}
			if !utf8.ValidString(p) {
				return c, &steps.AttrError{Attr: attr, Msg: fmt.Sprintf("prompt %d is not valid UTF-8", i+1)}
			}
		}
	}
	if c.Threads < 0 || c.Threads > 4096 {
		return c, &steps.AttrError{Attr: "threads", Msg: fmt.Sprintf("must be 0 (all cores) or a number of threads up to 4096, got %d", c.Threads)}
	}
	if err := device.Validate(c.Device); err != nil {
		return c, err
	}
	return c, nil
}

// Validate implements steps.Validator: config errors are reported when
// the pipeline is loaded.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := readConfig(inv)
	return err
}

// valRecord is one validation record.
type valRecord struct {
	rec  trainingdata.Record
	file int // index into the validation inputs
	line int
	// where is "name:line", for messages.
	where string
}

// toolConv is a held-out tool conversation: the prompt (messages before
// the first assistant message) and the call the conversation makes.
type toolConv struct {
	src      *valRecord
	prompt   []chat.Message
	question string
	expected weather.Call
	// failing: the expected call asks about a day that has passed, which
	// the tool refuses (synth_tools' error_fraction); scored apart.
	failing bool
}

// readValidation reads every record of the validation files (what is
// "validation") or the test files ("test"). A bad line gives one sentence
// naming the file (as the pipeline names it) and line.
func readValidation(step, what string, files []steps.InputFile) ([]valRecord, []FileReport, error) {
	var recs []valRecord
	var reps []FileReport
	for fi, f := range files {
		name := f.Name
		if name == "" {
			name = f.Path
		}
		fr := FileReport{Digest: f.Digest}
		var lineErr error
		err := steps.ReadJSONL(f.Path, func(line int, raw []byte) error {
			raw = bytes.TrimSpace(raw)
			if line == 1 {
				raw = bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("\ufeff")))
				if len(raw) == 0 {
					return nil
				}
			}
			fail := func(format string, args ...any) error {
				lineErr = fmt.Errorf("%s: %s file %s, line %d: %s", step, what, name, line, fmt.Sprintf(format, args...))
				return lineErr
			}
			if !utf8.Valid(raw) {
				return fail("the line is not valid UTF-8")
			}
			if raw[0] != '{' {
				return fail("expected a JSON object with a \"text\" field")
			}
			var rec trainingdata.Record
			if err := json.Unmarshal(raw, &rec); err != nil {
				var se *json.SyntaxError
				if errors.As(err, &se) {
					return fail("invalid JSON at column %d (%v)", se.Offset, err)
				}
				return fail("the record does not have the shape {\"text\": string, \"messages\": [...], \"call\": {...}} (%v)", err)
			}
			if strings.TrimSpace(rec.Text) == "" {
				return fail("the record has no \"text\" (every line needs a non-empty \"text\" field)")
			}
			recs = append(recs, valRecord{rec: rec, file: fi, line: line, where: fmt.Sprintf("%s:%d", name, line)})
			fr.Records++
			return nil
		})
		if lineErr != nil {
			return nil, nil, lineErr
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: cannot read %s file %s: %v", step, what, name, unwrapPath(err, f.Path, name))
		}
		reps = append(reps, fr)
	}
	if len(recs) == 0 && len(files) > 0 {
		return nil, nil, fmt.Errorf("%s: the %s files hold no records", step, what)
	}
	return recs, reps, nil
}

// unwrapPath rewrites the absolute path in an I/O error as the pipeline's
// name for the file.
func unwrapPath(err error, path, name string) string {
	return strings.ReplaceAll(err.Error(), path, name)
}

// toolConversations picks the held-out tool conversations: records whose
// call names a location and whose messages (or, without messages, whose
// text parsed as a conversation) have a user message before the first
// assistant message. At most limit (0: all), in input order.
func toolConversations(recs []valRecord, limit int) []toolConv {
	var out []toolConv
	for i := range recs {
		r := &recs[i]
		if r.rec.Call.Location == "" {
			continue
		}
		msgs := r.rec.Messages
		if len(msgs) == 0 {
			var err error
			if msgs, err = twainbot().Parse(r.rec.Text); err != nil {
				continue
			}
		}
		var prompt []chat.Message
		question := ""
		for _, m := range msgs {
			if m.Role == chat.RoleAssistant {
				break
			}
			prompt = append(prompt, m)
			if m.Role == chat.RoleUser {
				question = m.Content
			}
		}
		if question == "" || len(prompt) == len(msgs) {
			continue
		}
		out = append(out, toolConv{src: r, prompt: prompt, question: question,
			expected: weather.NewCall(r.rec.Call.Location, r.rec.Call.Date),
			failing:  weather.IsPastDate(weather.CanonicalDate(r.rec.Call.Date))})
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// noToolQuestions picks the questions of the held-out conversations that
// need no tool (synth_tools' no_tool_fraction): records that make no call
// and whose messages (or text parsed as a conversation) are a user's
// question answered by the assistant with no tool message. At most limit
// (0: all), in input order. They are asked as prompts are (examplePrompt):
// the training's phrasings, where no_tool_prompts are new ones.
func noToolQuestions(recs []valRecord, limit int) []string {
	var out []string
	for i := range recs {
		r := &recs[i]
		if r.rec.Call.Location != "" {
			continue
		}
		msgs := r.rec.Messages
		if len(msgs) == 0 {
			if !strings.HasPrefix(r.rec.Text, "<|") {
				continue // prose
			}
			var err error
			if msgs, err = twainbot().Parse(r.rec.Text); err != nil {
				continue
			}
		}
		question, answered := "", false
		for _, m := range msgs {
			if m.Role == chat.RoleTool {
				answered = false
				break
			}
			if m.Role == chat.RoleUser && question == "" {
				question = m.Content
			}
			if m.Role == chat.RoleAssistant && question != "" {
				answered = true
			}
		}
		if !answered {
			continue
		}
		out = append(out, question)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// testNoToolConversations picks a test set's conversations that need no
// tool (a slice and no call), as toolConvs with their question and prompt.
func testNoToolConversations(recs []valRecord) []toolConv {
	var out []toolConv
	for i := range recs {
		r := &recs[i]
		if r.rec.Slice == nil || r.rec.Call.Location != "" {
			continue
		}
		if qs := noToolQuestions(recs[i:i+1], 0); len(qs) == 1 {
			out = append(out, toolConv{src: r, question: qs[0]})
		}
	}
	return out
}

// runTest replays the test sets' conversations for one model (key) and
// records the outcomes in rep and the per-slice metrics in mr.
func runTest(ctx context.Context, gen generateFunc, rep *Report, key string, mr *ModelReport, convs, noTool []toolConv, step func(string)) error {
	if len(convs)+len(noTool) == 0 {
		return nil
	}
	tallies := map[string]*toolTally{}
	add := func(k string, o ToolOutcome) {
		if tallies[k] == nil {
			tallies[k] = &toolTally{}
		}
		tallies[k].add(o)
	}
	toolOuts := make([]ToolOutcome, len(convs))
	err := eachParallel(ctx, len(convs), func(i int) error {
		o, err := scoreConversation(ctx, gen, convs[i])
		if err != nil {
			return fmt.Errorf("test conversation %s: %w", convs[i].src.where, err)
		}
		toolOuts[i] = o
		return nil
	}, func(done int) { step(fmt.Sprintf("tool conversation %d/%d", done, len(convs))) })
	if err != nil {
		return err
	}
	for i, c := range convs {
		o := toolOuts[i]
		if key == ModelBase {
			rep.TestConversations[i].Base = o
		} else {
			rep.TestConversations[i].Finetuned = o
		}
		if sl := c.src.rec.Slice; sl != nil {
			add(sl.Key(), o)
			add(sl.Place+"_place", o)
			add(sl.Phrasing+"_phrasing", o)
		}
		add("all", o)
	}
	questions := make([]string, len(noTool))
	for i, c := range noTool {
		questions[i] = c.question
	}
	outs, err := runPrompts(ctx, gen, convs, questions, step)
	if err != nil {
		return fmt.Errorf("test conversations that need no tool: %w", err)
	}
	mr.Slices = map[string]*SliceReport{}
	for k, t := range tallies {
		mr.Slices[k] = newSliceReport(*t)
	}
	byKey := map[string][]Outcome{}
	for i, o := range outs {
		if key == ModelBase {
			rep.TestNoTool[i].Base = o
		} else {
			rep.TestNoTool[i].Finetuned = o
		}
		k := noTool[i].src.rec.Slice.Key()
		byKey[k] = append(byKey[k], o)
	}
	for k, os := range byKey {
		sr := &SliceReport{}
		sr.NoToolPrompts, sr.NoToolCalls, sr.NoToolCallRate = attempted(os)
		mr.Slices[k] = sr
	}
	return nil
}

// examplePrompt is the conversation a prompt is generated for: the system
// prompt the held-out tool conversations use (the one the model was trained
// with; none when they have none), or the weather tool's default when there
// are no held-out conversations, then the prompt as the user's message.
func examplePrompt(p string, convs []toolConv) []chat.Message {
	var msgs []chat.Message
	switch {
	case len(convs) == 0 || len(convs[0].prompt) == 0:
		msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: weather.SystemPrompt()})
	case convs[0].prompt[0].Role == chat.RoleSystem:
		msgs = append(msgs, convs[0].prompt[0])
	}
	return append(msgs, chat.Message{Role: chat.RoleUser, Content: p})
}

// progress counts units of work (records scored, generations run) for the
// engine's progress display.
type progress struct {
	inv         *steps.Invocation
	done, total float64
}

func (p *progress) step(msg string) {
	p.done++
	p.inv.ReportProgress(p.done, p.total, msg)
}

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	cfg, err := readConfig(inv)
	if err != nil {
		return err // an *steps.AttrError: the engine names the step and points at the attribute
	}
	var models [2]steps.InputFile
	for i, attr := range []string{"base", "model"} {
		in := inv.Inputs[attr]
		if len(in) != 1 {
			return fmt.Errorf("%s: %s must name one model directory", inv.Step, attr)
		}
		models[i] = in[0]
	}
	vals := inv.Inputs["validation"]
	if len(vals) == 0 {
		return fmt.Errorf("%s: validation is empty: list at least one JSONL file", inv.Step)
	}
	recs, files, err := readValidation(inv.Step, "validation", vals)
	if err != nil {
		return err
	}
	convs := toolConversations(recs, cfg.MaxToolPrompts)
	valNoTool := noToolQuestions(recs, cfg.MaxToolPrompts)
	testRecs, testFiles, err := readValidation(inv.Step, "test", inv.Inputs["test"])
	if err != nil {
		return err
	}
	testConvs, testNoTool := toolConversations(testRecs, 0), testNoToolConversations(testRecs)

	corpus, err := readCorpus(inv.Step, inv.Inputs["train"])
	if err != nil {
		return err
	}
	curves, err := readCurves(inv.Step, inv.Inputs["training_curves"])
	if err != nil {
		return err
	}

	rep := &Report{
		ValidationFiles: files, ValidationRecords: len(recs), ToolPrompts: len(convs),
		MaxNewTokens:  cfg.MaxNewTokens,
		Conversations: make([]Conversation, len(convs)), Examples: make([]Example, len(cfg.Prompts)),
		NoTool: make([]Example, len(cfg.NoToolPrompts)), ValNoTool: make([]Example, len(valNoTool)),
		TestFiles: testFiles, TestConversations: make([]Conversation, len(testConvs)), TestNoTool: make([]Example, len(testNoTool)),
	}
	for i, c := range testConvs {
		rep.TestConversations[i] = Conversation{File: c.src.file, Line: c.src.line, Question: c.question, Expected: c.expected, Slice: c.src.rec.Slice}
	}
	for i, c := range testNoTool {
		rep.TestNoTool[i] = Example{Prompt: c.question, Slice: c.src.rec.Slice}
	}
	for i, c := range convs {
		rep.Conversations[i] = Conversation{File: c.src.file, Line: c.src.line, Question: c.question, Expected: c.expected, ToolError: c.failing}
	}
	for i, p := range cfg.Prompts {
		rep.Examples[i] = Example{Prompt: p}
	}
	for i, p := range cfg.NoToolPrompts {
		rep.NoTool[i] = Example{Prompt: p}
	}
	for i, p := range valNoTool {
		rep.ValNoTool[i] = Example{Prompt: p}
	}
	prog := &progress{inv: inv, total: float64(2 * (len(recs) + len(convs) + len(cfg.Prompts) + len(cfg.NoToolPrompts) + len(valNoTool) + len(testConvs) + len(testNoTool)))}
	be, err := device.Open(inv, cfg.Device, cfg.Threads)
	if err != nil {
		return err
	}
	for mi, key := range []string{ModelBase, ModelFinetuned} {
		l, err := loadLM(models[mi], be)
		if err != nil {
			return fmt.Errorf("%s: %w", inv.Step, err)
		}
		mr := &rep.Models.Base
		if key == ModelFinetuned {
			mr = &rep.Models.Finetuned
		}
		mr.Digest = models[mi].Digest
		mr.Params = numParams(l.m.Config)
		if err := validationLoss(ctx, l, recs, mr, prog, key); err != nil {
			return fmt.Errorf("%s: %s model: %w", inv.Step, key, err)
		}
		gen := l.generator(cfg.MaxNewTokens)
		outs, exs, err := runGenerations(ctx, gen, convs, cfg.Prompts, func(msg string) { prog.step(key + ": " + msg) })
		if err != nil {
			return fmt.Errorf("%s: %s model: %w", inv.Step, key, err)
		}
		var tally, failing toolTally
		for i, o := range outs {
			if convs[i].failing {
				failing.add(o)
			} else {
				tally.add(o)
			}
			if key == ModelBase {
				rep.Conversations[i].Base = o
			} else {
				rep.Conversations[i].Finetuned = o
			}
		}
		mr.setTool(tally)
		mr.setToolErrors(failing)
		for i, o := range exs {
			if key == ModelBase {
				rep.Examples[i].Base = o
			} else {
				rep.Examples[i].Finetuned = o
			}
		}
		noTool, err := runPrompts(ctx, gen, convs, cfg.NoToolPrompts, func(msg string) { prog.step(key + ": no-tool " + msg) })
		if err != nil {
			return fmt.Errorf("%s: %s model: no-tool prompts: %w", inv.Step, key, err)
		}
		answers := make([]string, 0, len(outs)+len(noTool))
		for _, o := range outs {
			answers = append(answers, o.Answer)
		}
		for i, o := range noTool {
			if key == ModelBase {
				rep.NoTool[i].Base = o
			} else {
				rep.NoTool[i].Finetuned = o
			}
			answers = append(answers, o.Answer)
		}
		mr.setNoTool(noTool)
		valOuts, err := runPrompts(ctx, gen, convs, valNoTool, func(msg string) { prog.step(key + ": held-out no-tool " + msg) })
		if err != nil {
			return fmt.Errorf("%s: %s model: held-out no-tool conversations: %w", inv.Step, key, err)
		}
		for i, o := range valOuts {
			if key == ModelBase {
				rep.ValNoTool[i].Base = o
			} else {
				rep.ValNoTool[i].Finetuned = o
			}
		}
		mr.setValNoTool(valOuts)
		if err := runTest(ctx, gen, rep, key, mr, testConvs, testNoTool, func(msg string) { prog.step(key + ": test " + msg) }); err != nil {
			return fmt.Errorf("%s: %s model: %w", inv.Step, key, err)
		}
		mr.setPersona(persona(answers, corpus))
		inv.Logger().Info("eval", "model", key, "val_loss", fmtPtr(mr.ValLoss), "tool_call_rate", fmtPtr(mr.ToolCallRate),
			"exact_args_rate", fmtPtr(mr.ExactArgsRate))
	}
	return writeReport(filepath.Join(inv.OutDir, "report"), rep, curves)
}

// runGenerations runs the tool loop on every held-out conversation and
// every prompt, checking ctx between generations; step is called after
// each.
func runGenerations(ctx context.Context, gen generateFunc, convs []toolConv, prompts []string, step func(string)) ([]ToolOutcome, []Outcome, error) {
	outs := make([]ToolOutcome, len(convs))
	err := eachParallel(ctx, len(convs), func(i int) error {
		o, err := scoreConversation(ctx, gen, convs[i])
		if err != nil {
			return fmt.Errorf("tool conversation %s: %w", convs[i].src.where, err)
		}
		outs[i] = o
		return nil
	}, func(done int) { step(fmt.Sprintf("tool conversation %d/%d", done, len(convs))) })
	if err != nil {
		return nil, nil, err
	}
	exs, err := runPrompts(ctx, gen, convs, prompts, step)
	if err != nil {
		return nil, nil, err
	}
	return outs, exs, nil
}

// runPrompts runs the tool loop on each prompt, as the user's message after
// the held-out conversations' system prompt (see examplePrompt).
func runPrompts(ctx context.Context, gen generateFunc, convs []toolConv, prompts []string, step func(string)) ([]Outcome, error) {
	exs := make([]Outcome, len(prompts))
	err := eachParallel(ctx, len(prompts), func(i int) error {
		o, err := runTurns(ctx, gen, examplePrompt(prompts[i], convs))
		if err != nil {
			return fmt.Errorf("prompt %d: %w", i+1, err)
		}
		exs[i] = o
		return nil
	}, func(done int) { step(fmt.Sprintf("prompt %d/%d", done, len(prompts))) })
	if err != nil {
		return nil, err
	}
	return exs, nil
}

// eachParallel calls fn(0) .. fn(n-1), llama.MaxDecodeBatch at a time, so
// that the generations they run are decoded together (lm.generator), and
// progress(done) after each returns, under one lock. Each fn writes only
// its own results, so the outcome does not depend on the order they run
// in. It returns ctx's error once ctx is done, else the error of the
// lowest i that failed; a panic in fn (a device error, a bug) is raised
// again in the caller's goroutine once every call has returned.
func eachParallel(ctx context.Context, n int, fn func(i int) error, progress func(done int)) error {
	errs := make([]error, n)
	var (
		mu       sync.Mutex
		next     int
		done     int
		panicked any
		wg       sync.WaitGroup
	)
	for range min(n, llama.MaxDecodeBatch) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					if panicked == nil {
						panicked = p
					}
					next = n // start nothing more
					mu.Unlock()
				}
			}()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= n || panicked != nil
				mu.Unlock()
				if stop || ctx.Err() != nil {
					return
				}
				err := fn(i)
				mu.Lock()
				errs[i] = err
				done++
				if err != nil {
					next = n
				} else {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// validationLoss fills the loss metrics of mr.
func validationLoss(ctx context.Context, l *lm, recs []valRecord, mr *ModelReport, prog *progress, key string) error {
	var all, persona, chat struct {
		sum float64
		n   int
	}
	for i := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		ex := l.enc.Encode(recs[i].rec.Text)
		ids, labels := ex.IDs, ex.Labels
		if len(ids) > l.context {
			ids, labels = ids[:l.context], labels[:l.context]
			mr.TruncatedRecords++
		}
		sum, n, err := l.loss(ctx, ids, labels)
		if err != nil {
			return fmt.Errorf("validation record %s: %w", recs[i].where, err)
		}
		prog.step(fmt.Sprintf("%s: validation %d/%d", key, i+1, len(recs)))
		if n == 0 {
			mr.SkippedRecords++
			continue
		}
		all.sum += sum
		all.n += n
		mr.ValRecords++
		if ex.Chat {
			chat.sum += sum
			chat.n += n
			mr.ChatRecords++
		} else {
			persona.sum += sum
			persona.n += n
			mr.PersonaRecords++
		}
	}
	if all.n == 0 {
		return errors.New("no validation record has a token to score (every label is masked)")
	}
	mr.ValTokens, mr.PersonaTokens, mr.ChatTokens = all.n, persona.n, chat.n
	mean := all.sum / float64(all.n)
	mr.ValLoss, mr.ValPPL = num(mean), num(math.Exp(mean))
	if persona.n > 0 {
		mr.PersonaLoss = num(persona.sum / float64(persona.n))
	}
	if chat.n > 0 {
		mr.ChatLoss = num(chat.sum / float64(chat.n))
	}
	return nil
}

// num returns &x, or nil (JSON null) when x is NaN or infinite.
func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4g", *p)
}
