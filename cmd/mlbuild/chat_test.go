package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/weather"
)

const phi3Template = "{% for message in messages %}<|user|>\n{{ message['content'] }}<|end|>\n<|assistant|>\n{% endfor %}"

func TestChatSession(t *testing.T) {
	dir := writeTinyModel(t, phi3Template)
	var out, errb bytes.Buffer
	err := cmdChat(context.Background(), []string{"--model", dir, "--max-tokens", "12", "--tools=false"}, strings.NewReader("what's the weather in SF tomorrow?\n\n"), &out, &errb)
	if err != nil {
		t.Fatalf("chat: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "(phi3 template)") || strings.Count(out.String(), "> ") < 2 {
		t.Fatalf("chat output:\n%s", out.String())
	}
}

func TestToolResult(t *testing.T) {
	call := weather.NewCall("San Francisco, CA", "tomorrow")
	got := toolResult(call, nil)
	want, _ := weather.Execute(call)
	if got != want.JSON() {
		t.Fatalf("tool result %s, want %s", got, want.JSON())
	}
	bad := toolResult(weather.Call{}, errors.New("missing closing </tool_call>"))
	var m map[string]string
	if json.Unmarshal([]byte(bad), &m) != nil || !strings.Contains(m["error"], "missing closing") {
		t.Fatalf("error result %s", bad)
	}
}

// TestToolLoop drives the chat loop with a scripted model: it calls the
// tool, gets the executed result back in a tool message, and answers.
func TestToolLoop(t *testing.T) {
	tmpl, err := chat.Lookup("twainbot")
	if err != nil {
		t.Fatal(err)
	}
	call := weather.NewCall("New York, NY", "tuesday")
	want, _ := weather.Execute(call)
	turns := []string{
		"Thought: the user wants New York on Tuesday.\n" + weather.Format(call) + "\n",
		"Bring a coat: it will be " + want.Condition + ".\n",
	}
	var seen [][]chat.Message
	model := func(msgs []chat.Message, w io.Writer) error {
		seen = append(seen, append([]chat.Message(nil), msgs...))
		_, err := io.WriteString(w, turns[len(seen)-1])
		return err
	}
	var out bytes.Buffer
	msgs, err := reply([]chat.Message{{Role: chat.RoleUser, Content: "Do I need a coat in NYC on Tuesday?"}}, tmpl, model, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || len(msgs) != 4 {
		t.Fatalf("%d model turns, conversation %+v", len(seen), msgs)
	}
	tool := msgs[2]
	if tool.Role != chat.RoleTool || tool.Name != weather.ToolName || tool.Content != want.JSON() {
		t.Fatalf("tool message %+v, want the executed result %s", tool, want.JSON())
	}
	if got, err := weather.Parse(msgs[1].Content); err != nil || !weather.ArgsMatch(call, got) {
		t.Fatalf("the assistant's call %q: %v", msgs[1].Content, err)
	}
	if msgs[3].Role != chat.RoleAssistant || !strings.Contains(msgs[3].Content, want.Condition) {
		t.Fatalf("final answer %+v", msgs[3])
	}
	if !strings.Contains(out.String(), "[get_weather] "+want.JSON()) {
		t.Fatalf("the executed result was not shown:\n%s", out.String())
	}
}

// TestToolLoopGivesUp stops a model that only ever calls the tool.
func TestToolLoopGivesUp(t *testing.T) {
	tmpl, _ := chat.Lookup("twainbot")
	model := func(msgs []chat.Message, w io.Writer) error {
		_, err := io.WriteString(w, weather.Format(weather.NewCall("Paris, France", "today")))
		return err
	}
	var out bytes.Buffer
	msgs, err := reply([]chat.Message{{Role: chat.RoleUser, Content: "Paris?"}}, tmpl, model, &out)
	if err != nil || len(msgs) != 1+2*maxToolRounds || !strings.Contains(out.String(), "without answering") {
		t.Fatalf("%v, %d messages:\n%s", err, len(msgs), out.String())
	}
}
