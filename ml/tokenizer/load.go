package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// fileJSON mirrors the parts of a Hugging Face tokenizer.json that this
// package understands. Components are kept raw and decoded by type so that
// an unsupported component yields an error naming it.
type fileJSON struct {
	Version       *string          `json:"version"`
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         json.RawMessage  `json:"model"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// Load reads a Hugging Face tokenizer.json. path may name the file itself or
// a model directory containing tokenizer.json. When a tokenizer_config.json
// sits beside it, its bos_token, eos_token and pad_token name the BOS, EOS
// and pad tokens. The file's truncation and padding settings are ignored:
// Encode returns every id of the text, and callers cut and pad.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %s does not exist (want a model directory holding tokenizer.json, or the tokenizer.json file)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %s has no tokenizer.json (only Hugging Face tokenizer.json files are supported, not tokenizer.model)", filepath.Dir(path))
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if cfg, err := os.ReadFile(cfgPath); err == nil {
		if err := t.applyConfig(cfg); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", cfgPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

// Parse builds a Tokenizer from the bytes of a tokenizer.json. BOS and EOS
// are guessed from the post-processor and the usual special-token names; Load
// refines them from tokenizer_config.json.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if f.Version != nil && *f.Version != "1.0" {
		return nil, fmt.Errorf("unknown tokenizer.json version %q (want \"1.0\")", *f.Version)
	}
	if isNull(f.Model) {
		return nil, fmt.Errorf("no model")
	}
	var mt struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(f.Model, &mt); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if mt.Type != nil && *mt.Type != "BPE" {
		return nil, unsupported("model", *mt.Type, "BPE")
	}
	var m modelJSON
	if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, fmt.Errorf("model (BPE): %w", err)
	}
	t := &Tokenizer{bos: -1, eos: -1, pad: -1}
	var err error
	if t.model, err = newBPE(&m); err != nil {
		return nil, fmt.Errorf("model (BPE): %w", err)
	}
	if t.normalizer, err = parseNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if t.post, err = parsePostProcessor(f.PostProcessor, "post_processor"); err != nil {
		return nil, err
	}
	if t.decoder, err = parseDecoder(f.Decoder, "decoder"); err != nil {
		return nil, err
	}
	t.useRawBytes()
	if err := t.setAdded(f.AddedTokens); err != nil {
		return nil, err
	}
	t.guessBOSEOS()
	return t, nil
}

// useRawBytes switches to raw-byte words when a ByteLevel pre-tokenizer is
// the last one (and the only one): it then no longer maps bytes to GPT-2
// characters, the model's vocabulary is keyed by raw bytes instead, and a
// ByteLevel that neither adds a prefix space nor splits disappears.
func (t *Tokenizer) useRawBytes() {
	n := 0
	for _, p := range t.pre {
		if _, ok := p.(*byteLevelPreTokenizer); ok {
			n++
		}
	}
	if n != 1 {
		return
	}
	bl, ok := t.pre[len(t.pre)-1].(*byteLevelPreTokenizer)
	if !ok {
		return
	}
	bl.raw = true
	t.model.setRaw()
	if !bl.addPrefixSpace && !bl.useRegex {
		t.pre = t.pre[:len(t.pre)-1]
	}
}

// setAdded registers the added tokens as the reference's add_tokens does:
// a token already in the vocabulary (or added before) keeps that id, any
// other takes the next id after the model's vocabulary; the ids written in
// the file are not used.
func (t *Tokenizer) setAdded(list []addedTokenJSON) error {
	t.addedByID = map[int]*addedToken{}
	t.addedByContent = map[string]int{}
	t.special = map[string]bool{}
	nextID := len(t.model.vocab)
	for _, a := range list {
		if a.Content == "" {
			continue
		}
		if id, ok := t.addedByContent[a.Content]; ok && t.addedByID[id].addedTokenJSON.sameFlags(a) {
			continue
		}
		id, ok := t.TokenID(a.Content)
		if !ok {
			id = nextID
			nextID++
		}
		tok := &addedToken{addedTokenJSON: a, pattern: a.Content}
		tok.ID = id
		if a.Normalized && t.normalizer != nil {
			tok.pattern = t.normalizer.normalize(a.Content)
		}
		t.addedByContent[a.Content] = id
		if a.Special {
			t.special[a.Content] = true
		}
		t.addedByID[id] = tok
	}
	var raw, norm []*addedToken
	for _, tok := range t.addedByID {
		if tok.Normalized {
			norm = append(norm, tok)
		} else {
			raw = append(raw, tok)
		}
	}
	// Map order must not decide which of two equal patterns wins.
	byID := func(a, b *addedToken) int { return a.ID - b.ID }
	slices.SortFunc(raw, byID)
	slices.SortFunc(norm, byID)
	t.rawMatcher = newAddedMatcher(raw)
	t.normMatcher = newAddedMatcher(norm)
	t.vocabSize = len(t.model.idToTok)
	for id := range t.addedByID {
		t.vocabSize = max(t.vocabSize, id+1)
	}
	return nil
}

func (a addedTokenJSON) sameFlags(b addedTokenJSON) bool {
	a.ID, b.ID = 0, 0
	return a == b
}

// guessBOSEOS picks BOS from the post-processor's first special token, or
// from the usual names, and EOS from the usual names.
func (t *Tokenizer) guessBOSEOS() {
	if t.post != nil && len(t.post.prefix) == 1 {
		t.bos = t.post.prefix[0]
	}
	if t.bos < 0 {
		for _, s := range []string{"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"} {
			if id, ok := t.TokenID(s); ok {
				t.bos = id
				break
			}
		}
	}
	for _, s := range []string{"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"} {
		if id, ok := t.TokenID(s); ok {
			t.eos = id
			break
		}
	}
}

// applyConfig reads bos_token / eos_token from tokenizer_config.json; each
// may be a string, an AddedToken object or null.
func (t *Tokenizer) applyConfig(data []byte) error {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"bos_token", &t.bos}, {"eos_token", &t.eos}, {"pad_token", &t.pad}} {
		raw, ok := cfg[f.key]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err2 := json.Unmarshal(raw, &obj); err2 != nil || obj.Content == "" {
				return fmt.Errorf("field %s: want a string or an object with \"content\", got %s", f.key, raw)
			}
			s = obj.Content
		}
		id, ok := t.TokenID(s)
		if !ok {
			return fmt.Errorf("field %s: token %q is not in the tokenizer's vocabulary", f.key, s)
		}
		*f.dst = id
	}
	return nil
}

func unsupported(field, kind string, supported ...string) error {
	sort.Strings(supported)
	return fmt.Errorf("%s: type %q is not supported (supported: %s)", field, kind, strings.Join(supported, ", "))
}
