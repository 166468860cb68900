package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// conversation is the test conversation of testdata/conversation.json
// (the input of gen_golden.py): the weather tool's system prompt, a
// question (with a trailing newline, which Llama-3 trims), a tool call, the
// tool's result and the answer.
func conversation(t testing.TB) []Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "conversation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	if err := json.Unmarshal(b, &msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("testdata/conversation.json holds %d messages, want 5", len(msgs))
	}
	return msgs
}

var cases = []struct {
	name string
	msgs func([]Message) []Message
	gen  bool
}{
	{"full", func(m []Message) []Message { return m }, false},
	{"prompt", func(m []Message) []Message { return m[:2] }, true},
	{"after_tool", func(m []Message) []Message { return m[:4] }, true},
	{"no_system", func(m []Message) []Message { return m[1:2] }, true},
}

// TestRenderGolden compares Render byte for byte with the official chat
// templates rendered by jinja2 (testdata/gen_golden.py).
func TestRenderGolden(t *testing.T) {
	conv := conversation(t)
	for _, fam := range Names() {
		tpl, err := Lookup(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			path := filepath.Join("testdata", fam+"_"+c.name+".golden")
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := tpl.Render(c.msgs(conv), c.gen)
			if got != string(want) {
				t.Errorf("%s %s:\n got %q\nwant %q", fam, c.name, got, want)
			}
		}
	}
}

// TestSpecialTokensEncode renders the conversation and encodes it with the
// real tokenizers: every special-token string of the template is one
// special token, the text starts with BOS, and each special string of the
// rendered text becomes exactly one occurrence of its id.
func TestSpecialTokensEncode(t *testing.T) {
	conv := conversation(t)
	for _, fam := range []string{"llama3", "mistral"} {
		t.Run(fam, func(t *testing.T) {
			dir := shareddata.Path(t, "tokenizers/"+fam)
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			tpl, err := Lookup(fam)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]int{}
			for _, s := range tpl.SpecialTokens {
				id, ok := tok.TokenID(s)
				if !ok || !tok.IsSpecial(id) {
					t.Fatalf("%q is not a special token of the %s tokenizer", s, fam)
				}
				if got := tok.Encode(s, false); !reflect.DeepEqual(got, []int{id}) {
					t.Errorf("Encode(%q) = %v, want [%d]", s, got, id)
				}
				ids[s] = id
			}
			for _, s := range tpl.Stops() {
				if _, ok := ids[s]; !ok {
					t.Errorf("stop %q is not among the special tokens", s)
				}
			}
			bos, _ := tok.TokenID(tpl.BOS)
			if bos != tok.BOS() {
				t.Errorf("template BOS %q is id %d, tokenizer BOS is %d", tpl.BOS, bos, tok.BOS())
			}
			for _, c := range cases {
				text := tpl.Render(c.msgs(conv), c.gen)
				enc := tok.Encode(text, false)
				if enc[0] != tok.BOS() {
					t.Errorf("%s: first id %d, want BOS %d", c.name, enc[0], tok.BOS())
				}
				count := map[int]int{}
				for _, id := range enc {
					count[id]++
				}
				for s, id := range ids {
					if n := strings.Count(text, s); count[id] != n {
						t.Errorf("%s: %q occurs %d times in the text but id %d %d times in the encoding", c.name, s, n, id, count[id])
					}
				}
				if got := tok.Decode(enc, false); fam == "llama3" && got != text {
					t.Errorf("%s: decode(encode(text)) differs:\n got %q\nwant %q", c.name, got, text)
				}
			}
			// The llama3 turn header: exactly the ids of the special
			// tokens around the role name.
			if fam == "llama3" {
				got := tok.Encode(tpl.User.Prefix, false)
				h, _ := tok.TokenID("<|start_header_id|>")
				e, _ := tok.TokenID("<|end_header_id|>")
				user := tok.Encode("user", false)
				nl := tok.Encode("\n\n", false)
				want := append(append(append([]int{h}, user...), e), nl...)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("user header encodes to %v, want %v", got, want)
				}
			}
		})
	}
}

// TestDetectRealConfigs recognizes the real tokenizer_config.json files.
func TestDetectRealConfigs(t *testing.T) {
	for _, fam := range []string{"llama3", "mistral"} {
		path := shareddata.Path(t, "tokenizers/"+fam+"/tokenizer_config.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := Detect(data); !ok || got != fam {
			t.Errorf("Detect(%s) = %q, %v; want %q", path, got, ok, fam)
		}
	}
}

func TestDetect(t *testing.T) {
	mistralV2 := "{%- if messages[0]['role'] == 'system' %}{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
	phi3 := "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
	for _, c := range []struct {
		cfg  string
		want string
		ok   bool
	}{
		{`{"chat_template": ` + jsonString(mistralV2) + `}`, "mistral", true},
		{`{"chat_template": ` + jsonString(phi3) + `}`, "phi3", true},
		{`{"chat_template": [{"name": "default", "template": ` + jsonString(phi3) + `}]}`, "phi3", true},
		{`{"chat_template": "{{ '<|tool|>\n' }}{{ '<|user|>\n' }}{{ '<|end|>' }}"}`, "twainbot", true},
		{`{"chat_template": "[INST] <<SYS>>\n{{ system }}\n<</SYS>>"}`, "", false}, // Llama-2
		{`{"chat_template": "<|im_start|>{{ role }}<|im_end|>"}`, "chatml", true},
		{`{"chat_template": "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM' }}<|im_end|>"}`, "smollm2", true},
		{`{"added_tokens_decoder": {"1": {"content": "<|im_start|>"}, "2": {"content": "<|im_end|>"}}}`, "chatml", true},
		{`{"added_tokens_decoder": {"32000": {"content": "<|endoftext|>"}, "32007": {"content": "<|end|>"}, "32010": {"content": "<|user|>"}}, "bos_token": "<s>", "eos_token": "<|endoftext|>"}`, "phi3", true},
		{`{"added_tokens_decoder": {"128009": {"content": "<|eot_id|>"}, "128006": {"content": "<|start_header_id|>"}}}`, "llama3", true},
		{`{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "additional_special_tokens": ["<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>"]}`, "twainbot", true},
		{`{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}`, "mistral", true},
		{`{"bos_token": "<s>", "eos_token": "</s>", "additional_special_tokens": ["<pad>"]}`, "", false},
		{`{"bos_token": "[CLS]"}`, "", false},
		{`{}`, "", false},
		{`not json`, "", false},
	} {
		got, ok := Detect([]byte(c.cfg))
		if got != c.want || ok != c.ok {
			t.Errorf("Detect(%s) = %q, %v; want %q, %v", c.cfg, got, ok, c.want, c.ok)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestLookup(t *testing.T) {
	if got, want := Names(), []string{"chatml", "llama3", "mistral", "phi3", "smollm2", "twainbot"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if _, err := Lookup("gpt2"); err == nil || !strings.Contains(err.Error(), "chatml, llama3, mistral, phi3, smollm2, twainbot") {
		t.Errorf("Lookup(gpt2) error %v", err)
	}
	a, _ := Lookup("llama3")
	a.StopStrings[0] = "changed"
	a.User.Prefix = "changed"
	b, _ := Lookup("llama3")
	if b.StopStrings[0] == "changed" || b.User.Prefix == "changed" {
		t.Error("Lookup returned shared state")
	}
}

func TestStops(t *testing.T) {
	for fam, want := range map[string][]string{
		"llama3":   {"<|eot_id|>", "<|end_of_text|>"},
		"mistral":  {"</s>"},
		"phi3":     {"<|end|>", "<|endoftext|>", "<|assistant|>"},
		"twainbot": {"<|tool|>", "<|end|>"},
	} {
		tpl, _ := Lookup(fam)
		if got := tpl.Stops(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Stops() = %q, want %q", fam, got, want)
		}
	}
}

// TestCut checks that a model's continuation, cut at the stop, gives back
// the assistant message that Render writes: rendering the conversation with
// the cut content reproduces the official rendering.
func TestCut(t *testing.T) {
	conv := conversation(t)
	for _, fam := range Names() {
		tpl, _ := Lookup(fam)
		// What a perfect model writes after the prompt of conv[:2]: the rest
		// of the rendering of conv[:3], up to and including the stop.
		prompt := tpl.Render(conv[:2], true)
		full := tpl.Render(conv[:4], true)
		if !strings.HasPrefix(full, prompt) {
			t.Fatalf("%s: the prompt is not a prefix of the longer rendering", fam)
		}
		gen := full[len(prompt):] + "trailing junk"
		content, stop, ok := tpl.Cut(gen)
		if !ok {
			t.Fatalf("%s: no stop in %q", fam, gen)
		}
		if content != conv[2].Content {
			t.Errorf("%s: Cut content %q (stop %q), want %q", fam, content, stop, conv[2].Content)
		}
		if _, _, ok := tpl.Cut("no stop here"); ok {
			t.Errorf("%s: Cut found a stop in text without one", fam)
		}
	}
	tw, _ := Lookup("twainbot")
	if c, s, _ := tw.Cut("The answer.\n<|end|>"); c != "The answer." || s != "<|end|>" {
		t.Errorf("twainbot answer cut to %q at %q", c, s)
	}
	p3, _ := Lookup("phi3")
	if c, s, _ := p3.Cut("Hi.<|end|>\n<|endoftext|>"); c != "Hi." || s != "<|end|>" {
		t.Errorf("phi3 cut to %q at %q", c, s)
	}
}

func TestMistralSystemEdgeCases(t *testing.T) {
	tpl, _ := Lookup("mistral")
	// A system message with nothing to merge into becomes a user turn.
	if got, want := tpl.Render([]Message{{Role: RoleSystem, Content: "Be brief."}}, true), "<s> [INST] Be brief. [/INST]"; got != want {
		t.Errorf("system only: %q, want %q", got, want)
	}
	// Only the first user turn gets the system prompt.
	msgs := []Message{
		{Role: RoleSystem, Content: "S"},
		{Role: RoleUser, Content: "U1"},
		{Role: RoleAssistant, Content: "A1"},
		{Role: RoleUser, Content: "U2"},
	}
	if got, want := tpl.Render(msgs, true), "<s> [INST] S\n\nU1 [/INST] A1</s> [INST] U2 [/INST]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWithTools(t *testing.T) {
	block := "You can use one tool: get_weather(location, date)."
	got := WithTools([]Message{{Role: RoleUser, Content: "hi"}}, block)
	want := []Message{{Role: RoleSystem, Content: block}, {Role: RoleUser, Content: "hi"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("no system: %q", got)
	}
	in := []Message{{Role: RoleSystem, Content: "You are Mark Twain."}, {Role: RoleUser, Content: "hi"}}
	got = WithTools(in, block)
	if got[0].Content != "You are Mark Twain.\n\n"+block || len(got) != 2 || in[0].Content != "You are Mark Twain." {
		t.Errorf("with system: %q (input %q)", got, in)
	}
}

func TestParseTemplates(t *testing.T) {
	ts, err := ParseTemplates([]byte(`[{"name": "chatml", "user": {"prefix": "<|im_start|>user\n", "suffix": "<|im_end|>\n"}, "generation_prompt": "<|im_start|>assistant\n", "stops": ["<|im_end|>"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if got := ts[0].Render([]Message{{Role: RoleUser, Content: "hi"}}, true); got != "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("custom template rendered %q", got)
	}
	for _, bad := range []string{
		`{}`,
		`[{"stops": ["x"]}]`,
		`[{"name": "a"}]`,
		`[{"name": "a", "stops": [""]}]`,
		`[{"name": "a", "stops": ["x"]}, {"name": "a", "stops": ["x"]}]`,
		`[{"name": "a", "stops": ["x"], "unknown_field": 1}]`,
	} {
		if _, err := ParseTemplates([]byte(bad)); err == nil {
			t.Errorf("ParseTemplates(%s) succeeded", bad)
		}
	}
}

// TestTrimIsPythonStrip checks trim against Python's str.strip() on the
// characters where Go's and Python's notions of white space could differ.
func TestTrimIsPythonStrip(t *testing.T) {
	for in, want := range map[string]string{
		" \t\n\v\f\r x \r\n":    "x",
		"\x1c\x1d\x1e\x1fx\x1f": "x",
		"\u00a0\u2003x\u3000":   "x",
		"\u0085x\u2028\u2029":   "x",
		"\u200bx\ufeff":         "\u200bx\ufeff", // not white space in Python either
	} {
		if got := trim(in); got != want {
			t.Errorf("trim(%q) = %q, want %q", in, got, want)
		}
	}
}
