// Package trainingdata turns the JSONL datasets the data steps write into
// token ids and loss labels for the training and evaluation steps.
//
// A record is one JSON object per line with a "text" field. Texts in
// TwainBot's chat format (ml/chat's TwainBot template, which synth_tools
// writes: "<|system|>\n...<|end|>") are conversations: only what the
// assistant writes is trained on (its turns, and the tag that ends each of them, "<|tool|>" or "<|end|>", so
// the model learns to stop; a conversation that ends at a tool call does
// not train the "<|end|>" after it); system, user and tool text gets the label
// IgnoreIndex. Any other text is prose and is trained on whole, followed
// by the end-of-sequence token so the model learns to stop there too.
//
// Labels are aligned with the ids (labels[i] is ids[i] or IgnoreIndex);
// the loss shifts them by one, as transformers does: position i is scored
// on predicting labels[i+1].
package trainingdata

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// CallArgs is the call a conversation makes, for scoring: its arguments
// exactly as written in the assistant's <tool_call>.
type CallArgs struct {
	Location string `json:"location"`
	Date     string `json:"date"`
}

// Record is one line of a JSONL dataset: a "text", and for the
// conversations synth_tools writes, their messages (Text is TwainBot's
// rendering of them) and the call they make.
type Record struct {
	Text     string         `json:"text"`
	Messages []chat.Message `json:"messages"`
	Call     CallArgs       `json:"call"`
	// Slice says, for a test set's conversation (synth_tools' set =
	// "test"), whether its place and its phrasing were seen in training.
	Slice *Slice `json:"slice,omitempty"`
}

// Slice values.
const (
	SliceSeen = "seen" // the training data has it
	SliceNew  = "new"  // never in any training data
)

// Slice is where a test conversation stands against the training data:
// Place is SliceSeen for the tool's listed places (which training uses)
// and SliceNew for places no training set names; Phrasing is SliceSeen
// for the training's question templates and SliceNew for templates kept
// out of training. Place is "" for a conversation that needs no tool.
type Slice struct {
	Place    string `json:"place,omitempty"`
	Phrasing string `json:"phrasing"`
}

// Key names the slice in reports: "P_place_Q_phrasing" ("new_place_seen_phrasing"),
// or "no_tool_Q_phrasing" for a conversation that needs no tool.
func (s Slice) Key() string {
	if s.Place == "" {
		return "no_tool_" + s.Phrasing + "_phrasing"
	}
	return s.Place + "_place_" + s.Phrasing + "_phrasing"
}

// twainbot is the chat format of conversations.
var twainbot = sync.OnceValue(chat.TwainBot)

// IgnoreIndex is the label of tokens that are not trained on.
const IgnoreIndex = tensor.IgnoreIndex

// Example is one encoded record.
type Example struct {
	IDs    []int
	Labels []int
	// Chat is set for conversations (whose prompts are masked).
	Chat bool
	// Record is the decoded JSON line (text, and for synth_tools records
	// messages and call).
	Record Record
	// Where is "file:line", for messages.
	Where string
}

// Trained returns the number of tokens that enter the loss (labels other
// than IgnoreIndex at positions 1..n-1).
func (e *Example) Trained() int {
	n := 0
	for _, l := range e.Labels[1:] {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// Encoder encodes records with one tokenizer, rendering conversations in
// one chat template.
type Encoder struct {
	tok *tokenizer.Tokenizer
	tpl *chat.Template
	// tags maps the ids of the chat role tags, when the template is
	// TwainBot's and the tokenizer has them as single tokens, to their role.
	tags map[int]string
	end  int // id of "<|end|>", or -1
}

// NewEncoder returns an encoder for tok that renders conversations in
// TwainBot's chat format.
func NewEncoder(tok *tokenizer.Tokenizer) *Encoder { return NewEncoderFor(tok, nil) }

// NewEncoderFor returns an encoder for tok that renders conversations in
// tpl, the chat template of the model being trained or evaluated (nil:
// TwainBot's). The records hold conversations in TwainBot's format, as
// synth_tools writes them; each is parsed and rendered again in tpl, so a
// model with a chat template of its own (Llama-3, SmolLM2's ChatML) is
// trained and prompted in it.
func NewEncoderFor(tok *tokenizer.Tokenizer, tpl *chat.Template) *Encoder {
	if tpl == nil {
		tpl = twainbot()
	}
	e := &Encoder{tok: tok, tpl: tpl, tags: map[int]string{}, end: -1}
	if tpl.Name != chat.TwainBotName {
		e.tags = nil
		return e
	}
	roles := []string{chat.RoleSystem, chat.RoleUser, chat.RoleAssistant, chat.RoleTool}
	for _, r := range roles {
		id, ok := tok.TokenID(roleTag(r))
		if !ok || !tok.IsSpecial(id) {
			e.tags = nil
			break
		}
		e.tags[id] = r
	}
	if id, ok := tok.TokenID(twainbot().Closing); ok && e.tags != nil && tok.IsSpecial(id) {
		e.end = id
	} else {
		e.tags = nil
	}
	return e
}

// Tokenizer returns the encoder's tokenizer.
func (e *Encoder) Tokenizer() *tokenizer.Tokenizer { return e.tok }

// Template returns the chat template the encoder renders conversations in.
func (e *Encoder) Template() *chat.Template { return e.tpl }

// Encode encodes one record's text.
func (e *Encoder) Encode(text string) Example {
	if msgs, err := twainbot().Parse(text); err == nil {
		return e.encodeChat(text, msgs)
	}
	ids := e.tok.Encode(text, true)
	if eos := e.tok.EOS(); eos >= 0 {
		ids = append(ids, eos)
	}
	labels := append([]int(nil), ids...)
	if len(labels) > 0 && labels[0] == e.tok.BOS() {
		labels[0] = IgnoreIndex
	}
	return Example{IDs: ids, Labels: labels}
}

func (e *Encoder) encodeChat(text string, msgs []chat.Message) Example {
	if e.tags != nil {
		// The role tags are special tokens: encode the whole text once,
		// exactly as a prompt is encoded at inference, and label by walking
		// the tags. Everything after an assistant tag up to and including
		// the next tag is trained, except the newline that opens the turn
		// when it is a token of its own.
		ids := e.tok.Encode(text, true)
		labels := make([]int, len(ids))
		inAssistant, opening := false, false
		for i, id := range ids {
			role, isTag := e.tags[id]
			switch {
			case isTag || id == e.end:
				if inAssistant {
					labels[i] = id
				} else {
					labels[i] = IgnoreIndex
				}
				inAssistant = role == chat.RoleAssistant
				opening = inAssistant
			case inAssistant:
				if opening && e.isNewline(id) {
					labels[i] = IgnoreIndex
				} else {
					labels[i] = id
				}
				opening = false
			default:
				labels[i] = IgnoreIndex
			}
		}
		if endsAtCall(msgs) {
			for i := len(ids) - 1; i >= 0; i-- {
				if ids[i] == e.end {
					labels[i] = IgnoreIndex
					break
				}
			}
		}
		return Example{IDs: ids, Labels: labels, Chat: true}
	}
	// The tags are plain text to this tokenizer, or the template is
	// another: encode segment by segment.
	ids := e.start()
	labels := make([]int, len(ids))
	for i := range labels {
		labels[i] = IgnoreIndex
	}
	segs := e.tpl.RenderSegments(msgs)
	if last := &segs[len(segs)-1]; endsAtCall(msgs) && last.Train && e.tpl.Closing != "" && strings.HasSuffix(last.Text, e.tpl.Closing) {
		// TwainBot's conversation closes with "<|end|>" where a turn after
		// a call would hand over with "<|tool|>": do not train the close.
		last.Text = strings.TrimSuffix(last.Text, e.tpl.Closing)
		segs = append(segs, chat.Segment{Text: e.tpl.Closing})
	}
	for _, s := range segs {
		seg := e.tok.Encode(s.Text, false)
		ids = append(ids, seg...)
		for _, id := range seg {
			if s.Train {
				labels = append(labels, id)
			} else {
				labels = append(labels, IgnoreIndex)
			}
		}
	}
	return Example{IDs: ids, Labels: labels, Chat: true}
}

// start returns the ids a segment-by-segment encoding starts with: the
// tokenizer's BOS when it adds one and the template writes none itself.
func (e *Encoder) start() []int {
	if e.tpl.BOS != "" {
		return nil
	}
	return e.tok.Encode("", true)
}

// EncodePrompt encodes the prompt a model continues to write the next
// assistant turn of msgs (which end with a user or tool message): the
// template's Render(msgs, true), encoded exactly as Encode encodes the same
// text inside a training conversation (whole when TwainBot's tags are
// special tokens, else segment by segment).
func (e *Encoder) EncodePrompt(msgs []chat.Message) []int {
	if e.tags != nil {
		return e.tok.Encode(e.tpl.Render(msgs, true), true)
	}
	segs := e.tpl.RenderSegments(msgs)
	// The rendering ends in a prompt segment (msgs end with a user or tool
	// message) with the template's Closing; a generation prompt opens an
	// assistant turn there instead.
	last := &segs[len(segs)-1]
	last.Text = strings.TrimSuffix(last.Text, e.tpl.Closing) + e.tpl.GenerationPrompt
	ids := e.start()
	for _, s := range segs {
		ids = e.tok.AppendEncode(ids, s.Text, false)
	}
	return ids
}

// Stops returns the strings that end a generated assistant turn in the
// encoder's template: its special tokens (TwainBot's role tags, ChatML's
// <|im_start|> and <|im_end|>) and its stop strings.
func (e *Encoder) Stops() []string {
	stops := append([]string(nil), e.tpl.SpecialTokens...)
	for _, s := range e.tpl.StopStrings {
		if !slices.Contains(stops, s) {
			stops = append(stops, s)
		}
	}
	return stops
}

// endsAtCall reports whether a conversation ends with the assistant's tool
// call (synth_tools' call-only conversations): what follows a call is the
// tool's result, which the record does not have, so the "<|end|>" that
// closes the record is not trained.
func endsAtCall(msgs []chat.Message) bool {
	last := msgs[len(msgs)-1]
	return last.Role == chat.RoleAssistant && strings.Contains(last.Content, weather.OpenTag)
}

// roleTag is the tag that opens a TwainBot turn of role: "<|user|>" (the
// turn's prefix without its newline).
func roleTag(role string) string { return strings.TrimSuffix(twainbot().TurnOf(role).Prefix, "\n") }

func (e *Encoder) isNewline(id int) bool {
	s, ok := e.tok.IDToken(id)
	return ok && (s == "\n" || s == "<0x0A>" || s == "▁\n" || s == "Ċ")
}

// Load reads the JSONL files and encodes every record. Errors name the
// file and line. Records longer than maxTokens (when > 0) are cut to
// maxTokens; cut reports how many were.
func (e *Encoder) Load(files []steps.InputFile, maxTokens int) (examples []Example, cut int, err error) {
	for _, f := range files {
		err := steps.ReadJSONL(f.Path, func(line int, raw []byte) error {
			var rec Record
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("not a JSON object with a \"text\" field: %w", err)
			}
			if strings.TrimSpace(rec.Text) == "" {
				return errors.New(`the record has no "text" (every line needs a non-empty "text" field)`)
			}
			ex := e.Encode(rec.Text)
			ex.Record = rec
			ex.Where = fmt.Sprintf("%s:%d", f.Name, line)
			if maxTokens > 0 && len(ex.IDs) > maxTokens {
				ex.IDs, ex.Labels = ex.IDs[:maxTokens], ex.Labels[:maxTokens]
				cut++
			}
			if ex.Trained() == 0 {
				return nil
			}
			examples = append(examples, ex)
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	if len(examples) == 0 {
		return nil, 0, errors.New("the datasets hold no records with trainable text")
	}
	return examples, cut, nil
}

// What pretraining and tokenizer training take from conversations.
const (
	// ConversationsAll uses whole conversations.
	ConversationsAll = "all"
	// ConversationsPrompts uses what the assistant reads but never what it
	// writes: the system, user and tool messages (see PromptDocument).
	ConversationsPrompts = "prompts"
	// ConversationsSkip leaves conversations out.
	ConversationsSkip = "skip"
)

// ConversationModes lists the valid modes.
var ConversationModes = []string{ConversationsAll, ConversationsPrompts, ConversationsSkip}

// PromptDocument turns a conversation into plain text for a base model to
// read: the contents of its system, user and tool messages, each followed
// by a blank line, without role tags and without anything the assistant
// wrote. A system message already in seen is left out (the same tool
// documentation repeated in every conversation is read once); seen may be
// nil. A base pretrained on such documents knows the tool's documentation,
// the questions and the results, but has never seen a question answered
// or a tool called.
func PromptDocument(msgs []chat.Message, seen map[string]bool) string {
	var b strings.Builder
	for _, m := range msgs {
		switch m.Role {
		case chat.RoleAssistant:
			continue
		case chat.RoleSystem:
			if seen != nil {
				if seen[m.Content] {
					continue
				}
				seen[m.Content] = true
			}
		}
		b.WriteString(m.Content)
		b.WriteString("\n\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// PretrainingText returns what pretraining (or tokenizer training) in
// mode takes from a record's text: prose unchanged, and a conversation
// whole, as its PromptDocument, or not at all ("", false).
func PretrainingText(text, mode string, seen map[string]bool) (string, bool) {
	msgs, err := twainbot().Parse(text)
	if err != nil || mode == ConversationsAll {
		return text, true
	}
	if mode == ConversationsSkip {
		return "", false
	}
	doc := PromptDocument(msgs, seen)
	return doc, doc != ""
}
