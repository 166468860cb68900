package synthtools

import (
	"fmt"
	"strings"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// Roles of the messages in a conversation.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// EndTag closes a rendered conversation. Every role is rendered as the tag
// "<|ROLE|>" (see Tag).
const EndTag = "<|end|>"

// Message is one turn of a conversation. Name is set on tool messages only
// (the tool that produced the content).
type Message struct {
	Role    string `json:"role"`
	Name    string `json:"name,omitempty"`
	Content string `json:"content"`
}

// Tag returns the role tag that opens a turn of role: "<|user|>" etc.
func Tag(role string) string { return "<|" + role + "|>" }

// Tags returns every tag of the chat format (the four role tags and
// EndTag), the strings a tokenizer may register as special tokens and a
// generator may stop at.
func Tags() []string {
	return []string{Tag(RoleSystem), Tag(RoleUser), Tag(RoleAssistant), Tag(RoleTool), EndTag}
}

// Segment is a piece of a rendered conversation. Train marks the pieces a
// model is trained to produce (the completion); the others are the prompt,
// whose tokens a trainer masks out of the loss (label -100).
type Segment struct {
	Text  string
	Train bool
}

// Render renders a conversation as plain text, the "text" field of a
// synth_tools record:
//
//	<|system|>\n{system}\n<|user|>\n{question}\n<|assistant|>\n{thought and call}\n<|tool|>\n{result JSON}\n<|assistant|>\n{answer}\n<|end|>
//
// that is, every message as its role tag, a newline, its content and a
// newline, and EndTag after the last one (no trailing newline). Render(m)
// equals the concatenation of the texts of RenderSegments(m).
func Render(msgs []Message) string {
	var b strings.Builder
	for _, s := range RenderSegments(msgs) {
		b.WriteString(s.Text)
	}
	return b.String()
}

// RenderSegments renders msgs like Render, split into prompt and
// completion segments. The completion (Train) segments are each assistant
// message's content, its newline and the tag that follows it (the next
// message's role tag, or EndTag after the last message): the model learns
// to write the turn and then to stop, by emitting "<|tool|>" after a tool
// call and "<|end|>" after its final answer. Everything else (role tags
// that open turns, system, user and tool contents) is prompt.
func RenderSegments(msgs []Message) []Segment {
	var segs []Segment
	add := func(text string, train bool) {
		if text == "" {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].Train == train {
			segs[n-1].Text += text
			return
		}
		segs = append(segs, Segment{Text: text, Train: train})
	}
	prevAssistant := false
	for _, m := range msgs {
		add(Tag(m.Role), prevAssistant)
		add("\n", false)
		add(m.Content+"\n", m.Role == RoleAssistant)
		prevAssistant = m.Role == RoleAssistant
	}
	add(EndTag, prevAssistant)
	return segs
}

// GenerationPrompt renders msgs (typically system and user, or up to a tool
// result) followed by the opening of an assistant turn, "<|assistant|>\n":
// the prompt a model continues. Generation should stop at "<|tool|>" (a
// tool call was made: execute it, append the tool message and continue) or
// at "<|end|>".
func GenerationPrompt(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(Tag(m.Role))
		b.WriteByte('\n')
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	b.WriteString(Tag(RoleAssistant))
	b.WriteByte('\n')
	return b.String()
}

// ParseText recovers the messages of a text written by Render. It fails on
// texts that are not rendered conversations (for example plain prose from
// other datasets): a trainer can use that to tell chat records, whose
// prompts it masks, from plain text, which it trains on whole. Tool
// messages get Name "get_weather"; the name is not part of the text.
func ParseText(text string) ([]Message, error) {
	rest, ok := strings.CutSuffix(text, "\n"+EndTag)
	if !ok {
		return nil, fmt.Errorf("text does not end with %q", EndTag)
	}
	rest += "\n"
	var msgs []Message
	for rest != "" {
		role, ok := leadingRole(rest)
		if !ok {
			return nil, fmt.Errorf("expected a role tag at %q", clip(rest))
		}
		rest = rest[len(Tag(role))+1:]
		// The content runs to the next "\n<|role|>\n" or to the end.
		end := len(rest) - 1
		for i := 0; i < len(rest)-1; i++ {
			if rest[i] == '\n' {
				if _, ok := leadingRole(rest[i+1:]); ok {
					end = i
					break
				}
			}
		}
		m := Message{Role: role, Content: rest[:end]}
		if role == RoleTool {
			m.Name = weather.ToolName
		}
		msgs = append(msgs, m)
		rest = rest[end+1:]
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("no messages")
	}
	return msgs, nil
}

// leadingRole reports whether s starts with a role tag and a newline.
func leadingRole(s string) (string, bool) {
	for _, r := range []string{RoleSystem, RoleUser, RoleAssistant, RoleTool} {
		if strings.HasPrefix(s, Tag(r)+"\n") {
			return r, true
		}
	}
	return "", false
}

func clip(s string) string {
	if len(s) > 30 {
		return s[:30] + "…"
	}
	return s
}
