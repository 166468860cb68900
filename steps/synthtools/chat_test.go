package synthtools

import (
	"reflect"
	"strings"
	"testing"
)

func TestRenderSegments(t *testing.T) {
	msgs := []Message{
		{Role: RoleSystem, Content: "sys"},
		{Role: RoleUser, Content: "weather in SF?"},
		{Role: RoleAssistant, Content: "Thought: x\n<tool_call>get_weather(location=\"San Francisco, CA\", date=\"today\")</tool_call>"},
		{Role: RoleTool, Name: "get_weather", Content: `{"temp_c":14}`},
		{Role: RoleAssistant, Content: "14°C."},
	}
	want := "<|system|>\nsys\n<|user|>\nweather in SF?\n<|assistant|>\nThought: x\n<tool_call>get_weather(location=\"San Francisco, CA\", date=\"today\")</tool_call>\n" +
		"<|tool|>\n{\"temp_c\":14}\n<|assistant|>\n14°C.\n<|end|>"
	if got := Render(msgs); got != want {
		t.Fatalf("Render:\n%s\nwant\n%s", got, want)
	}
	segs := RenderSegments(msgs)
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
	if all.String() != want {
		t.Fatal("segments do not concatenate to Render")
	}
	wantTrain := []string{
		"Thought: x\n<tool_call>get_weather(location=\"San Francisco, CA\", date=\"today\")</tool_call>\n<|tool|>",
		"14°C.\n<|end|>",
	}
	if !reflect.DeepEqual(train, wantTrain) {
		t.Fatalf("trained segments %q, want %q", train, wantTrain)
	}
	back, err := ParseText(want)
	if err != nil || !reflect.DeepEqual(back, msgs) {
		t.Fatalf("ParseText: %v %#v", err, back)
	}
	if p := GenerationPrompt(msgs[:2]); p != "<|system|>\nsys\n<|user|>\nweather in SF?\n<|assistant|>\n" {
		t.Fatalf("GenerationPrompt: %q", p)
	}
	if !strings.HasPrefix(want, GenerationPrompt(msgs[:2])) || !strings.HasPrefix(want, GenerationPrompt(msgs[:4])) {
		t.Fatal("generation prompts are not prefixes of the rendered text")
	}
	// Empty contents survive.
	empty := []Message{{Role: RoleUser, Content: ""}, {Role: RoleAssistant, Content: ""}}
	if back, err := ParseText(Render(empty)); err != nil || !reflect.DeepEqual(back, empty) {
		t.Fatalf("empty contents: %v %#v", err, back)
	}
	for _, prose := range []string{"The river was high that spring.", "<|user|>\nhi\n", "<|end|>", "<|bogus|>\nx\n<|end|>"} {
		if _, err := ParseText(prose); err == nil {
			t.Errorf("ParseText(%q) succeeded", prose)
		}
	}
	if len(Tags()) != 5 {
		t.Fatal(Tags())
	}
}
