package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

// lm is a loaded model with its own tokenizer.
type lm struct {
	m *llama.Model
	// batch runs the generations eval runs at once (see eachParallel)
	// with their decoding steps batched.
	batch *llama.Batcher
	tok   *tokenizer.Tokenizer
	enc   *trainingdata.Encoder
	// stopIDs maps the ids that end a turn to the stop reason: the
	// end-of-sequence ids and the chat tags that are single tokens.
	stopIDs map[int]string
	// context is the longest sequence the model runs.
	context int
}

// loadLM loads the model directory of an input: llama weights and config,
// and the directory's own tokenizer.json. Errors are one sentence naming
// the directory as the pipeline names it.
func loadLM(in steps.InputFile, be tensor.Backend) (*lm, error) {
	name := in.Name
	if name == "" {
		name = in.Path
	}
	rename := func(err error) error {
		return errors.New(strings.ReplaceAll(err.Error(), in.Path, name))
	}
	dir, err := llama.ModelDir(in.Path) // a .gguf file becomes a converted directory
	if err != nil {
		return nil, rename(err)
	}
	m, err := llama.Load(dir, be)
	if err != nil {
		return nil, rename(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, rename(err)
	}
	if tok.VocabSize() > m.Config.VocabSize {
		return nil, fmt.Errorf("model %s: its tokenizer.json has %d tokens but config.json's vocab_size is %d", name, tok.VocabSize(), m.Config.VocabSize)
	}
	// The model is prompted in its own chat template (SmolLM2's ChatML, a
	// Llama-3 model's), as qlora_train trained it; TwainBot's when its
	// tokenizer_config.json names none that mlbuild knows.
	tpl, _, err := chat.ForModelDir(dir, nil)
	if err != nil {
		return nil, rename(err)
	}
	l := &lm{m: m, batch: llama.NewBatcher(m), tok: tok, enc: trainingdata.NewEncoderFor(tok, tpl), stopIDs: map[int]string{}}
	for _, tag := range l.enc.Stops() {
		if id, ok := tok.TokenID(tag); ok {
			l.stopIDs[id] = tag
		}
	}
	for _, id := range m.Config.EOSTokenIDs {
		l.stopIDs[id] = StopEOS
	}
	if eos := tok.EOS(); eos >= 0 {
		l.stopIDs[eos] = StopEOS
	}
	l.context = m.Config.MaxPositionEmbeddings
	if w := m.Config.SlidingWindow; w > 0 && w < l.context {
		l.context = w
	}
	return l, nil
}

// loss returns the summed cross-entropy (nats) of labels shifted by one
// (position i predicts labels[i+1]; IgnoreIndex labels are skipped) and the
// number of scored tokens, running the model over ids with a fresh cache in
// chunks so that at most a few million logits are held at once.
func (l *lm) loss(ctx context.Context, ids, labels []int) (float64, int, error) {
	if len(ids) < 2 {
		return 0, 0, nil
	}
	cache, err := l.m.NewCache(len(ids))
	if err != nil {
		return 0, 0, err
	}
	defer cache.Free(l.m.Backend())
	vocab := l.m.Config.VocabSize
	chunk := min(max((8<<20)/vocab, 16), 512)
	sum, n := 0.0, 0
	for start := 0; start < len(ids)-1; start += chunk {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		end := min(start+chunk, len(ids)-1) // the last id predicts nothing
		logits, err := l.m.Forward(cache, ids[start:end], true)
		if err != nil {
			return 0, 0, err
		}
		for i := start; i < end; i++ {
			label := labels[i+1]
			if label == trainingdata.IgnoreIndex {
				continue
			}
			sum += crossEntropy(logits[(i-start)*vocab:(i-start+1)*vocab], label)
			n++
		}
	}
	return sum, n, nil
}

// crossEntropy is -log softmax(logits)[label], in float64.
func crossEntropy(logits []float32, label int) float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	s := 0.0
	for _, v := range logits {
		s += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(s) - float64(logits[label])
}

// generator returns the model's generateFunc: greedy decoding of up to
// maxNew tokens (fewer when the context is nearly full), stopping at a
// stop id (checked before the token is decoded) or when the decoded text
// reaches a chat tag (for tokenizers that spell the tags as several
// tokens). It is safe for concurrent use: generations under way at once
// are decoded in batches, each with exactly the tokens it gets alone.
func (l *lm) generator(maxNew int) generateFunc {
	stops := l.enc.Stops()
	return func(ctx context.Context, msgs []chat.Message) (generation, error) {
		ids := l.enc.EncodePrompt(msgs)
		budget := min(maxNew, l.context-len(ids))
		if len(ids) == 0 || budget <= 0 {
			return generation{Stop: StopContext}, nil
		}
		var text strings.Builder
		stop := ""
		// cut ends the text at the first tag in it, if any.
		cut := func() bool {
			s, tag, ok := cutAtTag(text.String(), stops)
			if ok {
				text.Reset()
				text.WriteString(s)
				stop = tag
			}
			return ok
		}
		dec := l.tok.NewStreamDecoder(true)
		out, err := l.batch.Generate(ctx, ids, llama.GenOptions{MaxTokens: budget}, func(id int) error {
			if reason, ok := l.stopIDs[id]; ok {
				stop = reason
				return llama.ErrStop
			}
			piece, err := dec.Next(id)
			if err != nil {
				return err
			}
			text.WriteString(piece)
			if cut() {
				return llama.ErrStop
			}
			return nil
		})
		if err != nil {
			return generation{}, err
		}
		if stop == "" {
			text.WriteString(dec.Flush())
			if !cut() && len(out) >= budget {
				stop = StopMaxTokens
				if budget < maxNew {
					stop = StopContext
				}
			}
		}
		return generation{Text: text.String(), Stop: stop}, nil
	}
}

// cutAtTag returns s up to the earliest of tags in it, and that tag.
func cutAtTag(s string, tags []string) (string, string, bool) {
	at, tag := -1, ""
	for _, t := range tags {
		if i := strings.Index(s, t); i >= 0 && (at < 0 || i < at) {
			at, tag = i, t
		}
	}
	if at < 0 {
		return s, "", false
	}
	return s[:at], tag, true
}
