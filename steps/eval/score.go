package eval

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// Stop reasons of a generation (generation.Stop, Turn.Stop).
const (
	// StopTool and StopEnd are the chat format's tags, "<|tool|>" and
	// "<|end|>"; another role tag ("<|user|>" ...) is recorded as itself.
	StopTool = "<|tool|>"
	StopEnd  = "<|end|>"
	// StopEOS: the model's end-of-sequence token.
	StopEOS = "eos"
	// StopMaxTokens: max_new_tokens were generated.
	StopMaxTokens = "max_new_tokens"
	// StopContext: the model's context (max_position_embeddings, or its
	// sliding window) filled up before max_new_tokens; when the prompt
	// alone fills it, nothing was generated.
	StopContext = "context_full"
)

// generation is one assistant turn as a model wrote it: the text up to,
// not including, the stop.
type generation struct {
	Text string
	Stop string
}

// generateFunc writes the next assistant turn of a conversation: the
// continuation of twainbot().Render(msgs, true), greedy, up to a stop.
// Tests script it; Run uses a model. It must be safe for concurrent use:
// eval runs several conversations at once (eachParallel).
type generateFunc func(ctx context.Context, msgs []chat.Message) (generation, error)

// Turn is one message of a transcript. Stop is set on generated (assistant)
// turns: why the generation ended.
type Turn struct {
	Role    string `json:"role"`
	Name    string `json:"name,omitempty"`
	Content string `json:"content"`
	Stop    string `json:"stop,omitempty"`
}

// Outcome is what a model did with one prompt in the tool loop: its first
// turn, the tool call found in it (if any) and, when the call was valid and
// executed, the tool result and the model's final answer.
type Outcome struct {
	// Transcript holds the turns after the prompt: the model's first turn
	// (as generated, including any text after the call), and when a call
	// ran, the tool message and the model's answer.
	Transcript []Turn `json:"transcript"`
	// Attempted: the first turn contains "<tool_call>".
	Attempted bool `json:"attempted"`
	// Call is the call weather.Parse read from the first turn.
	Call *weather.Call `json:"call,omitempty"`
	// ParseError is set when the turn has "<tool_call>" but Parse failed.
	ParseError string `json:"parse_error,omitempty"`
	// Valid: a call was parsed and passes weather.Validate (so it ran);
	// InvalidReason says why not when a parsed call is invalid.
	Valid         bool   `json:"valid"`
	InvalidReason string `json:"invalid_reason,omitempty"`
	// Result is the executed call's result; ToolError is the tool's error
	// instead, for a valid call it refused (a day that has passed), which
	// the model is shown as {"error": ...} and answers after.
	Result    *weather.Result `json:"result,omitempty"`
	ToolError string          `json:"tool_error,omitempty"`
	// Answer is the model's final answer: the turn after the tool result
	// when a call ran, else the first turn when it holds no call at all,
	// else "" (a malformed or invalid call gets no answer).
	Answer string `json:"answer"`
	// UsesResult: a call ran and Answer uses its result (see usesResult);
	// Evidence names what was found, e.g. "temp_c 14" or `condition "fog"`.
	UsesResult bool   `json:"uses_result"`
	Evidence   string `json:"evidence,omitempty"`
}

// ToolOutcome is an Outcome on a held-out conversation, scored against the
// call the conversation makes.
type ToolOutcome struct {
	Outcome
	// ExactArgs: the call is valid and weather.CompareArgs accepts it
	// against the expected call; Mismatch says why not when a call was
	// parsed but does not match.
	ExactArgs bool   `json:"exact_args"`
	Mismatch  string `json:"mismatch,omitempty"`
	// Recovered, for a conversation whose call the tool refuses: the
	// model made the call as asked, and its answer after the error names
	// the place asked about and no other, makes no call and states no
	// temperature (it does not invent a forecast).
	Recovered bool `json:"recovered,omitempty"`
}

// runTurns runs the tool loop for one prompt (system and user messages):
// the model writes a turn; if weather.Parse finds a call in it and the call
// is valid, the call is executed with weather.Execute, the assistant
// message (the turn cut after "</tool_call>") and the tool message (the
// result JSON) are appended, and the model writes its answer. One tool
// round only: a call in the answer is not executed.
func runTurns(ctx context.Context, gen generateFunc, prompt []chat.Message) (Outcome, error) {
	var o Outcome
	first, err := gen(ctx, prompt)
	if err != nil {
		return o, err
	}
	o.Transcript = append(o.Transcript, Turn{Role: chat.RoleAssistant, Content: first.Text, Stop: first.Stop})
	o.Attempted = strings.Contains(first.Text, weather.OpenTag)
	call, perr := weather.Parse(first.Text)
	switch {
	case errors.Is(perr, weather.ErrNoCall):
		o.Answer = first.Text
		return o, nil
	case perr != nil:
		o.ParseError = perr.Error()
		return o, nil
	}
	o.Call = &call
	res, err := weather.Execute(call)
	toolMsg := res.JSON()
	switch {
	case errors.Is(err, weather.ErrPastDate):
		o.Valid, o.ToolError, toolMsg = true, err.Error(), weather.ErrorJSON(err)
	case err != nil:
		o.InvalidReason = err.Error()
		return o, nil
	default:
		o.Valid, o.Result = true, &res
	}
	msgs := append(append([]chat.Message(nil), prompt...),
		chat.Message{Role: chat.RoleAssistant, Content: cutAfterCall(first.Text)},
		chat.Message{Role: chat.RoleTool, Name: weather.ToolName, Content: toolMsg})
	o.Transcript = append(o.Transcript, Turn{Role: chat.RoleTool, Name: weather.ToolName, Content: toolMsg})
	if err := ctx.Err(); err != nil {
		return o, err
	}
	ans, err := gen(ctx, msgs)
	if err != nil {
		return o, err
	}
	o.Transcript = append(o.Transcript, Turn{Role: chat.RoleAssistant, Content: ans.Text, Stop: ans.Stop})
	o.Answer = ans.Text
	if o.Result != nil {
		o.UsesResult, o.Evidence = usesResult(ans.Text, res.Location, res)
	}
	return o, nil
}

// cutAfterCall returns text up to and including the first call's closing
// "</tool_call>" (text holds a call that weather.Parse read).
func cutAfterCall(text string) string {
	i := strings.Index(text, weather.OpenTag)
	if i < 0 {
		return text
	}
	if j := strings.Index(text[i:], weather.CloseTag); j >= 0 {
		return text[:i+j+len(weather.CloseTag)]
	}
	return text
}

// scoreConversation runs the tool loop on a held-out conversation's prompt
// and compares the call with the expected one.
func scoreConversation(ctx context.Context, gen generateFunc, c toolConv) (ToolOutcome, error) {
	o, err := runTurns(ctx, gen, c.prompt)
	t := ToolOutcome{Outcome: o}
	if err != nil {
		return t, err
	}
	if o.Result != nil {
		// The answer must name the place the user asked about, not the
		// one a wrong call fetched.
		t.UsesResult, t.Evidence = usesResult(o.Answer, c.expected.Arguments[weather.ArgLocation], *o.Result)
	}
	if o.Call != nil {
		ok, why := weather.CompareArgs(c.expected, *o.Call)
		t.ExactArgs = ok && o.Valid
		if !ok {
			t.Mismatch = why
		}
	}
	if c.failing && t.ExactArgs && o.ToolError != "" && !strings.Contains(o.Answer, weather.OpenTag) && len(temperatures(o.Answer)) == 0 {
		t.Recovered, _ = namesOnly(o.Answer, placeNames(c.expected.Arguments[weather.ArgLocation]))
	}
	return t, nil
}

// toolTally counts outcomes over the held-out tool conversations.
type toolTally struct {
	prompts   int // conversations run
	attempted int // first turn contains "<tool_call>"
	calls     int // a call was parsed
	valid     int // ... and is valid (it ran)
	exact     int // ... and matches the expected arguments
	answers   int // a call ran and the model answered (non-blank answer)
	uses      int // ... and the answer uses the result
	recovered int // a refused call made as asked, its error answered (ToolOutcome.Recovered)
}

func (t *toolTally) add(o ToolOutcome) {
	t.prompts++
	if o.Attempted {
		t.attempted++
	}
	if o.Call != nil {
		t.calls++
	}
	if o.Valid {
		t.valid++
		if strings.TrimSpace(o.Answer) != "" {
			t.answers++
		}
	}
	if o.ExactArgs {
		t.exact++
	}
	if o.UsesResult {
		t.uses++
	}
	if o.Recovered {
		t.recovered++
	}
}

// numberSpan is a whole number of a text and where its digits are.
type numberSpan struct {
	v          int
	start, end int
}

// numberSpans returns the whole numbers of s: every run of ASCII digits
// that is not part of a decimal ("14.5") or of a word ("B52"; a unit
// letter may follow: "14C"), at most 6 digits long. It is negative when a
// "-" or "−" directly precedes it (not after a digit: "10-14" is 10 and
// 14) or the word "minus " does.
func numberSpans(s string) []numberSpan {
	var out []numberSpan
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		start, end := i, j
		i = j
		// Not part of a decimal or a word.
		if start > 0 {
			r, _ := utf8.DecodeLastRuneInString(s[:start])
			if unicode.IsLetter(r) || r == '.' && start > 1 && isDigit(s[start-2]) {
				continue
			}
		}
		if end < len(s) {
			if s[end] == '.' && end+1 < len(s) && isDigit(s[end+1]) {
				continue
			}
			r, size := utf8.DecodeRuneInString(s[end:])
			if unicode.IsLetter(r) && !isUnit(s[end:], size) {
				continue
			}
		}
		if len(s[start:end]) > 6 {
			continue // not a temperature
		}
		v := 0
		for _, c := range s[start:end] {
			v = v*10 + int(c-'0')
		}
		if negative(s[:start]) {
			v = -v
		}
		out = append(out, numberSpan{v: v, start: start, end: end})
	}
	return out
}

// isUnit reports whether rest (starting with a letter of size bytes) is a
// temperature unit letter standing alone: "C", "F" (either case) followed
// by a non-letter or the end.
func isUnit(rest string, size int) bool {
	switch rest[0] {
	case 'C', 'F', 'c', 'f':
	default:
		return false
	}
	if len(rest) == size {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest[size:])
	return !unicode.IsLetter(r)
}

// negative reports whether the text before a number makes it negative.
func negative(before string) bool {
	if strings.HasSuffix(strings.ToLower(before), "minus ") {
		return true
	}
	var sign string
	switch {
	case strings.HasSuffix(before, "-"):
		sign = "-"
	case strings.HasSuffix(before, "−"):
		sign = "−"
	default:
		return false
	}
	rest := before[:len(before)-len(sign)]
	return rest == "" || !isDigit(rest[len(rest)-1])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// mentionsWord reports whether phrase occurs in s compared
// case-insensitively, starting at a word start and ending at a word end or
// followed by one of the suffixes "y", "gy", "s", "ing" that end a word
// there ("foggy", "rainy", "raining"; "clouds" does not match "cloudy").
func mentionsWord(s, phrase string) bool {
	ls, lp := strings.ToLower(s), strings.ToLower(phrase)
	for from := 0; ; {
		i := strings.Index(ls[from:], lp)
		if i < 0 {
			return false
		}
		i += from
		from = i + 1
		if i > 0 {
			if r, _ := utf8.DecodeLastRuneInString(ls[:i]); unicode.IsLetter(r) {
				continue
			}
		}
		rest := ls[i+len(lp):]
		for _, suf := range []string{"", "y", "gy", "s", "ing"} {
			if !strings.HasPrefix(rest, suf) {
				continue
			}
			after := rest[len(suf):]
			if r, _ := utf8.DecodeRuneInString(after); after == "" || !unicode.IsLetter(r) {
				return true
			}
		}
	}
}
