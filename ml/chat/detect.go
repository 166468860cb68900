package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenizerConfig is the part of a tokenizer_config.json that Detect reads.
type tokenizerConfig struct {
	ChatTemplate json.RawMessage            `json:"chat_template"`
	AddedTokens  map[string]json.RawMessage `json:"added_tokens_decoder"`
	BOS          json.RawMessage            `json:"bos_token"`
	EOS          json.RawMessage            `json:"eos_token"`
	Additional   []json.RawMessage          `json:"additional_special_tokens"`
}

// tokenText reads a token given as a string or as an AddedToken object
// ({"content": ...}).
func tokenText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content
	}
	return ""
}

// chatTemplates reads chat_template: a string, or a list of
// {"name", "template"} objects (all of them are searched).
func chatTemplates(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if json.Unmarshal(raw, &list) == nil {
		var b strings.Builder
		for _, e := range list {
			b.WriteString(e.Template)
			b.WriteByte('\n')
		}
		return b.String()
	}
	return ""
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// Detect recognizes a model family from the bytes of its
// tokenizer_config.json and returns the name of its built-in template. It
// reads the chat_template (a string or a list of named templates) when
// there is one, and otherwise the special tokens (added_tokens_decoder,
// bos_token, eos_token, additional_special_tokens). The built-in templates'
// DetectRules are tried in the order of templates.json; the first that
// matches wins. A chat_template that no rule recognizes (ChatML, Llama-2's
// <<SYS>>, ...) gives ok false, as do invalid JSON and a config with
// neither a template nor recognizable tokens. A config whose only special
// tokens are <unk>, <s> and </s> and that has no chat_template (Mistral-7B's
// own file) is taken to be Mistral, the built-in SentencePiece family.
func Detect(tokenizerConfigJSON []byte) (name string, ok bool) {
	return detect(builtin(), tokenizerConfigJSON)
}

func detect(templates []*Template, data []byte) (string, bool) {
	var cfg tokenizerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", false
	}
	if tpl := chatTemplates(cfg.ChatTemplate); tpl != "" {
		return matchTemplate(templates, tpl)
	}
	tokens := map[string]bool{}
	for _, raw := range cfg.AddedTokens {
		if s := tokenText(raw); s != "" {
			tokens[s] = true
		}
	}
	for _, raw := range append([]json.RawMessage{cfg.BOS, cfg.EOS}, cfg.Additional...) {
		if s := tokenText(raw); s != "" {
			tokens[s] = true
		}
	}
	for _, t := range templates {
		for _, subs := range t.Detect.Tokens {
			if hasAll(tokens, subs) {
				return t.Name, true
			}
		}
	}
	if tokens["<s>"] && tokens["</s>"] {
		onlySP := true
		for s := range tokens {
			if s != "<unk>" && s != "<s>" && s != "</s>" {
				onlySP = false
				break
			}
		}
		if onlySP {
			for _, t := range templates {
				if t.Detect.SentencePieceDefault {
					return t.Name, true
				}
			}
		}
	}
	return "", false
}

// matchTemplate returns the first of templates whose rules recognize the
// Jinja chat template tpl.
func matchTemplate(templates []*Template, tpl string) (string, bool) {
	for _, t := range templates {
		if excluded(tpl, t.Detect.TemplateExcludes) {
			continue
		}
		for _, subs := range t.Detect.TemplateContains {
			if containsAll(tpl, subs) {
				return t.Name, true
			}
		}
	}
	return "", false
}

func excluded(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func hasAll(set map[string]bool, subs []string) bool {
	for _, x := range subs {
		if !set[x] {
			return false
		}
	}
	return len(subs) > 0
}

// ForModelDir returns the chat template a model was trained to chat in:
// the built-in template that recognizes the chat_template of the
// tokenizer_config.json in the model (or tokenizer) directory dir, with
// found true. Unlike Detect it does not guess from special tokens: a
// directory with no tokenizer_config.json, no chat_template or one that no
// built-in template recognizes gives fallback (which may be nil) and found
// false. Errors are those of reading the file.
func ForModelDir(dir string, fallback *Template) (t *Template, found bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return fallback, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("chat: %w", err)
	}
	var cfg tokenizerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, false, fmt.Errorf("chat: %s: %w", filepath.Join(dir, "tokenizer_config.json"), err)
	}
	name, ok := matchTemplate(builtin(), chatTemplates(cfg.ChatTemplate))
	if !ok {
		return fallback, false, nil
	}
	t, err = Lookup(name)
	return t, err == nil, err
}
