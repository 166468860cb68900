package bpetrain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// File names WriteDir writes.
const (
	TokenizerFile        = "tokenizer.json"
	TokenizerConfigFile  = "tokenizer_config.json"
	SpecialTokensMapFile = "special_tokens_map.json"
)

// quote returns s as a JSON string without HTML escaping.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err) // a string always encodes
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// addedToken writes one added token as tokenizer.json's added_tokens hold
// it (withID: "id" first, tokenizers' field order) or as
// tokenizer_config.json's added_tokens_decoder does (keys sorted).
func addedToken(b *bytes.Buffer, indent string, id int, content string, withID bool) {
	in := indent + "  "
	b.WriteString("{\n")
	if withID {
		fmt.Fprintf(b, "%s\"id\": %d,\n", in, id)
		fmt.Fprintf(b, "%s\"content\": %s,\n", in, quote(content))
		fmt.Fprintf(b, "%s\"single_word\": false,\n%s\"lstrip\": false,\n%s\"rstrip\": false,\n", in, in, in)
		fmt.Fprintf(b, "%s\"normalized\": false,\n%s\"special\": true\n", in, in)
	} else {
		fmt.Fprintf(b, "%s\"content\": %s,\n", in, quote(content))
		fmt.Fprintf(b, "%s\"lstrip\": false,\n%s\"normalized\": false,\n%s\"rstrip\": false,\n", in, in, in)
		fmt.Fprintf(b, "%s\"single_word\": false,\n%s\"special\": true\n", in, in)
	}
	b.WriteString(indent + "}")
}

// TokenizerJSON returns the tokenizer.json file: the fixed parts laid out
// as in Mistral-7B's file, the vocabulary in id order, merges as "a b"
// strings (no token contains a space: spaces are normalized to "▁").
func (m *Model) TokenizerJSON() []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n")
	for id := 0; id < m.Specials; id++ {
		b.WriteString("    ")
		addedToken(&b, "    ", id, m.Vocab[id], true)
		if id < m.Specials-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(`  ],
  "normalizer": {
    "type": "Sequence",
    "normalizers": [
      {
        "type": "Prepend",
        "prepend": "▁"
      },
      {
        "type": "Replace",
        "pattern": {
          "String": " "
        },
        "content": "▁"
      }
    ]
  },
  "pre_tokenizer": null,
  "post_processor": {
    "type": "TemplateProcessing",
    "single": [
      {
        "SpecialToken": {
          "id": "<s>",
          "type_id": 0
        }
      },
      {
        "Sequence": {
          "id": "A",
          "type_id": 0
        }
      }
    ],
    "pair": [
      {
        "SpecialToken": {
          "id": "<s>",
          "type_id": 0
        }
      },
      {
        "Sequence": {
          "id": "A",
          "type_id": 0
        }
      },
      {
        "SpecialToken": {
          "id": "<s>",
          "type_id": 1
        }
      },
      {
        "Sequence": {
          "id": "B",
          "type_id": 1
        }
      }
    ],
    "special_tokens": {
      "<s>": {
        "id": "<s>",
        "ids": [
          1
        ],
        "tokens": [
          "<s>"
        ]
      }
    }
  },
  "decoder": {
    "type": "Sequence",
    "decoders": [
      {
        "type": "Replace",
        "pattern": {
          "String": "▁"
        },
        "content": " "
      },
      {
        "type": "ByteFallback"
      },
      {
        "type": "Fuse"
      },
      {
        "type": "Strip",
        "content": " ",
        "start": 1,
        "stop": 0
      }
    ]
  },
  "model": {
    "type": "BPE",
    "dropout": null,
    "unk_token": "<unk>",
    "continuing_subword_prefix": null,
    "end_of_word_suffix": null,
    "fuse_unk": true,
    "byte_fallback": true,
    "vocab": {
`)
	for id, tok := range m.Vocab {
		fmt.Fprintf(&b, "      %s: %d", quote(tok), id)
		if id < len(m.Vocab)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("    },\n    \"merges\": [")
	for i, mg := range m.Merges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n      ")
		b.WriteString(quote(mg[0] + " " + mg[1]))
	}
	if len(m.Merges) > 0 {
		b.WriteString("\n    ")
	}
	b.WriteString("]\n  }\n}\n")
	return b.Bytes()
}

// extraSpecials are the special tokens after <unk>, <s>, </s> other than
// the pad token: tokenizer_config.json's additional_special_tokens.
func (m *Model) extraSpecials() []string {
	var out []string
	for _, s := range m.Vocab[3:m.Specials] {
		if s != m.opts.PadToken {
			out = append(out, s)
		}
	}
	return out
}

func stringList(b *bytes.Buffer, indent string, list []string) {
	if len(list) == 0 {
		b.WriteString("[]")
		return
	}
	b.WriteString("[\n")
	for i, s := range list {
		b.WriteString(indent + "  " + quote(s))
		if i < len(list)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(indent + "]")
}

// TokenizerConfigJSON returns tokenizer_config.json (keys sorted, as
// transformers writes them): BOS "<s>" added, EOS "</s>" not added, the
// pad token, every special token in added_tokens_decoder, the other extra
// specials as additional_special_tokens, model_max_length and the chat
// template when one was given. tokenizer_class is
// PreTrainedTokenizerFast, so that transformers and transformers.js use
// tokenizer.json exactly as written (a Llama class would rebuild parts of
// the pipeline from its own defaults).
func (m *Model) TokenizerConfigJSON() []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"added_tokens_decoder\": {\n")
	for id := 0; id < m.Specials; id++ {
		fmt.Fprintf(&b, "    %s: ", quote(strconv.Itoa(id)))
		addedToken(&b, "    ", id, m.Vocab[id], false)
		if id < m.Specials-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  },\n  \"additional_special_tokens\": ")
	stringList(&b, "  ", m.extraSpecials())
	b.WriteString(",\n  \"bos_token\": \"<s>\",\n")
	if m.opts.ChatTemplate != "" {
		fmt.Fprintf(&b, "  \"chat_template\": %s,\n", quote(m.opts.ChatTemplate))
	}
	b.WriteString("  \"clean_up_tokenization_spaces\": false,\n  \"eos_token\": \"</s>\",\n")
	fmt.Fprintf(&b, "  \"model_max_length\": %d,\n", m.opts.ModelMaxLength)
	if m.opts.PadToken != "" {
		fmt.Fprintf(&b, "  \"pad_token\": %s,\n", quote(m.opts.PadToken))
	} else {
		b.WriteString("  \"pad_token\": null,\n")
	}
	b.WriteString("  \"spaces_between_special_tokens\": false,\n" +
		"  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"unk_token\": \"<unk>\",\n  \"use_default_system_prompt\": false\n}\n")
	return b.Bytes()
}

// SpecialTokensMapJSON returns special_tokens_map.json.
func (m *Model) SpecialTokensMapJSON() []byte {
	var b bytes.Buffer
	tok := func(name, content string, last bool) {
		fmt.Fprintf(&b, "  %s: ", quote(name))
		if content == "" {
			b.WriteString("null")
		} else {
			fmt.Fprintf(&b, "{\n    \"content\": %s,\n    \"lstrip\": false,\n    \"normalized\": false,\n    \"rstrip\": false,\n    \"single_word\": false\n  }", quote(content))
		}
		if !last {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("{\n  \"additional_special_tokens\": ")
	stringList(&b, "  ", m.extraSpecials())
	b.WriteString(",\n")
	tok("bos_token", BOSToken, false)
	tok("eos_token", EOSToken, false)
	tok("pad_token", m.opts.PadToken, false)
	tok("unk_token", UnkToken, true)
	b.WriteString("}\n")
	return b.Bytes()
}

// WriteDir writes tokenizer.json, tokenizer_config.json and
// special_tokens_map.json into dir, creating it.
func (m *Model) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{TokenizerFile, m.TokenizerJSON()},
		{TokenizerConfigFile, m.TokenizerConfigJSON()},
		{SpecialTokensMapFile, m.SpecialTokensMapJSON()},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("bpetrain: %w", err)
		}
	}
	return nil
}
