package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// cmdGenerate implements `mlbuild generate --model DIR --prompt TEXT ...`:
// it continues the prompt with the model and prints the text as it is
// generated.
func cmdGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate", stdout, stderr)
	model := fs.String("model", "", "Hugging Face model directory (config.json, safetensors weights, tokenizer.json) or llama-architecture .gguf file")
	prompt := fs.String("prompt", "", "the text to continue (with --chat: the user's message)")
	maxTokens := fs.Int("max-tokens", 128, "most tokens to generate")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy decoding")
	topK := fs.Int("top-k", 0, "sample from the K most likely tokens only (0: all)")
	topP := fs.Float64("top-p", 1, "sample from the smallest set of tokens whose probability reaches P (1: all)")
	seed := fs.Uint64("seed", 0, "sampling seed (the same seed gives the same text)")
	useChat := fs.Bool("chat", false, "render the prompt as a user turn with the model's chat template and stop at the template's stop strings")
	device := deviceFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: mlbuild generate --model DIR|FILE.gguf [--prompt] TEXT [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--chat] [--device D]

Runs a llama-family model (Llama, Mistral, Phi-3, SmolLM2; a Hugging Face
directory or a GGUF file) on the CPU (--device: see docs/gpu.md; the CUDA
backend has not yet run on a GPU) and prints the continuation of the
prompt as it is generated. Generation stops at the
model's end-of-sequence token, at --max-tokens, or (with --chat) at the chat
template's stop strings.

`)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2}
	}
	if len(pos) == 1 && *prompt == "" {
		// `generate --model M --chat "question"`: the text may be given as
		// the one argument instead of with --prompt.
		*prompt, pos = pos[0], nil
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "mlbuild generate: unexpected argument %q (give one text, as the argument or with --prompt)\n", pos[0])
		return exitError{2}
	case *model == "":
		fmt.Fprintln(stderr, "mlbuild generate: --model DIR is required")
		return exitError{2}
	case *maxTokens <= 0:
		fmt.Fprintln(stderr, "mlbuild generate: --max-tokens must be positive")
		return exitError{2}
	case *temperature < 0 || *topK < 0 || !(*topP > 0 && *topP <= 1):
		fmt.Fprintln(stderr, "mlbuild generate: --temperature and --top-k must not be negative, and --top-p must be in (0, 1]")
		return exitError{2}
	}

	g, err := newGenerator(*model, *useChat, device.open(fs, stderr))
	if err != nil {
		return err
	}
	opts := llama.GenOptions{MaxTokens: *maxTokens, Temperature: *temperature, TopK: *topK, TopP: *topP, Seed: *seed}
	var ids []int
	if *useChat {
		ids = g.encodeChat([]chat.Message{{Role: chat.RoleUser, Content: *prompt}})
	} else {
		ids = g.tok.Encode(*prompt, true)
	}
	if len(ids) == 0 {
		return errors.New("generate: the prompt encodes to no tokens and the tokenizer adds no BOS; give a non-empty --prompt")
	}
	return g.stream(ctx, ids, opts, stdout)
}

// generator is a loaded model with its tokenizer and, for chat, its chat
// template.
type generator struct {
	m     *llama.Model
	tok   *tokenizer.Tokenizer
	tmpl  *chat.Template // nil without chat
	stops []string       // stop strings (chat only)
	// stopIDs are the end-of-sequence ids and the stops that are single
	// tokens (special tokens are dropped from the streamed text, so those
	// must stop by id).
	stopIDs []int
}

func newGenerator(dir string, withChat bool, open func() (tensor.Backend, error)) (*generator, error) {
	dir, err := llama.ModelDir(dir) // a .gguf file becomes a converted directory
	if err != nil {
		return nil, err
	}
	be, err := open()
	if err != nil {
		return nil, err
	}
	m, err := llama.Load(dir, be)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	g := &generator{m: m, tok: tok}
	g.stopIDs = append(g.stopIDs, m.Config.EOSTokenIDs...)
	if eos := tok.EOS(); eos >= 0 {
		g.stopIDs = append(g.stopIDs, eos)
	}
	if withChat {
		if g.tmpl, err = chatTemplate(dir); err != nil {
			return nil, err
		}
		g.stops = g.tmpl.Stops()
		for _, s := range g.stops {
			if id, ok := tok.TokenID(s); ok {
				g.stopIDs = append(g.stopIDs, id)
			}
		}
	}
	return g, nil
}

// encodeChat renders a conversation with the generation prompt; the text
// already holds the template's special tokens.
func (g *generator) encodeChat(msgs []chat.Message) []int {
	return g.tok.Encode(g.tmpl.Render(msgs, true), false)
}

// stream generates from ids and writes the text to w as it comes, up to a
// stop; it ends with a newline when it wrote anything.
func (g *generator) stream(ctx context.Context, ids []int, opts llama.GenOptions, w io.Writer) error {
	opts.StopTokens = append(append([]int(nil), opts.StopTokens...), g.stopIDs...)
	out := &stopWriter{w: w, stops: g.stops}
	// The text continues the prompt's: decoding the new ids on their own
	// would treat the first as the start of a text and drop its leading
	// space (SentencePiece's "▁park" after "went to the").
	dec := g.tok.NewStreamDecoderAfter(ids, true)
	_, genErr := g.m.Generate(ctx, ids, opts, func(id int) error {
		piece, err := dec.Next(id)
		if err != nil {
			return err
		}
		return out.write(piece)
	})
	if genErr == nil {
		genErr = out.write(dec.Flush())
	}
	if genErr == nil || errors.Is(genErr, llama.ErrStop) {
		genErr = out.close()
	}
	if genErr != nil {
		return fmt.Errorf("generate: %w", genErr)
	}
	return nil
}

// chatTemplate recognises the model's chat template from its
// tokenizer_config.json.
func chatTemplate(dir string) (*chat.Template, error) {
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--chat needs the model's tokenizer_config.json to pick a chat template: %w", err)
	}
	name, ok := chat.Detect(data)
	if !ok {
		return nil, fmt.Errorf("--chat: %s has no chat template that mlbuild recognises (it knows %s)", path, strings.Join(chat.Names(), ", "))
	}
	return chat.Lookup(name)
}

// stopWriter streams text to w, holding back any tail that could be the
// start of a stop string, and ends the stream (llama.ErrStop) at the first
// stop string, which it does not print.
type stopWriter struct {
	w       io.Writer
	stops   []string
	held    string
	wrote   bool
	stopped bool
}

func (s *stopWriter) write(text string) error {
	if s.stopped {
		return llama.ErrStop
	}
	s.held += text
	at := -1
	for _, st := range s.stops {
		if i := strings.Index(s.held, st); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at >= 0 {
		s.stopped = true
		if err := s.emit(s.held[:at]); err != nil {
			return err
		}
		s.held = ""
		return llama.ErrStop
	}
	keep := 0
	for _, st := range s.stops {
		for n := min(len(st)-1, len(s.held)); n > keep; n-- {
			if strings.HasSuffix(s.held, st[:n]) {
				keep = n
				break
			}
		}
	}
	err := s.emit(s.held[:len(s.held)-keep])
	s.held = s.held[len(s.held)-keep:]
	return err
}

func (s *stopWriter) emit(text string) error {
	if text == "" {
		return nil
	}
	s.wrote = true
	_, err := io.WriteString(s.w, text)
	return err
}

// close prints what is still held back and ends the line.
func (s *stopWriter) close() error {
	if err := s.emit(s.held); err != nil {
		return err
	}
	s.held = ""
	if s.wrote {
		_, err := io.WriteString(s.w, "\n")
		return err
	}
	return nil
}
