package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// maxToolRounds bounds how many tool calls one user turn may make.
const maxToolRounds = 3

// cmdChat implements `mlbuild chat --model DIR`: a conversation with the
// model through its chat template, with the get_weather tool. When the
// model writes a tool call, mlbuild parses it, runs the tool (the same
// deterministic mock the training data and eval use), feeds the result
// back and lets the model answer.
func cmdChat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("chat", stdout, stderr)
	model := fs.String("model", "", "Hugging Face model directory (config.json, safetensors weights, tokenizer.json, tokenizer_config.json) or llama-architecture .gguf file")
	maxTokens := fs.Int("max-tokens", 256, "most tokens per model reply")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy decoding")
	seed := fs.Uint64("seed", 0, "sampling seed")
	system := fs.String("system", "", "a system prompt, placed before the tool's description")
	tools := fs.Bool("tools", false, "also describe the get_weather tool in the system message (about 1 KB of text), for a model fine-tuned with that description (synth_tools' default system_prompt); the pipelines here train without it, so the tool is known to the model and the default leaves it out. The tool runs either way")
	device := deviceFlag(fs)
	if _, err := parseInterleaved(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2}
	}
	if *model == "" {
		fmt.Fprintln(stderr, "mlbuild chat: --model DIR is required")
		return exitError{2}
	}
	g, err := newGenerator(*model, true, device.open(fs, stderr))
	if err != nil {
		return err
	}
	opts := llama.GenOptions{MaxTokens: *maxTokens, Temperature: *temperature, Seed: *seed}
	var msgs []chat.Message
	if *system != "" {
		msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: *system})
	}
	if *tools {
		msgs = chat.WithTools(msgs, weather.SystemPrompt())
	}
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	fmt.Fprintf(stdout, "Chatting with %s (%s template). An empty line or end of input ends the chat.\n", *model, g.tmpl.Name)
	for {
		fmt.Fprint(stdout, "> ")
		if !in.Scan() {
			fmt.Fprintln(stdout)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		if line == "" {
			return nil
		}
		msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: line})
		model := func(msgs []chat.Message, w io.Writer) error {
			return g.stream(ctx, g.encodeChat(msgs), opts, w)
		}
		if msgs, err = reply(msgs, g.tmpl, model, stdout); err != nil {
			return err
		}
	}
}

// turnFunc writes the model's next turn for a conversation to w, as it is
// generated, up to the template's stop.
type turnFunc func(msgs []chat.Message, w io.Writer) error

// reply lets the model answer the last user message, running its tool
// calls, and returns the conversation with the model's turns added.
func reply(msgs []chat.Message, tmpl *chat.Template, model turnFunc, stdout io.Writer) ([]chat.Message, error) {
	for round := 0; ; round++ {
		var text strings.Builder
		if err := model(msgs, io.MultiWriter(stdout, &text)); err != nil {
			return msgs, err
		}
		content, _, _ := tmpl.Cut(strings.TrimSuffix(text.String(), "\n"))
		msgs = append(msgs, chat.Message{Role: chat.RoleAssistant, Content: content})
		call, err := weather.Parse(content)
		if errors.Is(err, weather.ErrNoCall) {
			return msgs, nil // a final answer
		}
		result := toolResult(call, err)
		fmt.Fprintf(stdout, "[%s] %s\n", weather.ToolName, result)
		msgs = append(msgs, chat.Message{Role: chat.RoleTool, Name: weather.ToolName, Content: result})
		if round+1 == maxToolRounds {
			fmt.Fprintf(stdout, "[mlbuild] the model called the tool %d times without answering; ask again\n", maxToolRounds)
			return msgs, nil
		}
	}
}

// toolResult runs a parsed call, or explains to the model why its call
// could not run, as JSON either way.
func toolResult(call weather.Call, parseErr error) string {
	if parseErr != nil {
		return weather.ErrorJSON(fmt.Errorf("could not read the tool call: %w", parseErr))
	}
	res, err := weather.Execute(call)
	if err != nil {
		return weather.ErrorJSON(err)
	}
	return res.JSON()
}
