package chat

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// TwainBotName is the name of TwainBot's chat template: the format of the
// conversations the synth_tools step writes, that the trainers train on,
// that eval prompts with and that `mlbuild chat` talks in:
//
//	<|system|>\n{system}\n<|user|>\n{question}\n<|assistant|>\n{thought and call}\n<|tool|>\n{result JSON}\n<|assistant|>\n{answer}\n<|end|>
//
// Every message is its role tag, a newline, its content and a newline; a
// finished conversation ends with "<|end|>". A model stops at "<|tool|>"
// after a tool call and at "<|end|>" after its answer.
const TwainBotName = "twainbot"

// TwainBot returns TwainBot's template (a copy of the built-in "twainbot").
func TwainBot() *Template { return twainbot().clone() }

var twainbot = sync.OnceValue(func() *Template { return mustLookup(TwainBotName) })

func mustLookup(name string) *Template {
	t, err := Lookup(name)
	if err != nil {
		panic(err)
	}
	return t
}

// Segment is a piece of a rendered conversation. Train marks the pieces a
// model is trained to produce (the completion); the others are the prompt,
// whose tokens a trainer masks out of the loss.
type Segment struct {
	Text  string
	Train bool
}

// RenderSegments renders msgs as Render(msgs, false) does, split into
// prompt and completion segments whose texts concatenate to that text.
// The completion is each assistant message's content and the template's
// text that follows it up to and including the first stop string in that
// text (the marker that ends the turn, which the model must learn to
// write: TwainBot's "<|tool|>" after a call and "<|end|>" after an
// answer, Llama-3's "<|eot_id|>"); where that text holds no stop string,
// the content and the turn's suffix. Everything else is prompt. Adjacent
// segments of the same kind are merged.
func (t *Template) RenderSegments(msgs []Message) []Segment {
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
	// open holds the template text written since the last assistant
	// content while it is still looking for the stop string that ends
	// that turn.
	var open strings.Builder
	looking := false
	template := func(text string) {
		if !looking {
			add(text, false)
			return
		}
		open.WriteString(text)
		s := open.String()
		if at, n := firstStop(s, t.StopStrings); at >= 0 {
			add(s[:at+n], true)
			add(s[at+n:], false)
			open.Reset()
			looking = false
		}
	}
	// end closes a turn that holds no stop string: its suffix is trained,
	// the rest (the next turn's opening) is prompt.
	end := func() {
		if !looking {
			return
		}
		s := open.String()
		n := min(len(t.Assistant.Suffix), len(s))
		add(s[:n], true)
		add(s[n:], false)
		open.Reset()
		looking = false
	}
	t.walk(msgs, false, func(p piece) {
		switch {
		case p.content:
			end()
			add(p.text, p.role == RoleAssistant)
			looking = p.role == RoleAssistant
		default:
			template(p.text)
		}
	})
	end()
	return segs
}

// firstStop returns where the earliest stop string begins in s and its
// length (the longest at that position), or -1.
func firstStop(s string, stops []string) (at, n int) {
	at = -1
	for _, st := range stops {
		if i := strings.Index(s, st); i >= 0 && (at < 0 || i < at || (i == at && len(st) > n)) {
			at, n = i, len(st)
		}
	}
	return at, n
}

// piece is one part of a rendered conversation: a message's content or
// the template's text around it.
type piece struct {
	text    string
	content bool
	role    string // the message's role, for content pieces
}

// walk calls emit with the pieces of Render(msgs, gen) in order; their
// texts concatenate to it. Render and RenderSegments share it.
func (t *Template) walk(msgs []Message, gen bool, emit func(piece)) {
	text := func(s string) {
		if s != "" {
			emit(piece{text: s})
		}
	}
	text(t.BOS)
	system, haveSystem := "", false
	if t.SystemInFirstUser && len(msgs) > 0 && msgs[0].Role == RoleSystem {
		system, haveSystem = t.content(msgs[0].Content), true
		msgs = msgs[1:]
		if len(msgs) == 0 || msgs[0].Role != RoleUser {
			// Nothing to merge into: the system prompt becomes a user turn.
			text(t.User.Prefix)
			emit(piece{text: system, content: true, role: RoleSystem})
			text(t.User.Suffix)
			haveSystem = false
		}
	}
	if t.DefaultSystem != "" && len(msgs) > 0 && msgs[0].Role != RoleSystem {
		text(t.System.Prefix)
		emit(piece{text: t.content(t.DefaultSystem), content: true, role: RoleSystem})
		text(t.System.Suffix)
	}
	for _, m := range msgs {
		tu := t.turn(m.Role)
		text(tu.Prefix)
		if haveSystem {
			emit(piece{text: system + t.SystemSeparator, content: true, role: RoleSystem})
			haveSystem = false
		}
		c := t.content(m.Content)
		if m.Role == RoleTool {
			text(t.ToolResult.Prefix)
			emit(piece{text: c, content: true, role: m.Role})
			text(t.ToolResult.Suffix)
		} else {
			emit(piece{text: c, content: true, role: m.Role})
		}
		text(tu.Suffix)
	}
	if gen {
		text(t.GenerationPrompt)
	} else {
		text(t.Closing)
	}
}

// ErrNotAConversation is returned by Parse for a text that is not a
// conversation rendered by the template (plain prose, say).
var ErrNotAConversation = errors.New("chat: not a rendered conversation")

// Parse recovers the messages of a text written by Render(msgs, false).
// It fails, with an error wrapping ErrNotAConversation, on texts the
// template did not write (for example plain prose from other datasets): a
// trainer uses that to tell conversations, whose prompts it masks, from
// plain text, which it trains on whole. A message's content runs to the
// first place where its turn's suffix is followed by another turn or by
// the end of the conversation. Tool messages come back without a Name
// (the name is not part of the text), roles other than the four as user
// messages, and trimmed contents trimmed; a leading system message that is
// the template's DefaultSystem is left out, as Render writes it itself. Templates that merge the system
// prompt into the first user turn, or whose roles open alike, cannot be
// parsed.
func (t *Template) Parse(text string) ([]Message, error) {
	if t.SystemInFirstUser {
		return nil, fmt.Errorf("chat: template %q merges the system prompt into the first user turn and cannot be parsed", t.Name)
	}
	roles := []string{RoleSystem, RoleUser, RoleAssistant, RoleTool}
	for i, a := range roles {
		for _, b := range roles[i+1:] {
			if pa, pb := t.turn(a).Prefix, t.turn(b).Prefix; pa == "" || strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa) {
				return nil, fmt.Errorf("chat: template %q: the %s and %s turns open alike and cannot be parsed", t.Name, a, b)
			}
		}
	}
	rest, ok := strings.CutPrefix(text, t.BOS)
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrNotAConversation, t.BOS)
	}
	if rest, ok = strings.CutSuffix(rest, t.Closing); !ok {
		return nil, fmt.Errorf("%w: it does not end with %q", ErrNotAConversation, t.Closing)
	}
	leading := func(s string) (string, bool) {
		for _, r := range roles {
			if strings.HasPrefix(s, t.turn(r).Prefix) {
				return r, true
			}
		}
		return "", false
	}
	var msgs []Message
	for rest != "" {
		role, ok := leading(rest)
		if !ok {
			return nil, fmt.Errorf("%w: expected a turn at %q", ErrNotAConversation, clip(rest))
		}
		tu := t.turn(role)
		rest = rest[len(tu.Prefix):]
		end := -1
		for i := 0; i+len(tu.Suffix) <= len(rest); i++ {
			if !strings.HasPrefix(rest[i:], tu.Suffix) {
				continue
			}
			after := rest[i+len(tu.Suffix):]
			if _, next := leading(after); next || after == "" {
				end = i
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("%w: the %s turn at %q is not closed by %q", ErrNotAConversation, role, clip(rest), tu.Suffix)
		}
		content := rest[:end]
		if role == RoleTool {
			content = strings.TrimPrefix(strings.TrimSuffix(content, t.ToolResult.Suffix), t.ToolResult.Prefix)
		}
		msgs = append(msgs, Message{Role: role, Content: content})
		rest = rest[end+len(tu.Suffix):]
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: it holds no messages", ErrNotAConversation)
	}
	if len(msgs) > 1 && t.DefaultSystem != "" && msgs[0].Role == RoleSystem && msgs[0].Content == t.content(t.DefaultSystem) {
		// Render writes the default system message itself.
		msgs = msgs[1:]
	}
	return msgs, nil
}

func clip(s string) string {
	if len(s) > 30 {
		return s[:30] + "…"
	}
	return s
}
