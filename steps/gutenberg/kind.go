// Package gutenberg implements the gutenberg_chunk step kind: it turns
// Project Gutenberg plain-text books into JSONL chunks of whole paragraphs
// for language-model training, with the Project Gutenberg header, footer
// and license, tables of contents, headings, illustration markers,
// footnotes and credits removed.
package gutenberg

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

func init() { steps.Register(Kind{}) }

// Kind is the gutenberg_chunk step kind.
type Kind struct{}

// Output file names.
const (
	chunksFile = "chunks.jsonl"
	reportFile = "report.json"
)

// Defaults.
const (
	defaultMinWords = 200
	defaultMaxWords = 500
)

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "gutenberg_chunk",
		Version: "2",
		Doc: "Splits Project Gutenberg plain-text books into chunks of min_words to max_words words for " +
			"language-model training. It reads UTF-8, Latin-1/Windows-1252 (with any UTF-8 in them read as UTF-8) " +
			"and UTF-16 files with or without BOM and with any line endings; strips the header, footer and license " +
			"in all three styles (\"*** START OF THE PROJECT GUTENBERG EBOOK\", \"*** START OF THIS PROJECT " +
			"GUTENBERG EBOOK\", the old \"SMALL PRINT!\"); drops the title page, tables of contents, lists of " +
			"chapter summaries and page-numbered lists of illustrations (headed or not), epigraphs, chapter and " +
			"section headings with their titles (wrapped or not) and summaries, [Illustration] markers, footnotes, " +
			"transcriber's notes and lists of corrections, navigation lines of text made from HTML and producer " +
			"credits; joins hard-wrapped lines into paragraphs (keeping verse lines); and cuts " +
			"chunks on paragraph boundaries, falling back to sentence boundaries only inside a paragraph " +
			"longer than max_words. Writes one JSON line per chunk and a report of what was found and dropped.",
		Attributes: []steps.Attribute{
			{
				Name: "source", Type: cty.List(cty.String), Input: true, Required: true,
				Doc: "Project Gutenberg .txt files, or directories searched recursively for *.txt files (taken in path order).",
			},
			{
				Name: "min_words", Type: cty.Number, Default: cty.NumberIntVal(defaultMinWords),
				Doc: "Fewest words in a chunk (at least 1). Only a book's last chunk may be shorter, and only down to half of this.",
			},
			{
				Name: "max_words", Type: cty.Number, Default: cty.NumberIntVal(defaultMaxWords),
				Doc: "Most words in a chunk (at least min_words).",
			},
			{
				Name: "keep_headings", Type: cty.Bool, Default: cty.False,
				Doc: "Keep chapter and section headings (\"CHAPTER I.\", \"PREFACE\") as paragraphs of their own instead of dropping them.",
			},
		},
		Outputs: []steps.Output{
			{Name: "output", Path: chunksFile, Doc: `JSON lines {"text", "source", "title", "author", "chunk"}, one per chunk, books in input order.`},
			{Name: "report", Path: reportFile, Doc: "Per book: header style, encoding, lines, paragraphs, words, chunks, what was dropped and why, warnings; and totals."},
		},
	}
}

// chunkConfig is a step's attributes, as steps.Decode reads them. The
// counts are pointers because a pipeline may set them to null, which means
// the default.
type chunkConfig struct {
	MinWords     *int `attr:"min_words"`
	MaxWords     *int `attr:"max_words"`
	KeepHeadings bool `attr:"keep_headings"`
}

// options are the checked values a book is processed with.
type options struct {
	minWords, maxWords int
	keepHeadings       bool
}

// maxWordsLimit bounds min_words and max_words.
const maxWordsLimit = 1 << 30

// readOptions decodes and checks the step's attributes, in the schema's
// order. A problem with an attribute is a *steps.AttrError naming it
// (Decode's, for a value of the wrong shape, before the range checks).
func readOptions(inv *steps.Invocation) (options, error) {
	var c chunkConfig
	if err := inv.Decode(&c); err != nil {
		return options{}, err
	}
	return c.options()
}

// options checks c, in the schema's order, and applies the defaults.
func (c *chunkConfig) options() (options, error) {
	o := options{minWords: defaultMinWords, maxWords: defaultMaxWords, keepHeadings: c.KeepHeadings}
	if c.MinWords != nil {
		if err := checkWords("min_words", *c.MinWords); err != nil {
			return options{}, err
		}
		o.minWords = *c.MinWords
	}
	if c.MaxWords != nil {
		if err := checkWords("max_words", *c.MaxWords); err != nil {
			return options{}, err
		}
		o.maxWords = *c.MaxWords
	}
	if o.maxWords < o.minWords {
		return options{}, &steps.AttrError{Attr: "max_words", Msg: fmt.Sprintf("must be at least min_words (%d), got %d", o.minWords, o.maxWords)}
	}
	return o, nil
}

// checkWords checks a word count attribute's range.
func checkWords(attr string, n int) error {
	if n < 1 || n > maxWordsLimit {
		return &steps.AttrError{Attr: attr, Msg: fmt.Sprintf("must be between 1 and %d, got %d", maxWordsLimit, n)}
	}
	return nil
}

// bookFile is one book to read.
type bookFile struct {
	path string // where to read it
	name string // for messages: the input's pipeline name, plus the path inside a directory
}

// collectInputs expands directories into their *.txt files, sorted by path.
func collectInputs(step string, ins []steps.InputFile) ([]bookFile, error) {
	if len(ins) == 0 {
		return nil, fmt.Errorf("%s: attribute \"source\" names no files", step)
	}
	var out []bookFile
	for _, in := range ins {
		name := in.Name
		if name == "" {
			name = in.Path
		}
		st, err := os.Stat(in.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: source %s: %w", step, name, err)
		}
		if !st.IsDir() {
			out = append(out, bookFile{path: in.Path, name: name})
			continue
		}
		n := 0
		err = filepath.WalkDir(in.Path, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !strings.EqualFold(filepath.Ext(p), ".txt") {
				return nil
			}
			rel, rerr := filepath.Rel(in.Path, p)
			if rerr != nil {
				rel = filepath.Base(p)
			}
			out = append(out, bookFile{path: p, name: name + "/" + filepath.ToSlash(rel)})
			n++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: source %s: %w", step, name, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: source %s: directory holds no .txt files", step, name)
		}
	}
	return out, nil
}

// chunkRecord is one line of chunks.jsonl; the field order is the JSON order.
type chunkRecord struct {
	Text   string `json:"text"`
	Source string `json:"source"`
	Title  string `json:"title"`
	Author string `json:"author"`
	Chunk  int    `json:"chunk"`
}

// bookReport is one book's entry in report.json.
type bookReport struct {
	Source       string         `json:"source"`
	Title        string         `json:"title"`
	Author       string         `json:"author"`
	MetaFrom     string         `json:"meta_from"`
	Style        string         `json:"style"`
	Encoding     string         `json:"encoding"`
	BOM          bool           `json:"bom"`
	LineEndings  string         `json:"line_endings"`
	Lines        int            `json:"lines"`
	BodyLines    int            `json:"body_lines"`
	HeaderLines  int            `json:"header_lines"`
	FooterLines  int            `json:"footer_lines"`
	LicenseLines int            `json:"license_lines"`
	Paragraphs   int            `json:"paragraphs"`
	Words        int            `json:"words"`
	Chunks       int            `json:"chunks"`
	ChunkWords   minMax         `json:"chunk_words"`
	Boundaries   map[string]int `json:"boundaries"`
	Dropped      drops          `json:"dropped"`
	Warnings     []string       `json:"warnings"`

	chunks []chunkRecord // written to chunks.jsonl, not to the report
}

type minMax struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

type totals struct {
	Books        int    `json:"books"`
	Lines        int    `json:"lines"`
	Paragraphs   int    `json:"paragraphs"`
	Words        int    `json:"words"`
	Chunks       int    `json:"chunks"`
	DroppedWords int    `json:"dropped_words"`
	Dropped      drops  `json:"dropped"`
	ChunkWords   minMax `json:"chunk_words"`
	Warnings     int    `json:"warnings"`
}

type report struct {
	MinWords     int          `json:"min_words"`
	MaxWords     int          `json:"max_words"`
	KeepHeadings bool         `json:"keep_headings"`
	Books        []bookReport `json:"books"`
	Totals       totals       `json:"totals"`
}

// Validate implements steps.Validator: it checks the attributes when the
// pipeline is loaded, so that the engine points at the one at fault.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := readOptions(inv)
	return err
}

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	opts, err := readOptions(inv)
	if err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	files, err := collectInputs(inv.Step, inv.Inputs["source"])
	if err != nil {
		return err
	}
	outPath := filepath.Join(inv.OutDir, chunksFile)
	w, err := steps.CreateJSONL(outPath)
	if err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	rep := report{MinWords: opts.minWords, MaxWords: opts.maxWords, KeepHeadings: opts.keepHeadings, Books: []bookReport{}}
	fail := func(err error) error {
		_ = w.Close() // the step failed: the engine discards its output folder
		return err
	}
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		raw, err := os.ReadFile(f.path)
		if err != nil {
			return fail(fmt.Errorf("%s: read %s: %w", inv.Step, f.name, err))
		}
		br, err := processBook(ctx, raw, filepath.Base(f.path), opts)
		if err != nil {
			return fail(fmt.Errorf("%s: %s: %w", inv.Step, f.name, err))
		}
		for _, c := range br.chunks {
			if err := w.Write(c); err != nil {
				return fail(fmt.Errorf("%s: write %s: %w", inv.Step, chunksFile, err))
			}
		}
		for _, msg := range br.Warnings {
			inv.Logger().Warn(msg, "book", f.name)
		}
		rep.add(br)
		inv.ReportProgress(float64(i+1), float64(len(files)), filepath.Base(f.path))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: write %s: %w", inv.Step, chunksFile, err)
	}
	if err := steps.WriteJSON(filepath.Join(inv.OutDir, reportFile), rep); err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	return nil
}

func (r *report) add(b bookReport) {
	t := &r.Totals
	t.Books++
	t.Lines += b.Lines
	t.Paragraphs += b.Paragraphs
	t.Words += b.Words
	if b.Chunks > 0 {
		if t.Chunks == 0 || b.ChunkWords.Min < t.ChunkWords.Min {
			t.ChunkWords.Min = b.ChunkWords.Min
		}
		t.ChunkWords.Max = max(t.ChunkWords.Max, b.ChunkWords.Max)
	}
	t.Chunks += b.Chunks
	t.Dropped.addAll(b.Dropped)
	t.DroppedWords = t.Dropped.words()
	t.Warnings += len(b.Warnings)
	b.chunks = nil
	r.Books = append(r.Books, b)
}

// processBook turns one file's bytes into chunks and its report. It never
// fails on content; it returns an error only when ctx is cancelled.
func processBook(ctx context.Context, raw []byte, source string, opts options) (bookReport, error) {
	dec := decode(raw)
	lines := strings.Split(dec.text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	br := bookReport{
		Source:      source,
		Encoding:    dec.encoding,
		BOM:         dec.bom,
		LineEndings: dec.lineEndings,
		Lines:       len(lines),
		Boundaries:  map[string]int{},
		Warnings:    []string{},
	}
	for _, name := range boundaryNames {
		br.Boundaries[name] = 0
	}
	b := findBounds(lines)
	br.Style = b.style
	br.HeaderLines = b.start
	br.FooterLines = len(lines) - b.end
	br.BodyLines = b.end - b.start
	br.LicenseLines = b.license
	switch {
	case !b.marker && b.guessed:
		br.Warnings = append(br.Warnings, fmt.Sprintf("no Project Gutenberg START marker: guessed that the header ends at line %d", b.start))
	case !b.marker:
		br.Warnings = append(br.Warnings, "no Project Gutenberg START marker or SMALL PRINT header: the whole file was taken as the book")
	}
	if !b.footer {
		br.Warnings = append(br.Warnings, "no Project Gutenberg END marker or footer: the book was taken to run to the end of the file")
	}
	if err := ctx.Err(); err != nil {
		return br, err
	}

	if w := encodingWarning(lines[:b.start], dec.encoding); w != "" {
		br.Warnings = append(br.Warnings, w)
	}
	fallback := strings.TrimSuffix(source, filepath.Ext(source))
	m := findMeta(lines[:b.start], fallback)
	body := lines[b.start:b.end]
	paras, d, front := extract(body, opts.keepHeadings)
	if len(front) == 0 {
		front = body[:min(len(body), 40)]
	}
	m = refineMeta(m, front)
	br.Title, br.Author, br.MetaFrom = m.title, m.author, m.source
	br.Paragraphs = len(paras)
	if err := ctx.Err(); err != nil {
		return br, err
	}

	toks := tokenize(paras)
	ends, tail := segment(toks, opts.minWords, opts.maxWords)
	start := 0
	for k, e := range ends {
		if k < len(ends)-1 || tail > 0 {
			br.Boundaries[boundaryNames[toks[e-1].class]]++
		}
		br.chunks = append(br.chunks, chunkRecord{
			Text: joinTokens(toks[start:e]), Source: source, Title: m.title, Author: m.author, Chunk: len(br.chunks),
		})
		br.addChunkWords(e - start)
		start = e
	}
	if tail > 0 {
		if tail*2 >= opts.minWords {
			br.chunks = append(br.chunks, chunkRecord{
				Text: joinTokens(toks[start:]), Source: source, Title: m.title, Author: m.author, Chunk: len(br.chunks),
			})
			br.addChunkWords(tail)
		} else {
			d.Tail.Items++
			d.Tail.Words += tail
		}
	}
	br.Chunks = len(br.chunks)
	br.Dropped = d
	if br.Chunks == 0 {
		br.Warnings = append(br.Warnings, fmt.Sprintf("no chunk: the book's text has %d words, fewer than half of min_words (%d)", len(toks), opts.minWords))
	}
	return br, nil
}

func (br *bookReport) addChunkWords(n int) {
	br.Words += n
	if br.ChunkWords.Min == 0 || n < br.ChunkWords.Min {
		br.ChunkWords.Min = n
	}
	br.ChunkWords.Max = max(br.ChunkWords.Max, n)
}
