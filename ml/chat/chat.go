// Package chat renders conversations into the prompt text a chat model was
// trained on. Each model family's chat template is data, not code: a table
// of strings (BOS, the prefix and suffix of every role's turn, the
// generation prompt, what closes a finished conversation, stop strings) and
// a few switches (the system prompt merged into the first user turn, as
// Mistral does; contents trimmed, as Llama-3 does). The built-in tables
// live in templates.json, embedded in the binary:
//
//   - "llama3": Meta Llama-3 Instruct (<|start_header_id|>user<|end_header_id|>\n\n...<|eot_id|>)
//   - "mistral": Mistral-7B-Instruct v0.1/v0.2, Mixtral (<s> [INST] ... [/INST] ...</s>)
//   - "twainbot": TwainBot's format, the synth_tools step's training data (<|user|>\n...\n)
//   - "phi3": Microsoft Phi-3 Instruct (<|user|>\n...<|end|>\n)
//   - "smollm2": Hugging Face SmolLM2 Instruct (ChatML with SmolLM2's default system message)
//   - "chatml": ChatML (<|im_start|>user\n...<|im_end|>\n), as Qwen2 and others use it
//
// Render gives exactly the text of the family's official Jinja chat
// template (see the tests, whose expected strings were produced by
// rendering the real templates). Mistral and Phi-3 have no tool role; their
// tables render a tool result as a user turn wrapped in <tool_response>
// tags, the same text their official templates produce for that user
// message. Tool definitions travel in the system message (WithTools), the
// way the synth_tools data carries weather.SystemPrompt(); tool calls are
// plain assistant text in the <tool_call>...</tool_call> wire format of
// package weather.
//
// Render's text holds the special tokens as text (e.g. "<|eot_id|>",
// "<s>"). Encode it with the model's tokenizer without adding special
// tokens (tokenizer.Encode(text, false)): the BOS is already in the text,
// and the tokenizer matches the special-token text as the special tokens.
package chat

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Roles of the messages in a conversation (the strings of the Hugging Face
// chat format).
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one turn of a conversation, as the Hugging Face chat format
// and the synth_tools records write it ({"role", "name", "content"}, in
// that order). Name is the tool that produced a tool message's content;
// no built-in template writes it.
type Message struct {
	Role    string `json:"role"`
	Name    string `json:"name,omitempty"`
	Content string `json:"content"`
}

// Turn is the text written around one message's content.
type Turn struct {
	Prefix string `json:"prefix"`
	Suffix string `json:"suffix"`
}

// DetectRule says how Detect recognizes a family in a tokenizer_config.json.
type DetectRule struct {
	// TemplateContains: the chat_template matches when it contains every
	// string of at least one of the lists.
	TemplateContains [][]string `json:"template_contains,omitempty"`
	// TemplateExcludes: a chat_template containing any of these strings is
	// not this family (Llama-2's "<<SYS>>" beside Mistral's "[INST]").
	TemplateExcludes []string `json:"template_excludes,omitempty"`
	// Tokens: without a chat_template, the config matches when its added
	// tokens hold every string of at least one of the lists.
	Tokens [][]string `json:"tokens,omitempty"`
	// SentencePieceDefault: without a chat_template and with no other
	// family's tokens, a config whose only special tokens are <unk>, <s>
	// and </s> is taken to be this family.
	SentencePieceDefault bool `json:"sentencepiece_default,omitempty"`
}

// Template is one family's chat format as data. The zero Turn writes the
// content alone.
type Template struct {
	// Name is the family's name, the key of Lookup.
	Name string `json:"name"`
	// Description says what the format looks like, for people.
	Description string `json:"description"`
	// BOS is written once, before everything else.
	BOS string `json:"bos,omitempty"`
	// System, User, Assistant and Tool are the turns of each role.
	System    Turn `json:"system"`
	User      Turn `json:"user"`
	Assistant Turn `json:"assistant"`
	Tool      Turn `json:"tool"`
	// ToolResult wraps a tool message's content inside its Tool turn
	// (for families without a tool role, whose Tool turn is a user turn).
	ToolResult Turn `json:"tool_result"`
	// SystemInFirstUser: a system message that comes first is not a turn of
	// its own; its content and SystemSeparator go in front of the content
	// of the first user message (Mistral). A system message that is not
	// followed by a user message is then rendered as a user turn.
	SystemInFirstUser bool   `json:"system_in_first_user,omitempty"`
	SystemSeparator   string `json:"system_separator,omitempty"`
	// DefaultSystem is the system message rendered in front of a
	// conversation that does not open with one (SmolLM2's "You are a
	// helpful AI assistant named SmolLM, ..."); "" for none.
	DefaultSystem string `json:"default_system,omitempty"`
	// TrimContent: every content is trimmed of leading and trailing white
	// space (Llama-3's "| trim").
	TrimContent bool `json:"trim_content,omitempty"`
	// GenerationPrompt is written after the messages when Render is asked
	// for a generation prompt: the opening of the assistant's turn.
	GenerationPrompt string `json:"generation_prompt,omitempty"`
	// Closing is written after the messages otherwise, closing a finished
	// conversation (Phi-3's EOS, TwainBot's <|end|>).
	Closing string `json:"closing,omitempty"`
	// StopStrings end generation: the text or special tokens that close an
	// assistant turn.
	StopStrings []string `json:"stops"`
	// SpecialTokens are the template's strings that the family's tokenizer
	// has as single special tokens.
	SpecialTokens []string `json:"special_tokens,omitempty"`
	// Detect says how Detect recognizes the family.
	Detect DetectRule `json:"detect"`
}

//go:embed templates.json
var builtinJSON []byte

// builtin returns the built-in templates in file order (Detect's order),
// parsed on first use: a program that never renders a chat does not pay for
// it at start-up.
var builtin = sync.OnceValue(func() []*Template { return mustParseList(builtinJSON) })

func mustParseList(data []byte) []*Template {
	ts, err := ParseTemplates(data)
	if err != nil {
		panic("chat: templates.json: " + err.Error())
	}
	return ts
}

// ParseTemplates reads a JSON array of templates in the format of the
// built-in templates.json, so that a family can be added without code.
// Every template needs a name unique in the list and at least one stop
// string.
func ParseTemplates(data []byte) ([]*Template, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var ts []*Template
	if err := dec.Decode(&ts); err != nil {
		return nil, fmt.Errorf("invalid template JSON: %w", err)
	}
	seen := map[string]bool{}
	for i, t := range ts {
		if t == nil || t.Name == "" {
			return nil, fmt.Errorf("template %d has no name", i)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("template %q is defined twice", t.Name)
		}
		seen[t.Name] = true
		if t.DefaultSystem != "" && t.SystemInFirstUser {
			return nil, fmt.Errorf("template %q has a default system message and merges the system message into the first user turn; it can have one or the other", t.Name)
		}
		if len(t.StopStrings) == 0 {
			return nil, fmt.Errorf("template %q has no stop strings", t.Name)
		}
		for _, s := range t.StopStrings {
			if s == "" {
				return nil, fmt.Errorf("template %q has an empty stop string", t.Name)
			}
		}
	}
	return ts, nil
}

// Names returns the names of the built-in templates, sorted.
func Names() []string {
	names := make([]string, len(builtin()))
	for i, t := range builtin() {
		names[i] = t.Name
	}
	sort.Strings(names)
	return names
}

// Lookup returns a copy of the built-in template name.
func Lookup(name string) (*Template, error) {
	for _, t := range builtin() {
		if t.Name == name {
			return t.clone(), nil
		}
	}
	return nil, fmt.Errorf("chat: unknown chat template %q (known: %s)", name, strings.Join(Names(), ", "))
}

func (t *Template) clone() *Template {
	c := *t
	c.StopStrings = append([]string(nil), t.StopStrings...)
	c.SpecialTokens = append([]string(nil), t.SpecialTokens...)
	return &c
}

// TurnOf returns the turn of role; unknown roles are rendered as user
// turns.
func (t *Template) TurnOf(role string) Turn { return t.turn(role) }

// turn returns the turn of role; unknown roles are rendered as user turns.
func (t *Template) turn(role string) Turn {
	switch role {
	case RoleSystem:
		return t.System
	case RoleAssistant:
		return t.Assistant
	case RoleTool:
		return t.Tool
	default:
		return t.User
	}
}

// Render renders msgs as the family's prompt text. With
// addGenerationPrompt the text ends with the opening of an assistant turn
// (the prompt a model continues); without it, with the template's Closing
// (a finished conversation, e.g. training text). Messages of roles other
// than system, user, assistant and tool are rendered as user turns.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) string {
	var b strings.Builder
	t.walk(msgs, addGenerationPrompt, func(p piece) { b.WriteString(p.text) })
	return b.String()
}

func (t *Template) content(s string) string {
	if t.TrimContent {
		return trim(s)
	}
	return s
}

// trim is Jinja's trim filter, Python's str.strip(): white space is
// unicode.IsSpace plus the separators U+001C to U+001F.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

// Stops returns the strings at which generation of an assistant turn
// stops (a copy). A generator stops at the first of them that appears in
// its output, or at a token whose text is one of them.
func (t *Template) Stops() []string { return append([]string(nil), t.StopStrings...) }

// Cut cuts a generated continuation of Render(msgs, true) at the first stop
// string and returns the assistant's content (what belongs in an assistant
// Message), the stop string found, and whether one was found. The part of
// the assistant turn's suffix before the stop (TwainBot's newline) is
// removed from the content, as is the part of the turn's prefix that the
// generation prompt does not write (Mistral's leading space), and the
// content is trimmed where the template trims contents.
func (t *Template) Cut(generated string) (content, stop string, ok bool) {
	at, n := firstStop(generated, t.StopStrings)
	content = generated
	if at >= 0 {
		stop = generated[at : at+n]
		content = generated[:at]
		ok = true
	}
	// The suffix of an assistant turn, up to where a stop string begins in
	// it, is the template's text, not the model's content.
	suf := t.Assistant.Suffix
	for _, s := range t.StopStrings {
		if i := strings.Index(suf, s); i >= 0 {
			suf = suf[:i]
		}
	}
	if ok {
		content = strings.TrimSuffix(content, suf)
	}
	// Where the generation prompt does not open the assistant turn (Mistral
	// has none: the model writes the turn's leading space itself), the
	// turn's prefix is the template's text too. A SentencePiece decoder may
	// already have dropped that leading space.
	if !strings.HasSuffix(t.GenerationPrompt, t.Assistant.Prefix) {
		content = strings.TrimPrefix(content, t.Assistant.Prefix)
	}
	if t.TrimContent {
		content = trim(content)
	}
	return content, stop, ok
}

// WithTools returns msgs with the tool block (e.g. weather.SystemPrompt())
// in the system message: the block becomes the system message when there
// is none, and otherwise follows the existing system prompt after a blank
// line. Every built-in family carries tool definitions this way (none of
// their official templates has a tool-definition syntax for the tokenizers
// used here), exactly as the synth_tools training data does.
func WithTools(msgs []Message, toolBlock string) []Message {
	out := make([]Message, 0, len(msgs)+1)
	if len(msgs) > 0 && msgs[0].Role == RoleSystem {
		sys := msgs[0]
		if sys.Content == "" {
			sys.Content = toolBlock
		} else {
			sys.Content += "\n\n" + toolBlock
		}
		out = append(out, sys)
		return append(out, msgs[1:]...)
	}
	out = append(out, Message{Role: RoleSystem, Content: toolBlock})
	return append(out, msgs...)
}
