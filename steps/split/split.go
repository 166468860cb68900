// Package split implements the split step kind: it merges JSONL datasets,
// removes duplicate texts across them, shuffles deterministically by seed
// and writes a training and a validation set. Records are copied verbatim
// (the bytes of their input line), so fields other than "text" (for
// example synth_tools' "messages" and "call") survive. docs/steps-split.md
// describes the step for users.
package split

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/text/unicode/norm"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/steps"
)

func init() { steps.Register(Kind{}) }

// Kind is the split step kind.
type Kind struct{}

// Version is the implementation version; bump it whenever the output for
// the same inputs and config can change.
const Version = "1"

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "split",
		Version: Version,
		Doc: "Merges JSONL datasets (records with a \"text\" field), drops duplicate texts across them " +
			"(exact and case/whitespace-insensitive, first occurrence kept), shuffles deterministically by " +
			"seed and writes train.jsonl and validation.jsonl, taking the validation share from each input " +
			"in proportion to its size. Records are copied byte for byte.",
		Attributes: []steps.Attribute{
			{Name: "inputs", Type: cty.List(cty.String), Input: true, Required: true,
				Doc: "JSONL files, one JSON object per line, each with a non-empty string field \"text\"."},
			{Name: "validation", Type: cty.Number, Default: cty.NumberFloatVal(0.05),
				Doc: "Size of the validation set: a fraction of the records when below 1 (0.05 = 5%), a number of records when 1 or more (a whole number); 0 for none."},
			{Name: "seed", Type: cty.Number, Default: cty.NumberIntVal(42),
				Doc: "Seed of the shuffle."},
			{Name: "dedupe", Type: cty.Bool, Default: cty.True,
				Doc: "Drop records whose text duplicates an earlier record's, exactly or after lower-casing and collapsing whitespace (first occurrence in input order kept)."},
			{Name: "stratify", Type: cty.Bool, Default: cty.True,
				Doc: "Take the validation records from each input in proportion to its size (every input with 2 or more records gets at least one when there are enough), instead of from the merged pool."},
		},
		Outputs: []steps.Output{
			{Name: "train", Path: "train.jsonl", Doc: "Training records, shuffled."},
			{Name: "validation", Path: "validation.jsonl", Doc: "Validation records, shuffled."},
			{Name: "report", Path: "report.json", Doc: "Per input and in total: records read, duplicates dropped, records to train and to validation."},
		},
	}
}

// InputReport is one input's line of report.json.
type InputReport struct {
	// Name is the input as the pipeline names it.
	Name   string `json:"name"`
	Digest string `json:"digest,omitempty"`
	// Records is the number of records read (non-blank lines).
	Records int `json:"records"`
	// DuplicatesExact counts records dropped because an earlier record had
	// the same text byte for byte; DuplicatesNormalized those whose text
	// differed from an earlier one only in case or whitespace.
	DuplicatesExact      int `json:"duplicates_exact"`
	DuplicatesNormalized int `json:"duplicates_normalized"`
	// Kept = Records - duplicates = Train + Validation.
	Kept       int `json:"kept"`
	Train      int `json:"train"`
	Validation int `json:"validation"`
	// DuplicateExamples shows the first few dropped duplicates.
	DuplicateExamples []DuplicateExample `json:"duplicate_examples,omitempty"`
}

// DuplicateExample is one dropped record: its line, and the name:line of
// the record it duplicates.
type DuplicateExample struct {
	Line int    `json:"line"`
	Kind string `json:"kind"` // "exact" or "normalized"
	Of   string `json:"of"`
}

// Totals sums the inputs.
type Totals struct {
	Records              int `json:"records"`
	DuplicatesExact      int `json:"duplicates_exact"`
	DuplicatesNormalized int `json:"duplicates_normalized"`
	Kept                 int `json:"kept"`
	Train                int `json:"train"`
	Validation           int `json:"validation"`
}

// Report is report.json.
type Report struct {
	// Validation is the attribute as given; Mode is "fraction" or "count".
	Validation float64 `json:"validation"`
	Mode       string  `json:"mode"`
	// ValidationTarget is the validation set's size as computed from the
	// attribute and the number of kept records.
	ValidationTarget int           `json:"validation_target"`
	Seed             int64         `json:"seed"`
	Dedupe           bool          `json:"dedupe"`
	Stratify         bool          `json:"stratify"`
	Inputs           []InputReport `json:"inputs"`
	Totals           Totals        `json:"totals"`
}

const maxExamples = 5

type record struct {
	raw  []byte
	src  int
	line int
}

type firstSeen struct {
	src, line int
}

// streamSplit is the PCG's second seed word ("mlsplit\x00"), fixed so that
// the seed attribute alone selects the stream.
const streamSplit = 0x6d6c73706c697400

// config is a split step's attributes, as steps.Decode reads them.
type config struct {
	Validation float64 `attr:"validation"`
	Seed       int64   `attr:"seed"`
	Dedupe     bool    `attr:"dedupe"`
	Stratify   bool    `attr:"stratify"`

	mode string // "fraction" or "count", from Validation
}

// readConfig decodes and checks the non-input attributes, in the schema's
// order; errors are *steps.AttrError naming the attribute at fault.
func readConfig(inv *steps.Invocation) (config, error) {
	var c config
	if err := inv.Decode(&c); err != nil {
		return c, err
	}
	c.mode = "fraction"
	switch v := c.Validation; {
	case math.IsNaN(v) || v < 0:
		return c, &steps.AttrError{Attr: "validation", Msg: fmt.Sprintf("must be a fraction in [0, 1) or a count >= 1, got %v", v)}
	case v >= 1:
		c.mode = "count"
		if v != math.Trunc(v) || v > math.MaxInt32 {
			return c, &steps.AttrError{Attr: "validation", Msg: fmt.Sprintf("must be a whole number when 1 or more (a number of records), got %v; use a value below 1 for a fraction", v)}
		}
	}
	return c, nil
}

// Validate implements steps.Validator: config errors are reported when
// the pipeline is loaded.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := readConfig(inv)
	return err
}

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	files := inv.Inputs["inputs"]
	if len(files) == 0 {
		return fmt.Errorf("%s: inputs is empty: list at least one JSONL file", inv.Step)
	}
	cfg, err := readConfig(inv)
	if err != nil {
		return err // an *steps.AttrError: the engine names the step and points at the attribute
	}
	valAttr, seed, dedupe, stratify := cfg.Validation, cfg.Seed, cfg.Dedupe, cfg.Stratify
	rep := &Report{Validation: valAttr, Mode: cfg.mode, Seed: seed, Dedupe: dedupe, Stratify: stratify}

	// Read every input, dropping duplicates.
	exact := map[[32]byte]firstSeen{}
	normal := map[[32]byte]firstSeen{}
	var kept []record
	for si, f := range files {
		name := f.Name
		if name == "" {
			name = f.Path
		}
		ir := InputReport{Name: name, Digest: f.Digest}
		var lineErr error
		err := steps.ReadJSONL(f.Path, func(line int, raw []byte) error {
			raw = bytes.TrimSpace(raw)
			if line == 1 {
				if raw = bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("\ufeff"))); len(raw) == 0 {
					return nil
				}
			}
			text, err := checkRecord(raw)
			if err != nil {
				lineErr = fmt.Errorf("%s: %s:%d: %w", inv.Step, name, line, err)
				return lineErr
			}
			ir.Records++
			if dedupe {
				ek := sha256.Sum256([]byte(text))
				nk := sha256.Sum256([]byte(normalize(text)))
				kind, of := "", firstSeen{}
				if prev, dup := exact[ek]; dup {
					kind, of = "exact", prev
					ir.DuplicatesExact++
				} else if prev, dup := normal[nk]; dup {
					kind, of = "normalized", prev
					ir.DuplicatesNormalized++
				}
				if kind != "" {
					if len(ir.DuplicateExamples) < maxExamples {
						ofName := files[of.src].Name
						if ofName == "" {
							ofName = files[of.src].Path
						}
						ir.DuplicateExamples = append(ir.DuplicateExamples, DuplicateExample{
							Line: line, Kind: kind, Of: fmt.Sprintf("%s:%d", ofName, of.line)})
					}
					return nil
				}
				exact[ek] = firstSeen{si, line}
				normal[nk] = firstSeen{si, line}
			}
			kept = append(kept, record{raw: bytes.Clone(raw), src: si, line: line})
			ir.Kept++
			return nil
		})
		if lineErr != nil {
			return lineErr
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", inv.Step, name, unwrapPath(err))
		}
		rep.Inputs = append(rep.Inputs, ir)
		inv.ReportProgress(float64(si+1), float64(len(files)), "read "+name)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	n := len(kept)
	if n == 0 {
		return fmt.Errorf("%s: the inputs hold no records", inv.Step)
	}

	// Size of the validation set.
	var target int
	if rep.Mode == "count" {
		target = int(valAttr)
		if target >= n {
			return fmt.Errorf("%s: validation = %d, but only %d records remain after deduplication; at least one must go to train", inv.Step, target, n)
		}
	} else {
		target = int(math.Round(valAttr * float64(n)))
		if valAttr > 0 && target == 0 && n >= 2 {
			target = 1
		}
		target = min(target, n-1)
	}
	rep.ValidationTarget = target

	// Per-source quotas, then a seeded shuffle of each pool.
	sizes := make([]int, len(files))
	for _, r := range kept {
		sizes[r.src]++
	}
	r := seeded.New(uint64(seed), streamSplit)
	var train, val []record
	if stratify {
		quotas := allocate(target, sizes)
		bySrc := make([][]record, len(files))
		for _, rec := range kept {
			bySrc[rec.src] = append(bySrc[rec.src], rec)
		}
		for si, pool := range bySrc {
			r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
			val = append(val, pool[:quotas[si]]...)
			train = append(train, pool[quotas[si]:]...)
		}
	} else {
		r.Shuffle(n, func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
		val = append(val, kept[:target]...)
		train = append(train, kept[target:]...)
	}
	// Interleave the sources.
	r.Shuffle(len(train), func(i, j int) { train[i], train[j] = train[j], train[i] })
	r.Shuffle(len(val), func(i, j int) { val[i], val[j] = val[j], val[i] })
	for _, rec := range train {
		rep.Inputs[rec.src].Train++
	}
	for _, rec := range val {
		rep.Inputs[rec.src].Validation++
	}
	for _, ir := range rep.Inputs {
		rep.Totals.Records += ir.Records
		rep.Totals.DuplicatesExact += ir.DuplicatesExact
		rep.Totals.DuplicatesNormalized += ir.DuplicatesNormalized
		rep.Totals.Kept += ir.Kept
		rep.Totals.Train += ir.Train
		rep.Totals.Validation += ir.Validation
	}

	if err := writeLines(filepath.Join(inv.OutDir, "train.jsonl"), train); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(inv.OutDir, "validation.jsonl"), val); err != nil {
		return err
	}
	inv.Logger().Info("split", "records", rep.Totals.Records,
		"duplicates", rep.Totals.DuplicatesExact+rep.Totals.DuplicatesNormalized,
		"train", len(train), "validation", len(val))
	return steps.WriteJSON(filepath.Join(inv.OutDir, "report.json"), rep)
}

// checkRecord validates one line and returns its text: the line must be
// valid UTF-8 and a JSON object whose "text" is a string with some
// non-space content.
func checkRecord(raw []byte) (string, error) {
	text, err := steps.RecordText(raw)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(text) == "" {
		return "", errors.New(`"text" is empty`)
	}
	return text, nil
}

// normalize is the key of case/whitespace-insensitive deduplication: NFC,
// lower-cased, whitespace runs collapsed to one space, trimmed.
func normalize(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(norm.NFC.String(s))), " ")
}

// allocate splits target validation records among sources of the given
// sizes in proportion to their sizes (largest remainder; ties to the
// earlier source), then gives every source with 2 or more records at
// least one when target allows, taking it from the source with the most.
func allocate(target int, sizes []int) []int {
	total := 0
	for _, s := range sizes {
		total += s
	}
	q := make([]int, len(sizes))
	if target == 0 || total == 0 {
		return q
	}
	type rem struct {
		i   int
		num int // remainder numerator: target*size mod total
	}
	given := 0
	rems := make([]rem, 0, len(sizes))
	for i, s := range sizes {
		p := target * s // exact: target < total and sizes fit in memory
		q[i] = p / total
		given += q[i]
		rems = append(rems, rem{i, p % total})
	}
	// Largest remainders first; stable on index for ties.
	for given < target {
		best := -1
		for k, r := range rems {
			if r.num >= 0 && q[r.i] < sizes[r.i] && (best < 0 || r.num > rems[best].num) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		q[rems[best].i]++
		rems[best].num = -1
		given++
	}
	// Representation: every source with 2+ records gets one, if another
	// source can spare it.
	for i, s := range sizes {
		if s < 2 || q[i] > 0 {
			continue
		}
		donor := -1
		for j := range sizes {
			if q[j] > 1 && (donor < 0 || q[j] > q[donor]) {
				donor = j
			}
		}
		if donor < 0 {
			break
		}
		q[donor]--
		q[i]++
	}
	return q
}

// writeLines writes each record's bytes and a newline.
func writeLines(path string, recs []record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for _, r := range recs {
		// A bufio.Writer's first error sticks: Flush below returns it.
		_, _ = w.Write(r.raw)
		_ = w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		_ = f.Close() // the failed write is the error to report
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// unwrapPath rewrites an I/O error from steps.ReadJSONL without the
// absolute path (the caller prefixes the input's name).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
