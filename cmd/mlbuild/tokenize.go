package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/dustin/go-humanize"

	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// cmdTokenize implements `mlbuild tokenize --model DIR [--special]`: JSON
// lines {"text": ...} on stdin become {"text": ..., "ids": [...]} on stdout.
func cmdTokenize(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokenize", stdout, stderr)
	model := fs.String("model", "", "model directory holding tokenizer.json (or the tokenizer.json file itself)")
	special := fs.Bool("special", false, "add the tokenizer's default special tokens, such as BOS")
	maxLine := fs.String("max-line-bytes", "16MiB", "refuse a line longer than this (`SIZE`: 4MiB, 100MB, 0 for no limit); encoding a line takes up to about 40 times its size in memory")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: mlbuild tokenize --model DIR [--special] < in.jsonl > out.jsonl

Reads JSON lines {"text": ...} and writes {"text": ..., "ids": [...]} per line,
with the ids of the model's Hugging Face tokenizer.json.

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
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "mlbuild tokenize: unexpected argument %q (the text comes on stdin)\n", pos[0])
		return exitError{2}
	}
	if *model == "" {
		fmt.Fprintln(stderr, "mlbuild tokenize: --model DIR is required")
		return exitError{2}
	}
	limit, err := humanize.ParseBytes(*maxLine)
	if err != nil || limit > math.MaxInt32 {
		fmt.Fprintf(stderr, "mlbuild tokenize: --max-line-bytes %q: want a size such as 16MiB or 100MB, at most 2GiB\n", *maxLine)
		return exitError{2}
	}
	tok, err := tokenizer.Load(*model)
	if err != nil {
		return err
	}
	if err := tok.EncodeJSONLMax(&ctxReader{ctx, stdin}, stdout, *special, int(limit)); err != nil {
		if errors.Is(err, tokenizer.ErrLineTooLong) {
			return fmt.Errorf("tokenize: stdin %w; the limit is --max-line-bytes (now %s)", err, *maxLine)
		}
		return fmt.Errorf("tokenize: stdin %w", err)
	}
	return nil
}

// ctxReader stops reading once ctx is done (Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
