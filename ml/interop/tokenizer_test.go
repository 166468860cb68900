package interop_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/bpetrain"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// tokenizerTexts are the strings both encoders encode: the training
// corpus' paragraphs and lines, and strings meant to find differences
// (whitespace runs, characters outside the vocabulary that go through byte
// fallback, special tokens inside text, the "▁" character itself).
func tokenizerTexts(t *testing.T, corpus string) []string {
	t.Helper()
	texts := []string{
		"", " ", "  ", "\n", "\t", "a", " a", "a ", "  leading and trailing  ", "double  space", "tab\tand\nnewline\r\n",
		"Hello, world!", "It's 1876; Tom Sawyer is 12 (or so).", "1234567890 3.14159 -42 1e10",
		"日本語のテキスト", "emoji 🎉🙂👍🏽 and ZWJ 👨‍👩‍👧", "Ünïcödé naïve café", "\u00a0non-breaking\u00a0space", "zero\u200bwidth",
		"mixed 中文 and English", "\u0000nul and \u007f del", "a▁b ▁lead", "▁",
		"<s>", "</s>", "<unk>", "<pad>", "<s>hello</s>", "a<|user|>b<|end|>c", "<|system|>\nYou are TwainBot.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n",
		"<|user|", "<s", "</s >",
		`<tool_call>get_weather(location="San Francisco, CA", date="tomorrow")</tool_call>`,
		`{"location":"Paris, France","temp_c":18,"precip_chance":0.5}`,
	}
	for _, p := range strings.Split(corpus, "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			texts = append(texts, p)
		}
	}
	for _, l := range strings.Split(corpus, "\n") {
		texts = append(texts, l, " "+l)
	}
	return texts
}

// tokenizerChats are the conversations rendered with each chat template:
// ml/chat's tool-use conversation (system, user, assistant with a tool
// call, tool result, answer) and its prefixes, with and without the
// generation prompt, and a few edge cases.
func tokenizerChats(t *testing.T) []chatCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "chat", "testdata", "conversation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var conv []chat.Message
	if err := json.Unmarshal(data, &conv); err != nil {
		t.Fatal(err)
	}
	var chats []chatCase
	for n := 1; n <= len(conv); n++ {
		for _, g := range []bool{false, true} {
			chats = append(chats, chatCase{conv[:n], g})
		}
	}
	for _, msgs := range [][]chat.Message{
		{{Role: "user", Content: "Hi"}},
		{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello!"}, {Role: "user", Content: "Tell me a joke."}},
		{{Role: "user", Content: "  spaces, 日本語 and 🎉\n"}, {Role: "assistant", Content: ""}},
		conv[1:],
	} {
		for _, g := range []bool{false, true} {
			chats = append(chats, chatCase{msgs, g})
		}
	}
	return chats
}

type chatCase struct {
	Messages            []chat.Message `json:"messages"`
	AddGenerationPrompt bool           `json:"add_generation_prompt"`
}

// TestTokenizerLoadsInTransformers trains tokenizers the way the
// tokenizer_train step does (ml/bpetrain with the default special tokens
// and the tokens of the chat template, the template written as Jinja into
// tokenizer_config.json), one per chat template that has a Jinja form, and
// checks that transformers' AutoTokenizer loads each directory and gives,
// for every text, the ids of mlbuild's encoder (with and without special
// tokens) and the same decoded text, and that apply_chat_template renders
// every conversation to the text of ml/chat's Render and to the ids of
// mlbuild's encoding of that text.
func TestTokenizerLoadsInTransformers(t *testing.T) {
	python(t) // skip before training where the environment is absent
	corpus, err := os.ReadFile(filepath.Join("..", "bpetrain", "testdata", "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var names, dirs []string
	var templates []*chat.Template
	for _, name := range chat.Names() {
		tpl, err := chat.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		jinja, err := tpl.Jinja()
		if err != nil {
			t.Logf("%s: no Jinja form (%v); tokenizer_train refuses it too", name, err)
			continue
		}
		specials := slices.Clone(bpetrain.DefaultSpecialTokens)
		for _, s := range tpl.SpecialTokens {
			if !slices.Contains(specials, s) && s != bpetrain.UnkToken && s != bpetrain.BOSToken && s != bpetrain.EOSToken {
				specials = append(specials, s)
			}
		}
		tr, err := bpetrain.NewTrainer(bpetrain.Options{VocabSize: 1024, SpecialTokens: specials, ChatTemplate: jinja})
		if err != nil {
			t.Fatal(err)
		}
		tr.Add(string(corpus))
		m, err := tr.Train(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, name)
		if err := m.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		names, dirs, templates = append(names, name), append(dirs, dir), append(templates, tpl)
	}
	if len(dirs) == 0 {
		t.Fatal("no chat template has a Jinja form")
	}
	compareAutoTokenizer(t, root, names, dirs, templates, tokenizerTexts(t, string(corpus)), tokenizerChats(t))
}

// TestRealTokenizersInTransformers: the real Mistral-7B and Llama-3
// tokenizers of the shared data folder, loaded by AutoTokenizer (with their
// tokenizer_config.json: Mistral's as LlamaTokenizerFast, which adds BOS)
// and by mlbuild, give the same ids with and without special tokens and the
// same decoding; Llama-3's chat template, the one in its
// tokenizer_config.json, renders through apply_chat_template to the text of
// ml/chat's llama3 template (that revision of the template writes the
// generation prompt unconditionally, so only the conversations with one are
// compared).
func TestRealTokenizersInTransformers(t *testing.T) {
	python(t)
	corpus, err := os.ReadFile(filepath.Join("..", "bpetrain", "testdata", "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names, dirs []string
	var templates []*chat.Template
	for _, name := range []string{"mistral", "llama3"} {
		dir := shareddata.Path(t, "tokenizers/"+name)
		cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var tpl *chat.Template
		if tname, ok := chat.Detect(cfg); ok && strings.Contains(string(cfg), "chat_template") {
			if tpl, err = chat.Lookup(tname); err != nil {
				t.Fatal(err)
			}
		}
		names, dirs, templates = append(names, name), append(dirs, dir), append(templates, tpl)
	}
	var chats []chatCase
	for _, c := range tokenizerChats(t) {
		if c.AddGenerationPrompt {
			chats = append(chats, c)
		}
	}
	compareAutoTokenizer(t, t.TempDir(), names, dirs, templates, tokenizerTexts(t, string(corpus)), chats)
}

// compareAutoTokenizer runs scripts/hf_tokenizer.py on the tokenizer
// directories and compares, per directory, the ids of every text without
// and with special tokens and the decoding of the former with mlbuild's,
// and, where templates[i] is set, apply_chat_template's text of every chat
// with templates[i].Render and its ids with mlbuild's encoding of that text.
func compareAutoTokenizer(t *testing.T, root string, names, dirs []string, templates []*chat.Template, texts []string, chats []chatCase) {
	t.Helper()
	req, err := json.Marshal(map[string]any{"dirs": dirs, "texts": texts, "chats": chats})
	if err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(root, "request.json")
	if err := os.WriteFile(reqFile, req, 0o644); err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Transformers, Tokenizers string
		Dirs                     []struct {
			Class string
			Texts []struct {
				IDs        []int `json:"ids"`
				IDsSpecial []int `json:"ids_special"`
				Decoded    string
			}
			Chats []struct {
				Text string
				IDs  []int `json:"ids"`
			}
		}
	}
	if err := json.Unmarshal(runScript(t, "hf_tokenizer.py", reqFile), &ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("reference: transformers %s, tokenizers %s; %d texts, %d chats", ref.Transformers, ref.Tokenizers, len(texts), len(chats))
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			got := ref.Dirs[i]
			tk, err := tokenizer.Load(dirs[i])
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("AutoTokenizer loaded %s", got.Class)
			bad := 0
			for j, text := range texts {
				r := got.Texts[j]
				ids := tk.Encode(text, false)
				if !slices.Equal(ids, r.IDs) {
					t.Errorf("Encode(%q) = %v, transformers %v", text, ids, r.IDs)
					bad++
				}
				if special := tk.Encode(text, true); !slices.Equal(special, r.IDsSpecial) {
					t.Errorf("Encode(%q) with special tokens = %v, transformers %v", text, special, r.IDsSpecial)
					bad++
				}
				if dec := tk.Decode(r.IDs, false); dec != r.Decoded {
					t.Errorf("Decode(%v) = %q, transformers %q", r.IDs, dec, r.Decoded)
					bad++
				}
				if bad > 10 {
					t.Fatal("too many differences")
				}
			}
			if templates[i] == nil {
				t.Logf("%d texts compared; no chat template", len(texts))
				return
			}
			t.Logf("%d texts and %d chats compared (template %s)", len(texts), len(chats), templates[i].Name)
			if len(got.Chats) != len(chats) {
				t.Fatalf("transformers rendered %d chats of %d (no chat_template loaded?)", len(got.Chats), len(chats))
			}
			for j, c := range chats {
				r := got.Chats[j]
				text := templates[i].Render(c.Messages, c.AddGenerationPrompt)
				if text != r.Text {
					t.Errorf("chat %d (generation prompt %v): Render %q, apply_chat_template %q", j, c.AddGenerationPrompt, text, r.Text)
					continue
				}
				if ids := tk.Encode(text, false); !slices.Equal(ids, r.IDs) {
					t.Errorf("chat %d: Encode of the rendered text %v, apply_chat_template %v", j, ids, r.IDs)
				}
			}
		})
	}
}
