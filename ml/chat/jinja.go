package chat

import (
	"fmt"
	"strings"
)

// Jinja writes the template as the Jinja chat_template string of a
// tokenizer_config.json, which renders exactly the text of t.Render for
// the same messages (as transformers' apply_chat_template runs it; see
// testdata/jinja_ref.py): BOS once, each message as
// its role's prefix, content (trimmed where the table trims; a tool
// result wrapped in ToolResult) and suffix, roles other than system,
// assistant and tool as user turns, then the generation prompt when
// add_generation_prompt is true and Closing otherwise. For "twainbot":
//
//	{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}
//	{% elif ... %}...{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ '<|end|>' }}{% endif %}
//
// (one line). The template has no text outside its tags, so transformers'
// trim_blocks and lstrip_blocks change nothing. Tables whose system
// message is merged into the first user turn (Mistral) are refused.
func (t *Template) Jinja() (string, error) {
	if t.SystemInFirstUser {
		return "", fmt.Errorf("chat: template %q merges the system prompt into the first user turn, which cannot be written as Jinja", t.Name)
	}
	content := "message['content']"
	if t.TrimContent {
		content = "(message['content'] | trim)"
	}
	var b strings.Builder
	if t.BOS != "" {
		b.WriteString("{{ " + jinjaString(t.BOS) + " }}")
	}
	b.WriteString("{% for message in messages %}")
	if t.DefaultSystem != "" {
		fmt.Fprintf(&b, "{%% if loop.first and message['role'] != 'system' %%}{{ %s }}{%% endif %%}",
			jinjaString(t.System.Prefix+t.content(t.DefaultSystem)+t.System.Suffix))
	}
	turn := func(tu Turn, c string) string {
		return "{{ " + concat(jinjaStringOrEmpty(tu.Prefix), c, jinjaStringOrEmpty(tu.Suffix)) + " }}"
	}
	toolContent := concat(jinjaStringOrEmpty(t.ToolResult.Prefix), content, jinjaStringOrEmpty(t.ToolResult.Suffix))
	fmt.Fprintf(&b, "{%% if message['role'] == 'system' %%}%s", turn(t.System, content))
	fmt.Fprintf(&b, "{%% elif message['role'] == 'assistant' %%}%s", turn(t.Assistant, content))
	fmt.Fprintf(&b, "{%% elif message['role'] == 'tool' %%}%s", turn(t.Tool, toolContent))
	fmt.Fprintf(&b, "{%% else %%}%s{%% endif %%}", turn(t.User, content))
	b.WriteString("{% endfor %}")
	b.WriteString("{% if add_generation_prompt %}")
	if t.GenerationPrompt != "" {
		b.WriteString("{{ " + jinjaString(t.GenerationPrompt) + " }}")
	}
	if t.Closing != "" {
		b.WriteString("{% else %}{{ " + jinjaString(t.Closing) + " }}")
	}
	b.WriteString("{% endif %}")
	return b.String(), nil
}

// concat joins Jinja expressions with +, leaving out empty ones.
func concat(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, " + ")
}

func jinjaStringOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return jinjaString(s)
}

// jinjaString writes s as a single-quoted Jinja string literal.
func jinjaString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return "'" + r.Replace(s) + "'"
}
