package chat

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// fuzzRoles are the roles fuzzMessages picks from: the four, an unknown
// one (rendered as a user turn) and an empty one.
var fuzzRoles = []string{RoleSystem, RoleUser, RoleAssistant, RoleTool, "narrator", ""}

// fuzzMessages splits s into messages at '\x1e'; each message's first byte
// picks its role, the rest is its content. A tool message gets a Name.
func fuzzMessages(s string) []Message {
	if s == "" {
		return nil
	}
	var msgs []Message
	for _, part := range strings.Split(s, "\x1e") {
		m := Message{Role: RoleUser}
		if part != "" {
			m.Role = fuzzRoles[int(part[0])%len(fuzzRoles)]
			m.Content = part[1:]
		}
		if m.Role == RoleTool {
			m.Name = "get_weather"
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// fuzzSeedConversation encodes the golden conversation for fuzzMessages.
func fuzzSeedConversation(f *testing.F) string {
	data, err := os.ReadFile("testdata/conversation.json")
	if err != nil {
		f.Fatal(err)
	}
	var msgs []Message
	if err := json.Unmarshal(data, &msgs); err != nil {
		f.Fatal(err)
	}
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		r := 0
		for j, role := range fuzzRoles {
			if role == m.Role {
				r = j
			}
		}
		parts[i] = string(rune('0'+r)) + m.Content
	}
	return strings.Join(parts, "\x1e")
}

// markers are the strings of t's rendering that a content must not hold
// for Parse to recover it: the turns' and wrappers' texts (trimmed of
// white space), BOS, Closing and the stop strings.
func markers(t *Template) []string {
	var out []string
	add := func(s string) {
		if s = trim(s); s != "" {
			out = append(out, s)
		}
	}
	for _, tu := range []Turn{t.System, t.User, t.Assistant, t.Tool, t.ToolResult} {
		add(tu.Prefix)
		add(tu.Suffix)
	}
	add(t.BOS)
	add(t.Closing)
	for _, s := range t.StopStrings {
		add(s)
	}
	return out
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// FuzzParseTemplates feeds arbitrary JSON to ParseTemplates. It must
// return templates or an error; an accepted list has unique non-empty
// names and non-empty stop strings, survives a JSON round trip, and every
// template in it renders, segments, cuts and parses (or refuses to parse)
// a conversation without panicking, with its segments concatenating to
// its rendering.
func FuzzParseTemplates(f *testing.F) {
	f.Add(builtinJSON)
	for _, t := range builtin() {
		b, err := json.Marshal([]*Template{t})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`[]`, `null`, `[null]`, `[{}]`, `[{"name":"x"}]`, `[{"name":"x","stops":[""]}]`,
		`[{"name":"x","stops":["a"]},{"name":"x","stops":["b"]}]`,
		`[{"name":"x","stops":["a"],"frob":1}]`,
		`[{"name":"x","stops":["\n"],"user":{"prefix":"","suffix":""},"assistant":{"prefix":"A","suffix":"A"},"system_in_first_user":true}]`,
	} {
		f.Add([]byte(s))
	}
	msgs := []Message{
		{Role: RoleSystem, Content: "sys"},
		{Role: RoleUser, Content: "What's the weather in Paris?"},
		{Role: RoleAssistant, Content: `{"name":"get_weather"}`},
		{Role: RoleTool, Name: "get_weather", Content: `{"temp":3}`},
		{Role: RoleAssistant, Content: " Cold. "},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseTemplates(data)
		if err != nil {
			if ts != nil {
				t.Fatalf("ParseTemplates returned templates with error %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tm := range ts {
			if tm == nil || tm.Name == "" || seen[tm.Name] || len(tm.StopStrings) == 0 {
				t.Fatalf("accepted template %+v", tm)
			}
			seen[tm.Name] = true
			for _, s := range tm.StopStrings {
				if s == "" {
					t.Fatalf("template %q accepted with an empty stop string", tm.Name)
				}
			}
		}
		enc, err := json.Marshal(ts)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseTemplates(enc)
		if err != nil {
			t.Fatalf("the encoding of accepted templates is rejected: %v\n%s", err, enc)
		}
		if enc2, _ := json.Marshal(back); string(enc2) != string(enc) {
			t.Fatalf("JSON round trip changed the templates:\n%s\n%s", enc, enc2)
		}
		for _, tm := range ts {
			full := tm.Render(msgs, false)
			var b strings.Builder
			for _, s := range tm.RenderSegments(msgs) {
				b.WriteString(s.Text)
			}
			if b.String() != full {
				t.Fatalf("template %q: segments concatenate to %q, not %q", tm.Name, b.String(), full)
			}
			_ = tm.Render(msgs, true)
			content, stop, ok := tm.Cut(full)
			if ok != (stop != "") || len(content) > len(full) {
				t.Fatalf("template %q: Cut = %q, %q, %v", tm.Name, content, stop, ok)
			}
			if got, err := tm.Parse(full); (err == nil) == (got == nil) {
				t.Fatalf("template %q: Parse = %+v, %v", tm.Name, got, err)
			}
			_, _ = tm.Jinja()
		}
	})
}

// FuzzCut cuts arbitrary generated text with each built-in template: the
// stop found must be the template's earliest stop string in the text (the
// longest one there), the content must be a part of the text before it
// holding no stop string, and no stop found means the text holds none.
// Then a conversation ending in an assistant message whose content holds
// none of the template's markers is rendered; the continuation of its
// generation prompt, cut, gives that content back (trimmed where the
// template trims).
func FuzzCut(f *testing.F) {
	conv := fuzzSeedConversation(f)
	for i, tm := range builtin() {
		f.Add(uint8(i), "The forecast says rain."+tm.Assistant.Suffix+tm.StopStrings[0]+" and more", conv, "Bring an umbrella, and a lawyer.")
		f.Add(uint8(i), tm.Render([]Message{{Role: RoleAssistant, Content: "x"}}, false), "1hi", " padded \n")
		f.Add(uint8(i), "no stop at all", "", "")
		f.Add(uint8(i), strings.Join(tm.StopStrings, ""), "0sys\x1e1q", "<|end|>")
	}
	f.Fuzz(func(t *testing.T, idx uint8, generated, conversation, answer string) {
		tm := builtin()[int(idx)%len(builtin())]
		content, stop, ok := tm.Cut(generated)
		at, n := firstStop(generated, tm.StopStrings)
		if ok != (at >= 0) {
			t.Fatalf("Cut(%q) ok = %v, but firstStop = %d", generated, ok, at)
		}
		before := generated
		if ok {
			if stop != generated[at:at+n] {
				t.Fatalf("Cut(%q) stop = %q, want %q", generated, stop, generated[at:at+n])
			}
			before = generated[:at]
		} else if stop != "" {
			t.Fatalf("Cut(%q) stop = %q without ok", generated, stop)
		}
		if !strings.Contains(before, content) {
			t.Fatalf("Cut(%q) content %q is not part of %q", generated, content, before)
		}
		if containsAny(content, tm.StopStrings) {
			t.Fatalf("Cut(%q) content %q holds a stop string", generated, content)
		}

		msgs := fuzzMessages(conversation)
		prompt := tm.Render(msgs, true)
		full := tm.Render(append(msgs, Message{Role: RoleAssistant, Content: answer}), false)
		if !strings.HasPrefix(full, prompt) {
			// The generation prompt opens the assistant turn only where
			// the previous turn leaves room for it.
			return
		}
		if containsAny(answer, markers(tm)) {
			return
		}
		want := tm.content(answer)
		if strings.HasPrefix(want, tm.Assistant.Prefix) && !strings.HasSuffix(tm.GenerationPrompt, tm.Assistant.Prefix) {
			return // Cut takes the model's leading prefix text as the template's
		}
		got, _, ok := tm.Cut(full[len(prompt):])
		if got != want {
			t.Fatalf("template %q: Cut(%q) = %q (ok %v), want %q", tm.Name, full[len(prompt):], got, ok, want)
		}
	})
}

// FuzzParseRender renders arbitrary conversations with each built-in
// template. The segments must concatenate to Render's text, be non-empty
// and alternate between prompt and completion, and hold a completion only
// where the conversation has an assistant message. For a template that
// can be parsed, Parse(Render(msgs)) gives msgs back (roles other than the
// four as user, no tool Name, contents trimmed where the template trims)
// when no content holds one of the template's markers; an empty
// conversation is not a conversation.
func FuzzParseRender(f *testing.F) {
	conv := fuzzSeedConversation(f)
	for i := range builtin() {
		f.Add(uint8(i), conv)
		f.Add(uint8(i), "1What's up?\x1e2 Nothing. \x1e4aside\x1e3{}")
		f.Add(uint8(i), "")
		f.Add(uint8(i), "1\x1e2\x1e\x1e3")
	}
	f.Fuzz(func(t *testing.T, idx uint8, conversation string) {
		tm := builtin()[int(idx)%len(builtin())]
		msgs := fuzzMessages(conversation)
		text := tm.Render(msgs, false)
		segs := tm.RenderSegments(msgs)
		var b strings.Builder
		hasAssistant := false
		for _, m := range msgs {
			hasAssistant = hasAssistant || m.Role == RoleAssistant
		}
		for i, s := range segs {
			if s.Text == "" {
				t.Fatalf("segment %d is empty", i)
			}
			if i > 0 && segs[i-1].Train == s.Train {
				t.Fatalf("segments %d and %d are both Train=%v", i-1, i, s.Train)
			}
			if s.Train && !hasAssistant {
				t.Fatalf("completion segment %q in a conversation without an assistant message", s.Text)
			}
			b.WriteString(s.Text)
		}
		if b.String() != text {
			t.Fatalf("segments concatenate to %q, Render wrote %q", b.String(), text)
		}

		got, err := tm.Parse(text)
		if err != nil && !errors.Is(err, ErrNotAConversation) {
			if strings.Contains(err.Error(), "cannot be parsed") {
				return // the template's turns cannot be told apart, by design
			}
			t.Fatalf("Parse: %v", err)
		}
		if len(msgs) == 0 {
			if err == nil {
				t.Fatalf("Parse(%q) of no messages = %+v", text, got)
			}
			return
		}
		mk := markers(tm)
		want := make([]Message, len(msgs))
		for i, m := range msgs {
			if containsAny(m.Content, mk) {
				return
			}
			role := m.Role
			switch role {
			case RoleSystem, RoleUser, RoleAssistant, RoleTool:
			default:
				role = RoleUser
			}
			want[i] = Message{Role: role, Content: tm.content(m.Content)}
		}
		if err != nil {
			t.Fatalf("Parse(Render(%+v)) = %v\n%q", msgs, err, text)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(Render(msgs)) =\n%+v\nwant\n%+v\ntext %q", got, want, text)
		}
	})
}
