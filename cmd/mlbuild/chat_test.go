package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
