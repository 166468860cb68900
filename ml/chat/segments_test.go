package chat

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// twainbotConversation is a TwainBot conversation with a call, its result
// and an answer.
var twainbotConversation = []Message{
	{Role: RoleSystem, Content: "sys"},
	{Role: RoleUser, Content: "weather in SF?"},
	{Role: RoleAssistant, Content: "Thought: x\n<tool_call>get_weather(location=\"San Francisco, CA\", date=\"today\")</tool_call>"},
	{Role: RoleTool, Name: "get_weather", Content: `{"temp_c":14}`},
	{Role: RoleAssistant, Content: "14°C."},
}

func TestTwainBotFormat(t *testing.T) {
	tb := TwainBot()
	want := "<|system|>\nsys\n<|user|>\nweather in SF?\n<|assistant|>\nThought: x\n<tool_call>get_weather(location=\"San Francisco, CA\", date=\"today\")</tool_call>\n" +
		"<|tool|>\n{\"temp_c\":14}\n<|assistant|>\n14°C.\n<|end|>"
	if got := tb.Render(twainbotConversation, false); got != want {
		t.Fatalf("Render:\n%s\nwant\n%s", got, want)
	}
	if p := tb.Render(twainbotConversation[:2], true); p != "<|system|>\nsys\n<|user|>\nweather in SF?\n<|assistant|>\n" {
		t.Fatalf("generation prompt: %q", p)
	}
	for _, n := range []int{2, 4} {
		if !strings.HasPrefix(want, tb.Render(twainbotConversation[:n], true)) {
			t.Fatalf("the generation prompt of %d messages is not a prefix of the rendered text", n)
		}
	}
	if got, want := tb.Stops(), []string{"<|tool|>", "<|end|>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("stops %q, want %q", got, want)
	}
	if got, want := tb.SpecialTokens, []string{"<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("special tokens %q, want %q", got, want)
	}
	// A copy: changing it leaves the built-in template alone.
	tb.StopStrings[0] = "x"
	if TwainBot().StopStrings[0] != "<|tool|>" {
		t.Fatal("TwainBot returned the built-in template itself")
	}
}

func TestRenderSegments(t *testing.T) {
	tb := TwainBot()
	segs := tb.RenderSegments(twainbotConversation)
	var train []string
	var all strings.Builder
	for i, s := range segs {
		all.WriteString(s.Text)
		if i > 0 && segs[i-1].Train == s.Train {
			t.Errorf("segments %d and %d not merged", i-1, i)
		}
		if s.Train {
			train = append(train, s.Text)
		}
	}
	if all.String() != tb.Render(twainbotConversation, false) {
		t.Fatal("segments do not concatenate to Render")
	}
	// The model learns to write its turn and the tag that ends it:
	// "<|tool|>" after a call, "<|end|>" after the answer.
	wantTrain := []string{
		"Thought: x\n<tool_call>get_weather(location=\"San Francisco, CA\", date=\"today\")</tool_call>\n<|tool|>",
		"14°C.\n<|end|>",
	}
	if !reflect.DeepEqual(train, wantTrain) {
		t.Fatalf("trained segments %q, want %q", train, wantTrain)
	}
	// Every family: the segments concatenate to Render, and each trained
	// segment ends with the stop string that closes the assistant's turn.
	conv := conversation(t)
	for _, name := range Names() {
		tpl, _ := Lookup(name)
		segs := tpl.RenderSegments(conv)
		var all strings.Builder
		n := 0
		for _, s := range segs {
			all.WriteString(s.Text)
			if s.Train {
				n++
				if _, stop, ok := tpl.Cut(s.Text); !ok || !strings.HasSuffix(s.Text, stop) {
					t.Errorf("%s: trained segment %q does not end at a stop string", name, s.Text)
				}
			}
		}
		if all.String() != tpl.Render(conv, false) {
			t.Errorf("%s: segments do not concatenate to Render", name)
		}
		if n != 2 {
			t.Errorf("%s: %d trained segments, want one per assistant turn", name, n)
		}
	}
	// A turn whose template text holds no stop string trains its suffix.
	turns := []Message{{Role: RoleUser, Content: "a"}, {Role: RoleAssistant, Content: "b"}, {Role: RoleUser, Content: "c"}}
	segs = tb.RenderSegments(turns)
	if len(segs) != 3 || segs[1] != (Segment{Text: "b\n", Train: true}) {
		t.Errorf("assistant turn followed by a user turn: %+v", segs)
	}
}

func TestParse(t *testing.T) {
	tb := TwainBot()
	text := tb.Render(twainbotConversation, false)
	back, err := tb.Parse(text)
	want := append([]Message(nil), twainbotConversation...)
	want[3].Name = "" // the name is not part of the text
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("Parse: %v %#v", err, back)
	}
	// Empty contents survive.
	empty := []Message{{Role: RoleUser, Content: ""}, {Role: RoleAssistant, Content: ""}}
	if back, err := tb.Parse(tb.Render(empty, false)); err != nil || !reflect.DeepEqual(back, empty) {
		t.Fatalf("empty contents: %v %#v", err, back)
	}
	for _, prose := range []string{"The river was high that spring.", "<|user|>\nhi\n", "<|end|>", "<|bogus|>\nx\n<|end|>", "<|user|>\nhi<|end|>"} {
		if _, err := tb.Parse(prose); !errors.Is(err, ErrNotAConversation) {
			t.Errorf("Parse(%q): %v, want ErrNotAConversation", prose, err)
		}
	}
	// Every family that can be parsed gives its messages back.
	conv := conversation(t)
	for _, name := range Names() {
		tpl, _ := Lookup(name)
		back, err := tpl.Parse(tpl.Render(conv, false))
		if tpl.SystemInFirstUser || tpl.User.Prefix == tpl.Tool.Prefix {
			// Mistral merges the system prompt; Mistral and Phi-3 write
			// tool results as user turns.
			if err == nil {
				t.Errorf("%s: Parse succeeded on a template whose turns are ambiguous", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for i := range back {
			w := conv[i]
			w.Name = ""
			if tpl.TrimContent {
				w.Content = trim(w.Content)
			}
			if back[i] != w {
				t.Errorf("%s message %d: %#v, want %#v", name, i, back[i], w)
			}
		}
	}
}
