// Package tokenizertrain implements the tokenizer_train step kind: it
// trains a SentencePiece-style BPE tokenizer with byte fallback (the kind
// Llama-2 and Mistral use; see ml/bpetrain) on the pipeline's own corpus
// and writes it as a Hugging Face tokenizer directory (tokenizer.json,
// tokenizer_config.json with a chat template, special_tokens_map.json), so
// that a demo pipeline can build its own small base model when no model
// is at hand.
package tokenizertrain

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/bpetrain"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

func init() { steps.Register(Kind{}) }

// Kind is the tokenizer_train step kind.
type Kind struct{}

// Version is the implementation version; bump it whenever the output for
// the same inputs and config can change.
const Version = "1"

// Output paths.
const (
	outputDir  = "tokenizer"
	reportFile = "report.json"
)

func defaultSpecials() cty.Value {
	vals := make([]cty.Value, len(bpetrain.DefaultSpecialTokens))
	for i, s := range bpetrain.DefaultSpecialTokens {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "tokenizer_train",
		Version: Version,
		Doc: "Trains a SentencePiece-style BPE tokenizer with byte fallback (the format of Llama-2 and Mistral: " +
			"\"▁\" for spaces, <0x00>..<0xFF> byte tokens for characters outside the vocabulary, <s> added in front) " +
			"on the \"text\" of JSONL records (or on .txt files) and writes a Hugging Face tokenizer directory: " +
			"tokenizer.json, tokenizer_config.json (BOS/EOS/pad tokens and the chat template as Jinja) and " +
			"special_tokens_map.json. Vocabulary: <unk>, <s>, </s>, the special tokens, the 256 byte tokens, the " +
			"characters covering character_coverage of the text, then merged pieces, most frequent pair first " +
			"(ties to the lexicographically smallest pair). Special-token text in the corpus is atomic and not trained on. " +
			"Deterministic: the same corpus and config give byte-identical files.",
		Attributes: []steps.Attribute{
			{Name: "inputs", Type: cty.List(cty.String), Input: true, Required: true,
				Doc: "The corpus: JSONL files whose records have a string field \"text\" (for example split's train output), and plain-text files (.txt, read whole)."},
			{Name: "vocab_size", Type: cty.Number, Default: cty.NumberIntVal(bpetrain.DefaultVocabSize),
				Doc: "Vocabulary size to reach, every token counted (specials, 256 bytes, characters, pieces); at least 323 + the number of special tokens. Training stops earlier when no pair occurs min_frequency times; report.json says how many were reached."},
			{Name: "character_coverage", Type: cty.Number, Default: cty.NumberFloatVal(bpetrain.DefaultCharacterCoverage),
				Doc: "Share of the corpus' characters (by count) that get a token of their own, in (0, 1]; the rarest characters beyond it are encoded as bytes (SentencePiece's rule)."},
			{Name: "special_tokens", Type: cty.List(cty.String), Default: defaultSpecials(),
				Doc: "Special tokens after <unk>, <s> and </s>, ids 3, 4, ... in this order; \"<pad>\" becomes the pad token. Must include the chat template's tokens."},
			{Name: "chat_template", Type: cty.String, Default: cty.StringVal("twainbot"),
				Doc: "Name of a chat template of ml/chat (twainbot, llama3, phi3; not mistral), written into tokenizer_config.json as an equivalent Jinja chat_template; \"\" for none."},
			{Name: "max_chars", Type: cty.Number, Default: cty.NumberIntVal(0),
				Doc: "Read at most this many characters of the corpus (inputs in order; the record that crosses the cap is cut); 0 reads everything."},
			{Name: "min_frequency", Type: cty.Number, Default: cty.NumberIntVal(bpetrain.DefaultMinFrequency),
				Doc: "Least number of occurrences of a pair for it to be merged."},
			{Name: "conversations", Type: cty.String, Default: cty.StringVal(trainingdata.ConversationsAll),
				Doc: `What to read of chat-format records (synth_tools conversations): "all" (default), "prompts" (their system, user and tool messages, each distinct system prompt once, never the assistant's turns — the text a base model pretrained with conversations = "prompts" reads, so that every token is one it learned) or "skip".`},
			{Name: "model_max_length", Type: cty.Number, Default: cty.NumberIntVal(bpetrain.DefaultModelMaxLength),
				Doc: "model_max_length written into tokenizer_config.json."},
		},
		Outputs: []steps.Output{
			{Name: "output", Path: outputDir, Dir: true,
				Doc: "The tokenizer directory: tokenizer.json, tokenizer_config.json, special_tokens_map.json."},
			{Name: "report", Path: reportFile,
				Doc: "Vocabulary reached, merges, characters kept and dropped, per input records and characters read, and the compression (characters and bytes per token) on the corpus."},
		},
	}
}

// config is a tokenizer_train step's attributes, as steps.Decode reads
// them.
type config struct {
	VocabSize         int      `attr:"vocab_size"`
	CharacterCoverage float64  `attr:"character_coverage"`
	SpecialTokens     []string `attr:"special_tokens"`
	ChatTemplate      string   `attr:"chat_template"` // a name of ml/chat, "" for none
	MaxChars          int64    `attr:"max_chars"`
	MinFrequency      int      `attr:"min_frequency"`
	Conversations     string   `attr:"conversations"`
	ModelMaxLength    int      `attr:"model_max_length"`

	opts bpetrain.Options // from the fields above
}

// readConfig decodes and checks the non-input attributes, each in the
// schema's order, then what bpetrain checks of them together; errors are
// *steps.AttrError naming the attribute at fault.
func readConfig(inv *steps.Invocation) (config, error) {
	var c config
	if err := inv.Decode(&c); err != nil {
		return c, err
	}
	specials := c.SpecialTokens
	if min := bpetrain.MinVocabSize(len(specials)); c.VocabSize < min || c.VocabSize > math.MaxInt32 {
		return c, &steps.AttrError{Attr: "vocab_size", Msg: fmt.Sprintf("must be at least %d (3 + %d special tokens + 256 byte tokens + 64 characters or pieces), got %d", min, len(specials), c.VocabSize)}
	}
	if cov := c.CharacterCoverage; math.IsNaN(cov) || cov <= 0 || cov > 1 {
		return c, &steps.AttrError{Attr: "character_coverage", Msg: fmt.Sprintf("must be in (0, 1], got %v", cov)}
	}
	seen := map[string]bool{bpetrain.UnkToken: true, bpetrain.BOSToken: true, bpetrain.EOSToken: true}
	for _, s := range specials {
		switch {
		case strings.TrimSpace(s) == "":
			return c, &steps.AttrError{Attr: "special_tokens", Msg: "a special token is empty or blank"}
		case seen[s]:
			return c, &steps.AttrError{Attr: "special_tokens", Msg: fmt.Sprintf("%q is listed twice (or is one of <unk>, <s>, </s>, which every tokenizer has)", s)}
		}
		seen[s] = true
	}
	var jinja string
	if c.ChatTemplate != "" {
		tpl, err := chat.Lookup(c.ChatTemplate)
		if err != nil {
			return c, &steps.AttrError{Attr: "chat_template", Msg: strings.TrimPrefix(err.Error(), "chat: ")}
		}
		if jinja, err = tpl.Jinja(); err != nil {
			return c, &steps.AttrError{Attr: "chat_template", Msg: strings.TrimPrefix(err.Error(), "chat: ")}
		}
		var missing []string
		for _, s := range tpl.SpecialTokens {
			if !seen[s] {
				missing = append(missing, fmt.Sprintf("%q", s))
			}
		}
		if len(missing) > 0 {
			return c, &steps.AttrError{Attr: "special_tokens", Msg: fmt.Sprintf("chat template %q needs the special tokens %s; add them to special_tokens", c.ChatTemplate, strings.Join(missing, ", "))}
		}
	}
	if c.MaxChars < 0 {
		return c, &steps.AttrError{Attr: "max_chars", Msg: fmt.Sprintf("must be 0 (no cap) or positive, got %d", c.MaxChars)}
	}
	if c.MinFrequency < 1 || c.MinFrequency > math.MaxInt32 {
		return c, &steps.AttrError{Attr: "min_frequency", Msg: fmt.Sprintf("must be at least 1, got %d", c.MinFrequency)}
	}
	if !slices.Contains(trainingdata.ConversationModes, c.Conversations) {
		return c, &steps.AttrError{Attr: "conversations", Msg: fmt.Sprintf("must be \"all\", \"prompts\" or \"skip\", got %q", c.Conversations)}
	}
	if c.ModelMaxLength < 1 || c.ModelMaxLength > math.MaxInt32 {
		return c, &steps.AttrError{Attr: "model_max_length", Msg: fmt.Sprintf("must be positive, got %d", c.ModelMaxLength)}
	}
	c.opts = bpetrain.Options{
		VocabSize:         c.VocabSize,
		CharacterCoverage: c.CharacterCoverage,
		SpecialTokens:     specials,
		MinFrequency:      c.MinFrequency,
		ModelMaxLength:    c.ModelMaxLength,
		ChatTemplate:      jinja,
	}
	if _, err := bpetrain.NewTrainer(c.opts); err != nil {
		return c, &steps.AttrError{Attr: "special_tokens", Msg: strings.TrimPrefix(err.Error(), "bpetrain: ")}
	}
	return c, nil
}

// Validate implements steps.Validator.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := readConfig(inv)
	return err
}

// InputReport is one input's line of report.json.
type InputReport struct {
	Name   string `json:"name"`
	Digest string `json:"digest,omitempty"`
	// Format is "jsonl" or "text".
	Format string `json:"format"`
	// Records is the number of texts read (JSONL records; 1 for a text
	// file), Chars their characters (after the max_chars cap).
	Records int   `json:"records"`
	Chars   int64 `json:"chars"`
}

// Report is report.json.
type Report struct {
	VocabSize         int     `json:"vocab_size"`
	Vocab             int     `json:"vocab"`
	Merges            int     `json:"merges"`
	SpecialTokens     int     `json:"special_tokens"`
	CharTokens        int     `json:"char_tokens"`
	CharsDropped      int     `json:"chars_dropped"`
	CharacterCoverage float64 `json:"character_coverage"`
	Coverage          float64 `json:"coverage"`
	Words             int     `json:"words"`
	ChatTemplate      string  `json:"chat_template,omitempty"`
	// StoppedEarly says training ran out of pairs occurring min_frequency
	// times before reaching vocab_size.
	StoppedEarly bool          `json:"stopped_early"`
	Inputs       []InputReport `json:"inputs"`
	Records      int           `json:"records"`
	CharsRead    int64         `json:"chars_read"`
	BytesRead    int64         `json:"bytes_read"`
	// Truncated says reading stopped at max_chars (the corpus may have
	// held more).
	Truncated bool `json:"truncated"`
	// Tokens is the number of tokens of the corpus (no special tokens
	// added); CharsPerToken and BytesPerToken the compression.
	Tokens        int64   `json:"tokens"`
	CharsPerToken float64 `json:"chars_per_token"`
	BytesPerToken float64 `json:"bytes_per_token"`
}

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	files := inv.Inputs["inputs"]
	if len(files) == 0 {
		return fmt.Errorf("%s: inputs is empty: list at least one JSONL or .txt file", inv.Step)
	}
	cfg, err := readConfig(inv)
	if err != nil {
		return err // an *steps.AttrError: the engine names the step and points at the attribute
	}
	rep := &Report{VocabSize: cfg.opts.VocabSize, CharacterCoverage: cfg.opts.CharacterCoverage,
		ChatTemplate: cfg.ChatTemplate, SpecialTokens: 3 + len(cfg.opts.SpecialTokens)}
	opts := cfg.opts
	opts.Progress = func(done, total int) {
		inv.ReportProgress(float64(done), float64(total), fmt.Sprintf("%d merges", done))
	}
	tr, err := bpetrain.NewTrainer(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}

	// Read the corpus, up to max_chars characters.
	var texts []string
	var chars int64
	seenSystem := map[string]bool{}
	full := func() bool { return cfg.MaxChars > 0 && chars >= cfg.MaxChars }
	for _, f := range files {
		name := f.Name
		if name == "" {
			name = f.Path
		}
		ir := InputReport{Name: name, Digest: f.Digest, Format: "jsonl"}
		if isText(f) {
			ir.Format = "text"
		}
		add := func(text string) bool {
			if ir.Format == "jsonl" {
				t, ok := trainingdata.PretrainingText(text, cfg.Conversations, seenSystem)
				if !ok {
					return true
				}
				text = t
			}
			n := int64(utf8.RuneCountInString(text))
			if cfg.MaxChars > 0 && chars+n > cfg.MaxChars {
				n = cfg.MaxChars - chars
				text = cutRunes(text, n)
			}
			if text != "" {
				tr.Add(text)
				texts = append(texts, text)
			}
			ir.Records++
			ir.Chars += n
			chars += n
			return !full()
		}
		if !full() {
			if err := readInput(f.Path, name, ir.Format, add); err != nil {
				return fmt.Errorf("%s: %w", inv.Step, err)
			}
		}
		rep.Inputs = append(rep.Inputs, ir)
		rep.Records += ir.Records
		inv.ReportProgress(0, 0, "read "+name)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	rep.Truncated = full()
	rep.CharsRead, rep.BytesRead = tr.Chars(), tr.Bytes()

	start := time.Now()
	m, err := tr.Train(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	trainTime := time.Since(start)
	rep.Vocab, rep.Merges = len(m.Vocab), len(m.Merges)
	rep.CharTokens, rep.CharsDropped, rep.Coverage, rep.Words = m.Chars, m.CharsDropped, round(m.Coverage, 6), m.Words
	rep.StoppedEarly = len(m.Vocab) < cfg.opts.VocabSize

	dir := filepath.Join(inv.OutDir, outputDir)
	if err := m.WriteDir(dir); err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	// Compression, with the files as written.
	tk, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("%s: the trained tokenizer does not load: %w", inv.Step, err)
	}
	var ids []int
	for i, s := range texts {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ids = tk.AppendEncode(ids[:0], s, false)
		rep.Tokens += int64(len(ids))
	}
	if rep.Tokens > 0 {
		rep.CharsPerToken = round(float64(rep.CharsRead)/float64(rep.Tokens), 4)
		rep.BytesPerToken = round(float64(rep.BytesRead)/float64(rep.Tokens), 4)
	}
	inv.Logger().Info("tokenizer_train", "vocab", rep.Vocab, "merges", rep.Merges, "chars", rep.CharsRead,
		"train_time", trainTime.Round(time.Millisecond), "chars_per_token", rep.CharsPerToken)
	return steps.WriteJSON(filepath.Join(inv.OutDir, reportFile), rep)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// cutRunes returns the first n characters of s.
func cutRunes(s string, n int64) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// isText says whether an input is a plain-text file (.txt) rather than
// JSONL.
func isText(f steps.InputFile) bool {
	ext := strings.ToLower(filepath.Ext(f.Path))
	if ext == "" {
		ext = strings.ToLower(filepath.Ext(f.Name))
	}
	return ext == ".txt"
}

// readInput calls add with every text of the file (each JSONL record's
// "text", or a text file's whole content, BOM removed, CRLF kept) until add
// returns false. Errors name the file and line.
func readInput(path, name, format string, add func(string) bool) error {
	if format == "text" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", name, unwrapPath(err))
		}
		data = bytes.TrimPrefix(data, []byte("\ufeff"))
		if !utf8.Valid(data) {
			return fmt.Errorf("%s: the file is not valid UTF-8 (convert it, or clean it with gutenberg_chunk)", name)
		}
		add(string(data))
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", name, unwrapPath(err))
	}
	defer func() { _ = f.Close() }() // read-only
	r := bufio.NewReaderSize(f, 1<<16)
	for line := 1; ; line++ {
		raw, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: read: %w", name, unwrapPath(err))
		}
		raw = bytes.TrimSpace(raw)
		if line == 1 {
			raw = bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("\ufeff")))
		}
		if len(raw) > 0 {
			text, rerr := steps.RecordText(raw)
			if rerr != nil {
				return fmt.Errorf("%s:%d: %w", name, line, rerr)
			}
			if !add(text) {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// unwrapPath drops the absolute path from an I/O error (the caller names
// the input).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
