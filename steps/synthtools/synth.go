// Package synthtools implements the synth_tools step kind: it writes
// synthetic tool-use conversations in which a user asks about the weather,
// the assistant thinks briefly, calls get_weather in the wire syntax of
// package weather, receives the tool's JSON result and answers in a Mark
// Twain voice using the numbers it got. The data teaches a model the call
// syntax, the mapping of abbreviations ("SF") and relative days
// ("tmrw") to canonical arguments, and to use a tool result in its answer.
//
// The output is deterministic given the config: every choice comes from a
// PCG seeded with the seed attribute, drawn in a fixed order.
//
// The records' text is TwainBot's chat format (ml/chat's TwainBot
// template), the contract with the training steps (which mask prompts out
// of the loss), eval and `mlbuild chat`; the records themselves are
// trainingdata.Record.
// docs/steps-synth_tools.md describes the step for users.
package synthtools

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
	"github.com/mlbuild/mlbuild/steps/weather"
)

func init() { steps.Register(Kind{}) }

// twainbot is the chat format the records are written in (loaded on first
// use: parsing the built-in templates at start-up would slow every mlbuild
// command).
var twainbot = sync.OnceValue(chat.TwainBot)

// Kind is the synth_tools step kind.
type Kind struct{}

// Version is the implementation version. Bump it whenever the output for a
// config can change: templates, choice order, the chat format, and also
// changes in package weather (Execute, SystemPrompt, Format, the places).
// TestGoldenDigest fails when the output changes, as a reminder.
const Version = "3"

const maxCount = 1_000_000

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "synth_tools",
		Version: Version,
		Doc: "Synthesizes tool-use conversations for the get_weather tool: a varied user question " +
			"(abbreviated places, relative days, casual, formal, lower-case and in-context phrasings), " +
			"a thought and a tool call, the tool's JSON result, and a witty final answer in Mark Twain's " +
			"voice that uses the result's numbers. Deterministic given the seed.",
		Attributes: []steps.Attribute{
			{Name: "count", Type: cty.Number, Default: cty.NumberIntVal(400),
				Doc: "Number of conversations to write (1 to 1,000,000)."},
			{Name: "seed", Type: cty.Number, Default: cty.NumberIntVal(42),
				Doc: "Seed of the generator; the same seed and config give byte-identical output."},
			{Name: "holdout_locations", Type: cty.List(cty.String), Default: cty.ListValEmpty(cty.String),
				Doc: "Built-in places (by any name or alias) never used, so that an eval can test places the model has not seen."},
			{Name: "answer_fraction", Type: cty.Number, Default: cty.NumberIntVal(1),
				Doc: "Fraction of the conversations (spread evenly) that go on past the tool call to the tool's result and a final answer; the others end at the call, " +
					"as most function-calling datasets do: they teach the call at a fraction of the tokens. 0 to 1."},
			{Name: "thought", Type: cty.String, Default: cty.StringVal(ThoughtFree),
				Doc: `The assistant's thought before the call: "free" (how the place maps to its canonical name and the plan, in varied words), ` +
					`"arguments" (the call's arguments first, location="…", date="…", then the free thought: a small model resolves the place at one fixed spot) or "none".`},
			{Name: "places", Type: cty.String, Default: cty.StringVal(PlacesListed),
				Doc: `Which places the questions name: "listed" (the tool's built-in places, by name or alias) or "any" (four in ten of those; ` +
					`the rest real places from a gazetteer, the world's capitals and subdivisions, and realistic generated names, written alone or with their country, ` +
					`lower-cased by lower-case questions and now and then misspelt; the call copies the place as the user wrote it). ` +
					`A fifth of the unlisted names, chosen by a hash of the name, is never used, so that an eval can ask about places never seen.`},
			{Name: "call_location", Type: cty.String, Default: cty.StringVal(CallCanonical),
				Doc: `How the call names a place the tool lists: "canonical" (its canonical name: "SF" → "San Francisco, CA", so the model learns the tool's names and aliases) ` +
					`or "as_written" (as the user wrote it, as calls to places the tool does not list always do; the tool resolves names, aliases, case and diacritics, ` +
					`so the model has one rule to learn: copy the place).`},
			{Name: "answer_style", Type: cty.String, Default: cty.StringVal(AnswerFull),
				Doc: `The final answers: "full" (°F with °C beside it, highs and lows in °C) or "simple" (°F alone, no highs or lows, the condition in the tool's word: what a small model copies reliably from the result).`},
			{Name: "small_talk", Type: cty.Number, Default: cty.NumberIntVal(0),
				Doc: "Fraction of the no-tool conversations (spread evenly) that are small talk naming a day or a time (\"Happy Friday!\", \"Any plans for tonight?\"), " +
					"answered without a call, so that the model learns that a day in a message does not make it a weather question. 0 to 1."},
			{Name: "no_tool_fraction", Type: cty.Number, Default: cty.NumberIntVal(0),
				Doc: "Fraction of the conversations (spread evenly) that need no tool: rewrites in Twain's voice (some of sentences about the weather), jokes, chit-chat and questions about Twain and his books, " +
					"answered in the voice without a call, so that the model learns when not to call. Their phrasings are not eval's default no-tool prompts. 0 to 1."},
			{Name: "error_fraction", Type: cty.Number, Default: cty.NumberIntVal(0),
				Doc: "Fraction of the conversations that need the tool (spread evenly) that ask about a day that has passed (\"yesterday\", \"last week\"): the assistant calls as asked, " +
					"the tool answers {\"error\": ...} (it forecasts today through next week), and the assistant says so in the voice and offers what it can do, without inventing a forecast. 0 to 1."},
			{Name: "set", Type: cty.String, Default: cty.StringVal(SetTrain),
				Doc: `"train" (conversations to train on) or "test" (conversations for eval's test input, each tagged with its slice: ` +
					`half name one of the tool's listed places, half a place no training set ever names; half are phrased as the training's questions, half by templates kept out of training; ` +
					`places is not used). Seed a test set apart from the training sets.`},
			{Name: "system_prompt", Type: cty.String,
				Doc: "The system message. Unset: weather.SystemPrompt() (the tool definition and call syntax). \"\": no system message."},
		},
		Outputs: []steps.Output{
			{Name: "output", Path: "conversations.jsonl", Doc: "One conversation per line: {text, messages, call}."},
			{Name: "report", Path: "report.json", Doc: "Counts by question template, style, date kind, location, location form, alias, condition and advice; duplicate questions."},
		},
	}
}

// Options configure Generate.
type Options struct {
	Count int
	Seed  int64
	// Holdout lists places (any name or alias of a built-in place) not to use.
	Holdout []string
	// SystemPrompt is the system message; nil means weather.SystemPrompt(),
	// "" means none.
	SystemPrompt *string
	// CallOnlyFraction of the conversations end with the assistant's call;
	// the others, spread evenly, go on to the tool's result and a final
	// answer (the attribute answer_fraction is 1 - CallOnlyFraction).
	CallOnlyFraction float64
	// Thought is the thought's style, one of ThoughtStyles ("" is
	// ThoughtFree).
	Thought string
	// Places is the place set, one of PlaceSets ("" is PlacesListed).
	Places string
	// NoToolFraction of the conversations, spread evenly, need no tool:
	// rewrites, jokes, chit-chat and questions about Twain's books,
	// answered without a call (notool.go). Their draws come from a stream
	// of their own, so 0 leaves the output as it was.
	NoToolFraction float64
	// Set is SetTrain or SetTest ("" is SetTrain).
	Set string
	// CallLocation is how a call names a listed place, one of CallLocations
	// ("" is CallCanonical).
	CallLocation string
	// AnswerStyle is the final answers' style, one of AnswerStyles ("" is
	// AnswerFull).
	AnswerStyle string
	// SmallTalkFraction of the no-tool conversations, spread evenly, are
	// small talk naming a day (smalltalk.go), from a stream of their own.
	SmallTalkFraction float64
	// ErrorFraction of the conversations that need the tool, spread
	// evenly, ask about a day that has passed: the tool answers with an
	// error and the assistant explains what it can do instead
	// (pastConversation). Drawn from a stream of their own, as the no-tool
	// ones are.
	ErrorFraction float64
}

// Sets (synth_tools' set attribute).
const (
	// SetTrain: conversations to train on.
	SetTrain = "train"
	// SetTest: conversations to evaluate on, each tagged with its slice
	// (trainingdata.Slice): half name a listed place (seen in training),
	// half a place no training set names (placenames.go's held-out fifth);
	// half are phrased by the training's templates, half by
	// heldOutQuestions. Seeded apart from the training sets, it asks about
	// new combinations of seen parts as well as about new parts.
	SetTest = "test"
)

// Sets lists the valid sets.
var Sets = []string{SetTrain, SetTest}

// How a call names a place the tool lists (synth_tools' call_location).
const (
	// CallCanonical: by its canonical name ("SF" → "San Francisco, CA").
	CallCanonical = "canonical"
	// CallAsWritten: as the user wrote it ("SF", lower-cased in a
	// lower-case question); the tool resolves it.
	CallAsWritten = "as_written"
)

// errAsWrittenSystemPrompt: the default system message (weather.SystemPrompt)
// asks for canonical names.
var errAsWrittenSystemPrompt = errors.New(`"as_written" calls contradict the default system message, which asks the model to expand abbreviations; set system_prompt (to "" for none)`)

// CallLocations lists the valid values of call_location.
var CallLocations = []string{CallCanonical, CallAsWritten}

// checkOneOf checks that v is one of valid.
func checkOneOf(v string, valid []string) error {
	if !slices.Contains(valid, v) {
		return fmt.Errorf("must be one of %q, got %q", valid, v)
	}
	return nil
}

// firstTurn is the assistant's turn that makes the call: the thought on
// its own line, then the call (the call alone with ThoughtNone).
func firstTurn(thought, call, style string) string {
	if style == ThoughtNone {
		return call
	}
	return thought + "\n" + call
}

// checkThought and checkFraction validate Options.Thought and a fraction
// for both Generate and the step's attributes.
func checkThought(style string) error { return checkOneOf(style, ThoughtStyles) }

func checkPlaces(set string) error { return checkOneOf(set, PlaceSets) }

// withSystem is msgs after the system message, or msgs alone when system
// is "".
func withSystem(system string, msgs ...chat.Message) []chat.Message {
	if system == "" {
		return msgs
	}
	return append([]chat.Message{{Role: chat.RoleSystem, Content: system}}, msgs...)
}

func checkSet(set string) error { return checkOneOf(set, Sets) }

// seenOrNew is trainingdata.SliceNew when isNew, else SliceSeen.
func seenOrNew(isNew bool) string {
	if isNew {
		return trainingdata.SliceNew
	}
	return trainingdata.SliceSeen
}

func checkFraction(f float64) error {
	if math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("must be between 0 and 1, got %v", f)
	}
	return nil
}

// answered reports whether conversation i (from 0) of a set with fraction
// f answered goes on past its call: floor((i+1)·f) > floor(i·f), which
// spreads the answered ones evenly and answers round(n·f) of the first n.
func answered(i int, f float64) bool {
	return math.Floor(float64(i+1)*f+1e-9) > math.Floor(float64(i)*f+1e-9)
}

// Report is report.json. Maps are written with sorted keys.
type Report struct {
	Count        int    `json:"count"`
	Seed         int64  `json:"seed"`
	SystemPrompt string `json:"system_prompt"` // "default", "custom" or "none"
	Thought      string `json:"thought"`
	Places       string `json:"places,omitempty"`
	// Set is "test" for a test set, whose conversations Slices counts by
	// slice (trainingdata.Slice's Key); both are left out for training
	// sets.
	Set    string         `json:"set,omitempty"`
	Slices map[string]int `json:"slices,omitempty"`
	// Answered conversations go on to the tool's result and an answer;
	// CallOnly ones end at the call.
	Answered int `json:"answered"`
	CallOnly int `json:"call_only"`
	// NoTool counts the conversations that need no tool, by kind
	// (NoToolKinds) and by template.
	NoTool int `json:"no_tool,omitempty"`
	// ToolErrors counts the conversations about a day that has passed,
	// whose call the tool answers with an error.
	ToolErrors         int            `json:"tool_errors,omitempty"`
	NoToolKinds        map[string]int `json:"no_tool_kinds,omitempty"`
	NoToolTemplates    map[string]int `json:"no_tool_templates,omitempty"`
	HoldoutLocations   []string       `json:"holdout_locations"`
	DistinctQuestions  int            `json:"distinct_questions"`
	DuplicateQuestions int            `json:"duplicate_questions"`
	DistinctLocations  int            `json:"distinct_locations"`
	// UnlistedLocations counts the questions about places the tool does not
	// list (places = "any"); Locations counts only the listed ones.
	UnlistedLocations int `json:"unlisted_locations,omitempty"`
	// Abbreviations counts questions that name the place by an all-caps
	// abbreviation ("SF", "NYC", "L.A."); Aliases counts every alias used.
	Abbreviations     int            `json:"abbreviations"`
	QuestionTemplates map[string]int `json:"question_templates"`
	QuestionStyles    map[string]int `json:"question_styles"`
	Topics            map[string]int `json:"topics"`
	AnswerTemplates   map[string]int `json:"answer_templates"`
	DateKinds         map[string]int `json:"date_kinds"`
	Dates             map[string]int `json:"dates"`
	Locations         map[string]int `json:"locations"`
	LocationForms     map[string]int `json:"location_forms"`
	Aliases           map[string]int `json:"aliases"`
	Conditions        map[string]int `json:"conditions"`
	Advice            map[string]int `json:"advice"`
}

// maxRetries bounds the redraws of a question that duplicates an earlier one.
const maxRetries = 30

// Generate writes opts.Count conversations. It is deterministic given opts.
func Generate(opts Options) ([]trainingdata.Record, *Report, error) {
	if opts.Count < 1 || opts.Count > maxCount {
		return nil, nil, fmt.Errorf("count must be between 1 and %d, got %d", maxCount, opts.Count)
	}
	if opts.Thought == "" {
		opts.Thought = ThoughtFree
	}
	if err := checkThought(opts.Thought); err != nil {
		return nil, nil, fmt.Errorf("thought %w", err)
	}
	if err := checkFraction(opts.CallOnlyFraction); err != nil {
		return nil, nil, fmt.Errorf("the call-only fraction %w", err)
	}
	if err := checkFraction(opts.NoToolFraction); err != nil {
		return nil, nil, fmt.Errorf("the no-tool fraction %w", err)
	}
	if err := checkFraction(opts.ErrorFraction); err != nil {
		return nil, nil, fmt.Errorf("the error fraction %w", err)
	}
	if err := checkFraction(opts.SmallTalkFraction); err != nil {
		return nil, nil, fmt.Errorf("the small-talk fraction %w", err)
	}
	if opts.CallLocation == "" {
		opts.CallLocation = CallCanonical
	}
	if err := checkOneOf(opts.CallLocation, CallLocations); err != nil {
		return nil, nil, fmt.Errorf("call location %w", err)
	}
	if opts.AnswerStyle == "" {
		opts.AnswerStyle = AnswerFull
	}
	if err := checkOneOf(opts.AnswerStyle, AnswerStyles); err != nil {
		return nil, nil, fmt.Errorf("answer style %w", err)
	}
	if opts.CallLocation == CallAsWritten && opts.SystemPrompt == nil {
		return nil, nil, errAsWrittenSystemPrompt
	}
	answerSet := answerTemplates(opts.AnswerStyle)
	if opts.Set == "" {
		opts.Set = SetTrain
	}
	if err := checkSet(opts.Set); err != nil {
		return nil, nil, fmt.Errorf("set %w", err)
	}
	test := opts.Set == SetTest
	if opts.Places == "" {
		opts.Places = PlacesListed
	}
	if err := checkPlaces(opts.Places); err != nil {
		return nil, nil, fmt.Errorf("places %w", err)
	}
	frac := 1 - opts.CallOnlyFraction
	held := map[string]bool{}
	rep := &Report{
		Count: opts.Count, Seed: opts.Seed, SystemPrompt: "default", Thought: opts.Thought, HoldoutLocations: []string{},
		QuestionTemplates: map[string]int{}, QuestionStyles: map[string]int{}, Topics: map[string]int{},
		AnswerTemplates: map[string]int{}, DateKinds: map[string]int{}, Dates: map[string]int{},
		Locations: map[string]int{}, LocationForms: map[string]int{}, Aliases: map[string]int{},
		Conditions: map[string]int{}, Advice: map[string]int{},
	}
	if opts.Places != PlacesListed {
		rep.Places = opts.Places
	}
	if test {
		rep.Set, rep.Slices = opts.Set, map[string]int{}
	}
	for _, h := range opts.Holdout {
		p, ok := weather.LookupPlace(h)
		if !ok {
			return nil, nil, fmt.Errorf("holdout_locations: %q is not a built-in place (see steps/weather/places.go)", h)
		}
		if !held[p.Name] {
			held[p.Name] = true
			rep.HoldoutLocations = append(rep.HoldoutLocations, p.Name)
		}
	}
	sort.Strings(rep.HoldoutLocations)
	var deck []weather.Place
	for _, p := range weather.Places() {
		if !held[p.Name] {
			deck = append(deck, p)
		}
	}
	for _, name := range featured {
		if p, ok := weather.LookupPlace(name); ok && !held[p.Name] {
			deck = append(deck, p)
		}
	}
	if len(deck) == 0 {
		return nil, nil, fmt.Errorf("holdout_locations holds out every built-in place")
	}
	system := weather.SystemPrompt()
	if opts.SystemPrompt != nil {
		system = *opts.SystemPrompt
		rep.SystemPrompt = "custom"
		if system == "" {
			rep.SystemPrompt = "none"
		}
	}

	r := newRNG(opts.Seed)
	rNoTool, rError, rSmallTalk := newNoToolRNG(opts.Seed), newErrorRNG(opts.Seed), newSmallTalkRNG(opts.Seed)
	if opts.NoToolFraction > 0 {
		rep.NoToolKinds, rep.NoToolTemplates = map[string]int{}, map[string]int{}
	}
	// Places are dealt from a shuffled deck, reshuffled when exhausted, so
	// that every place appears about equally often (featured places twice
	// as often).
	next := len(deck)
	seen := map[string]bool{}
	records := make([]trainingdata.Record, 0, opts.Count)
	// i counts all conversations, m those that need the tool, n those of
	// them whose call succeeds, k those that need none.
	for i, m, n, k := 0, 0, 0, 0; i < opts.Count; i++ {
		if answered(i, opts.NoToolFraction) {
			k++
			var kind, id, question, answer string
			if answered(k-1, opts.SmallTalkFraction) {
				kind = noToolSmallTalk
				id, question, answer = smallTalkConversation(rSmallTalk)
			} else {
				kind, id, question, answer = noToolConversation(rNoTool)
			}
			msgs := withSystem(system,
				chat.Message{Role: chat.RoleUser, Content: question},
				chat.Message{Role: chat.RoleAssistant, Content: answer})
			rec := trainingdata.Record{Text: twainbot().Render(msgs, false), Messages: msgs}
			if test {
				rec.Slice = &trainingdata.Slice{Phrasing: trainingdata.SliceSeen}
				rep.Slices[rec.Slice.Key()]++
			}
			records = append(records, rec)
			rep.NoTool++
			rep.NoToolKinds[kind]++
			rep.NoToolTemplates[id]++
			continue
		}
		m++
		if answered(m-1, opts.ErrorFraction) {
			q, loc, call, question, answer := pastConversation(rError, deck)
			_, err := weather.Execute(call)
			if !errors.Is(err, weather.ErrPastDate) {
				return nil, nil, fmt.Errorf("conversation %d: a past date did not fail: %v", i+1, err) // a bug
			}
			msgs := withSystem(system,
				chat.Message{Role: chat.RoleUser, Content: question},
				chat.Message{Role: chat.RoleAssistant, Content: weather.Format(call)},
				chat.Message{Role: chat.RoleTool, Name: weather.ToolName, Content: weather.ErrorJSON(err)},
				chat.Message{Role: chat.RoleAssistant, Content: answer})
			records = append(records, trainingdata.Record{Text: twainbot().Render(msgs, false), Messages: msgs,
				Call: trainingdata.CallArgs{Location: call.Arguments[weather.ArgLocation], Date: call.Arguments[weather.ArgDate]}})
			rep.ToolErrors++
			rep.QuestionTemplates[q.ID]++
			rep.LocationForms[loc.Form]++
			continue
		}
		n++
		// With PlacesAny, six in ten questions name a place the tool does
		// not list (drawn below); the deck is dealt only for listed ones.
		var unlisted, newPhrasing bool
		qs := questions
		if test {
			// Half the questions name a place no training set names, half
			// are phrased as no training question is.
			unlisted, newPhrasing = r.intN(2) == 0, r.intN(2) == 0
			if newPhrasing {
				qs = heldOutQuestions
			}
		} else {
			unlisted = opts.Places == PlacesAny && r.intN(10) >= 4
		}
		var place weather.Place
		if !unlisted {
			if next == len(deck) {
				shuffle(r, deck)
				next = 0
			}
			place = deck[next]
			next++
		}

		var (
			q    question
			loc  locChoice
			date dateChoice
			text string
		)
		for try := 0; ; try++ {
			q = pick(r, qs)
			if unlisted {
				loc = unlistedLocation(r, test)
				place = loc.Place
			} else {
				loc = chooseLocation(r, place)
			}
			date = chooseDate(r, q.Style == styleLower)
			text = renderQuestion(q, loc, date)
			if !seen[normKey(text)] || try == maxRetries {
				break
			}
		}
		if seen[normKey(text)] {
			rep.DuplicateQuestions++
		}
		seen[normKey(text)] = true

		callPlace := place.Name
		if unlisted || opts.CallLocation == CallAsWritten {
			callPlace = writtenPlace(q, loc)
		}
		call := weather.NewCall(callPlace, date.Call)
		res, err := weather.Execute(call)
		if err != nil {
			return nil, nil, fmt.Errorf("conversation %d: %w", i+1, err) // a bug: the call is built from a place
		}
		adviceText, category := advice(r, q.Topic, res)
		ans := pick(r, answerSet)

		msgs := withSystem(system,
			chat.Message{Role: chat.RoleUser, Content: text},
			chat.Message{Role: chat.RoleAssistant, Content: firstTurn(thought(r, q, loc, date, opts.Thought), weather.Format(call), opts.Thought)})
		// The answer is drawn either way, so that answer_fraction changes
		// which conversations end at the call and nothing else.
		full := answered(n-1, frac)
		if full {
			msgs = append(msgs,
				chat.Message{Role: chat.RoleTool, Name: weather.ToolName, Content: res.JSON()},
				chat.Message{Role: chat.RoleAssistant, Content: finalAnswer(ans, loc, date, res, adviceText, opts.AnswerStyle)})
			rep.Answered++
			rep.AnswerTemplates[ans.ID]++
			rep.Advice[category]++
		} else {
			rep.CallOnly++
		}
		rec := trainingdata.Record{
			Text:     twainbot().Render(msgs, false),
			Messages: msgs,
			Call:     trainingdata.CallArgs{Location: call.Arguments[weather.ArgLocation], Date: call.Arguments[weather.ArgDate]},
		}
		if test {
			rec.Slice = &trainingdata.Slice{Place: seenOrNew(unlisted), Phrasing: seenOrNew(newPhrasing)}
			rep.Slices[rec.Slice.Key()]++
		}
		records = append(records, rec)

		rep.QuestionTemplates[q.ID]++
		rep.QuestionStyles[q.Style]++
		rep.Topics[q.Topic]++
		rep.DateKinds[date.Kind]++
		rep.Dates[date.Call]++
		if unlisted {
			rep.UnlistedLocations++
		} else {
			rep.Locations[place.Name]++
		}
		rep.LocationForms[loc.Form]++
		if loc.Form == formAlias {
			rep.Aliases[loc.Surface]++
			if isAbbreviation(loc.Surface) {
				rep.Abbreviations++
			}
		}
		rep.Conditions[res.Condition]++
	}
	rep.DistinctQuestions = len(seen)
	rep.DistinctLocations = len(rep.Locations)
	return records, rep, nil
}

// config is a synth_tools step's attributes, as steps.Decode reads them.
type config struct {
	Count          int      `attr:"count"`
	Seed           int64    `attr:"seed"`
	Holdout        []string `attr:"holdout_locations"`
	AnswerFraction float64  `attr:"answer_fraction"`
	Thought        string   `attr:"thought"`
	Places         string   `attr:"places"`
	NoToolFraction float64  `attr:"no_tool_fraction"`
	Set            string   `attr:"set"`
	ErrorFraction  float64  `attr:"error_fraction"`
	CallLocation   string   `attr:"call_location"`
	AnswerStyle    string   `attr:"answer_style"`
	SmallTalk      float64  `attr:"small_talk"`
	// SystemPrompt is nil when the attribute is unset (null):
	// weather.SystemPrompt(); "" means no system message.
	SystemPrompt *string `attr:"system_prompt"`
}

// options decodes and checks the config, in the schema's attribute order,
// and maps it to Generate's options; errors are *steps.AttrError naming
// the attribute at fault.
func options(inv *steps.Invocation) (Options, error) {
	var c config
	if err := inv.Decode(&c); err != nil {
		return Options{}, err
	}
	if c.Count < 1 || c.Count > maxCount {
		return Options{}, &steps.AttrError{Attr: "count", Msg: fmt.Sprintf("must be between 1 and %d, got %d", maxCount, c.Count)}
	}
	for _, h := range c.Holdout {
		if _, ok := weather.LookupPlace(h); !ok {
			return Options{}, &steps.AttrError{Attr: "holdout_locations", Msg: fmt.Sprintf("%q is not a built-in place (see steps/weather/places.go)", h)}
		}
	}
	if err := checkFraction(c.AnswerFraction); err != nil {
		return Options{}, &steps.AttrError{Attr: "answer_fraction", Msg: err.Error()}
	}
	if err := checkThought(c.Thought); err != nil {
		return Options{}, &steps.AttrError{Attr: "thought", Msg: err.Error()}
	}
	if err := checkPlaces(c.Places); err != nil {
		return Options{}, &steps.AttrError{Attr: "places", Msg: err.Error()}
	}
	if err := checkFraction(c.NoToolFraction); err != nil {
		return Options{}, &steps.AttrError{Attr: "no_tool_fraction", Msg: err.Error()}
	}
	if err := checkSet(c.Set); err != nil {
		return Options{}, &steps.AttrError{Attr: "set", Msg: err.Error()}
	}
	if err := checkFraction(c.ErrorFraction); err != nil {
		return Options{}, &steps.AttrError{Attr: "error_fraction", Msg: err.Error()}
	}
	if err := checkOneOf(c.CallLocation, CallLocations); err != nil {
		return Options{}, &steps.AttrError{Attr: "call_location", Msg: err.Error()}
	}
	if c.CallLocation == CallAsWritten && c.SystemPrompt == nil {
		return Options{}, &steps.AttrError{Attr: "call_location", Msg: errAsWrittenSystemPrompt.Error()}
	}
	if err := checkOneOf(c.AnswerStyle, AnswerStyles); err != nil {
		return Options{}, &steps.AttrError{Attr: "answer_style", Msg: err.Error()}
	}
	if err := checkFraction(c.SmallTalk); err != nil {
		return Options{}, &steps.AttrError{Attr: "small_talk", Msg: err.Error()}
	}
	return Options{Count: c.Count, Seed: c.Seed, Holdout: c.Holdout, CallOnlyFraction: 1 - c.AnswerFraction,
		Thought: c.Thought, SystemPrompt: c.SystemPrompt, Places: c.Places, NoToolFraction: c.NoToolFraction, Set: c.Set, ErrorFraction: c.ErrorFraction,
		CallLocation: c.CallLocation, AnswerStyle: c.AnswerStyle, SmallTalkFraction: c.SmallTalk}, nil
}

// Validate implements steps.Validator: config errors are reported when
// the pipeline is loaded.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := options(inv)
	return err
}

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	opts, err := options(inv)
	if err != nil {
		return err // an *steps.AttrError: the engine names the step and points at the attribute
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	records, rep, err := Generate(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	out, err := steps.CreateJSONL(filepath.Join(inv.OutDir, "conversations.jsonl"))
	if err != nil {
		return err
	}
	for i, rec := range records {
		if err := out.Write(rec); err != nil {
			_ = out.Close() // the failed write is the error to report; the output folder is discarded
			return err
		}
		if (i+1)%1000 == 0 {
			if err := ctx.Err(); err != nil {
				_ = out.Close() // cancelled: the output folder is discarded
				return err
			}
			inv.ReportProgress(float64(i+1), float64(len(records)), "writing conversations")
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	inv.ReportProgress(float64(len(records)), float64(len(records)), fmt.Sprintf("%d conversations", len(records)))
	inv.Logger().Info("synthesized conversations", "count", len(records),
		"distinct_questions", rep.DistinctQuestions, "duplicates", rep.DuplicateQuestions,
		"locations", rep.DistinctLocations)
	return steps.WriteJSON(filepath.Join(inv.OutDir, "report.json"), rep)
}
