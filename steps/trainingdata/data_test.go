package trainingdata

import (
	"slices"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// charTokenizer writes a character-level tokenizer for every character of
// texts, with the chat tags as special tokens when specialTags.
func charTokenizer(t *testing.T, specialTags bool, texts ...string) *tokenizer.Tokenizer {
	t.Helper()
	var specials []string
	if specialTags {
		specials = twainbot().SpecialTokens
	}
	return charTokenizerWith(t, specials, texts...)
}

// charTokenizerWith writes a character-level tokenizer for every character
// of texts, with specials as special tokens.
func charTokenizerWith(t *testing.T, specials []string, texts ...string) *tokenizer.Tokenizer {
	t.Helper()
	seen := map[string]bool{}
	var chars []string
	for _, s := range texts {
		for _, tag := range specials {
			s = strings.ReplaceAll(s, tag, "")
		}
		for _, r := range s {
			if !seen[string(r)] {
				seen[string(r)] = true
				chars = append(chars, string(r))
			}
		}
	}
	dir := t.TempDir()
	if err := tinymodel.Write(dir, tinymodel.Spec{Seed: 1, VocabSize: 3 + len(specials) + len(chars), MaxPositions: 512, Specials: specials, Chars: chars}); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir + "/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// trainedText decodes the trained positions of ex, in order.
func trainedText(t *testing.T, tok *tokenizer.Tokenizer, ex Example) string {
	var b strings.Builder
	for i, l := range ex.Labels {
		if l == IgnoreIndex {
			continue
		}
		if l != ex.IDs[i] {
			t.Fatalf("label %d is %d, id %d", i, l, ex.IDs[i])
		}
		s, _ := tok.IDToken(l)
		b.WriteString(s)
	}
	return b.String()
}

// TestConversationLabels: an assistant turn is trained with the tag that
// follows it; a conversation that ends at a tool call does not train the
// closing "<|end|>", since what follows a call is the tool's result.
func TestConversationLabels(t *testing.T) {
	call := weather.Format(weather.NewCall("Paris, France", "today"))
	answered := render([]chat.Message{
		{Role: chat.RoleUser, Content: "Paris?"},
		{Role: chat.RoleAssistant, Content: "Thought: Paris.\n" + call},
		{Role: chat.RoleTool, Name: weather.ToolName, Content: `{"temp_c":20}`},
		{Role: chat.RoleAssistant, Content: "Warm."},
	})
	callOnly := render([]chat.Message{
		{Role: chat.RoleUser, Content: "Paris?"},
		{Role: chat.RoleAssistant, Content: "Thought: Paris.\n" + call},
	})
	for _, special := range []bool{true, false} {
		tok := charTokenizer(t, special, answered)
		enc := NewEncoder(tok)
		if got := enc.tags != nil; got != special {
			t.Fatalf("special tags %v, encoder sees %v", special, got)
		}
		full := trainedText(t, tok, enc.Encode(answered))
		cut := trainedText(t, tok, enc.Encode(callOnly))
		wantFull := "Thought: Paris.\n" + call + "\n" + "<|tool|>" + "Warm.\n" + twainbot().Closing
		wantCut := "Thought: Paris.\n" + call + "\n"
		if full != wantFull {
			t.Errorf("special %v: answered conversation trains %q, want %q", special, full, wantFull)
		}
		if cut != wantCut {
			t.Errorf("special %v: call-only conversation trains %q, want %q", special, cut, wantCut)
		}
		ex := enc.Encode(callOnly)
		if last, _ := tok.IDToken(ex.IDs[len(ex.IDs)-1]); !ex.Chat || (special && last != twainbot().Closing) {
			t.Errorf("special %v: not encoded as a conversation ending in %s", special, twainbot().Closing)
		}
	}
}

// render writes a finished TwainBot conversation.
func render(msgs []chat.Message) string { return twainbot().Render(msgs, false) }

// TestModelTemplate: with a model's own chat template (SmolLM2's ChatML),
// a TwainBot record is trained in that template, each assistant turn with
// the <|im_end|> that closes it (a call included: the tool's turn follows),
// and a generation prompt is encoded as the same text is in training.
func TestModelTemplate(t *testing.T) {
	tpl, err := chat.Lookup("smollm2")
	if err != nil {
		t.Fatal(err)
	}
	call := weather.Format(weather.NewCall("Paris, France", "today"))
	msgs := []chat.Message{
		{Role: chat.RoleUser, Content: "Paris?"},
		{Role: chat.RoleAssistant, Content: call},
		{Role: chat.RoleTool, Name: weather.ToolName, Content: `{"temp_c":20}`},
		{Role: chat.RoleAssistant, Content: "Warm."},
	}
	answered, callOnly := render(msgs), render(msgs[:2])
	tok := charTokenizerWith(t, tpl.SpecialTokens, tpl.Render(msgs, false))
	enc := NewEncoderFor(tok, tpl)
	ex := enc.Encode(answered)
	if !ex.Chat {
		t.Fatal("not encoded as a conversation")
	}
	if got, want := trainedText(t, tok, ex), call+"<|im_end|>"+"Warm.<|im_end|>"; got != want {
		t.Errorf("answered conversation trains %q, want %q", got, want)
	}
	if got, want := trainedText(t, tok, enc.Encode(callOnly)), call+"<|im_end|>"; got != want {
		t.Errorf("call-only conversation trains %q, want %q", got, want)
	}
	if got := strings.TrimPrefix(tok.Decode(ex.IDs, false), "<s>"); got != tpl.Render(msgs, false) {
		t.Errorf("the ids decode to %q, want the template's rendering %q", got, tpl.Render(msgs, false))
	}
	for _, upTo := range []int{1, 3} {
		p := enc.EncodePrompt(msgs[:upTo])
		if len(p) >= len(ex.IDs) || !slices.Equal(p, ex.IDs[:len(p)]) {
			t.Errorf("%d messages: the prompt's ids are not a prefix of the training ids", upTo)
		}
		if got := strings.TrimPrefix(tok.Decode(p, false), "<s>"); !strings.HasPrefix(got, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM") ||
			!strings.HasSuffix(got, "<|im_start|>assistant\n") {
			t.Errorf("%d messages: prompt %q", upTo, got)
		}
	}
	if got, want := enc.Stops(), []string{"<|im_start|>", "<|im_end|>"}; !slices.Equal(got, want) {
		t.Errorf("Stops() = %q, want %q", got, want)
	}
}
