// Package csvclean implements the csv_clean step kind: it turns one or more
// scraped CSV files into a clean JSONL text corpus ({"text": ...} per line)
// and a report of what it repaired and what it dropped and why.
//
// For every data row it takes the configured text column(s), repairs each
// field (invalid UTF-8 read as Windows-1252, HTML entities decoded, tags
// stripped, mojibake and broken UTF-8 repaired, control and zero-width
// characters removed, white space collapsed, site prefixes and suffixes
// stripped, news outlets' page-title suffixes too), joins the columns with
// one space, and drops the row when the text is empty, is or contains a
// URL, is spam or a promotion, has fewer than min_words words, is not
// capitalized like a headline (min_capitalized), matches a drop_patterns
// expression, or duplicates an earlier kept text exactly or
// (case_insensitive_dedupe) nearly: differing only in case, apostrophes,
// hyphens, periods, other punctuation or spacing. All other characters are
// kept verbatim (curly quotes stay curly). Rows keep their input order and
// the first occurrence (and spelling) of a duplicate wins, so the output
// is deterministic. A line or record longer than max_line_bytes fails the
// step, naming the file and line, before it costs more memory than that.
package csvclean

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

func init() { steps.Register(Kind{}) }

// Kind is the csv_clean step kind.
type Kind struct{}

// Output file names.
const (
	OutputFile = "clean.jsonl"
	ReportFile = "report.json"
)

// Reasons a row is dropped, the keys of report.json's "dropped" map.
const (
	dropMalformed   = "malformed_row"
	dropEmpty       = "empty"
	dropURL         = "url"
	dropSpam        = "spam"
	dropTooShort    = "too_short"
	dropNotCapital  = "not_capitalized"
	dropPattern     = "pattern"
	dropDuplicate   = "duplicate"
	dropDuplicateCI = "duplicate_case_insensitive"
)

var allDrops = []string{dropMalformed, dropEmpty, dropURL, dropSpam, dropTooShort, dropNotCapital, dropPattern,
	dropDuplicate, dropDuplicateCI}

// DefaultSuffixes are the site suffixes found on r/TheOnion titles (the
// Onion's page title, and its sister sites ClickHole and The A.V. Club).
// Matching folds case and typographic quotes and dashes.
var DefaultSuffixes = []string{
	" - The Onion - America's Finest News Source",
	" | The Onion - America's Finest News Source",
	" - The Onion",
	" | The Onion",
	" - ClickHole",
	" | ClickHole",
	" · The A.V. Club",
	" | The A.V. Club",
}

// DefaultPrefixes are the section labels ClickHole's feed puts before its
// headlines ("Life: 5 Unexpected Ways...", "News: Clearing His Name: ...").
// Labels that are part of the joke ("Report:", "Study:") or name a format
// ("Quiz:", "Clickventure:") are not among them.
var DefaultPrefixes = []string{"Life:", "News:", "Video:", "Blog:", "Article:", "Must See:"}

// DefaultDropPatterns drop ClickHole's templated "<Celebrity> said WHAT?!"
// posts, which carry no text beyond a name.
var DefaultDropPatterns = []string{`(?i)^(?:\S+\s+){1,4}said what\?!$`}

func strList(ss []string) cty.Value {
	if len(ss) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "csv_clean",
		Version: "2",
		Doc: "Cleans the text column(s) of one or more CSV files (such as a scrape of r/TheOnion headlines) " +
			"into a JSONL corpus of {\"text\": ...} records: it decodes HTML entities, strips tags, repairs " +
			"mojibake and broken UTF-8, removes zero-width and control characters, strips site prefixes and " +
			"suffixes and news outlets' page-title suffixes (\" | CBC News\"), drops rows that are URLs, spam or " +
			"promotions, too short, not headline-capitalized, matched by a drop pattern, or duplicates (exact, " +
			"or differing only in case, apostrophes, hyphens, periods, punctuation or spacing; the first " +
			"spelling is kept), keeps everything else verbatim in input order, and writes a report of what " +
			"was repaired and what was dropped and why, with a count for every rule.",
		Attributes: []steps.Attribute{
			{Name: "source", Type: cty.List(cty.String), Input: true, Required: true,
				Doc: "The CSV file(s) to clean, read in the order given. Each must start with a header row naming its columns; fields may be quoted (RFC 4180), with commas, quotes and newlines inside quotes."},
			{Name: "columns", Type: cty.List(cty.String), Default: strList([]string{"title"}),
				Doc: "The text column(s) to emit, looked up by header name (exactly, else case-insensitively). Each row gives one record: its cleaned columns joined with one space (empty ones skipped)."},
			{Name: "column", Type: cty.String, Default: cty.NilVal,
				Doc: "Shorthand for columns = [column]. Setting both column and a columns other than the default is an error."},
			{Name: "min_words", Type: cty.Number, Default: cty.NumberIntVal(4),
				Doc: "Drop texts with fewer words than this (a word is a space-separated token containing a letter or digit). 0 keeps all non-empty texts."},
			{Name: "min_capitalized", Type: cty.Number, Default: cty.NumberIntVal(0),
				Doc: "Drop texts in which fewer than this fraction (0 to 1) of the words that start with a cased letter start with a capital. Headlines in title case score 1, sentence-case text low; on the r/TheOnion scrape 0.5 drops 237 rows, nearly all reposted news stories and comments, and keeps the title-case headlines. 0 (the default) disables the check, as it would empty a corpus of ordinary sentences."},
			{Name: "suffixes", Type: cty.List(cty.String), Default: strList(DefaultSuffixes),
				Doc: "Site suffixes to strip from the end of each field, repeatedly, matched ignoring case and typographic quote and dash style, only where a space precedes them. The default lists The Onion's, ClickHole's and The A.V. Club's page-title suffixes."},
			{Name: "strip_outlet_suffixes", Type: cty.Bool, Default: cty.True,
				Doc: "Also strip news outlets' and news sections' page-title suffixes of any site, repeatedly, after the suffixes above: \" | CBC News\", \" - BBC News\", \" | World news\", \" - The New York Times\", \" | Reuters\", \" - CNN.com\". A suffix is taken for an outlet's when it follows \" | \", \" - \", \" – \", \" — \", \" :: \", \" · \" or \" // \", has at most six words, is capitalized like a name and ends with a word outlets' names end with (News, Times, Post, Guardian, Reuters, Journal, a domain, ...), and at least three words precede it."},
			{Name: "prefixes", Type: cty.List(cty.String), Default: strList(DefaultPrefixes),
				Doc: "Section labels to strip from the start of each field, repeatedly, matched like suffixes and only where a space follows them. The default lists ClickHole's feed labels (\"Life:\", \"News:\", ...)."},
			{Name: "drop_urls", Type: cty.Bool, Default: cty.True,
				Doc: "Drop texts that are a URL or bare domain (\"https://www.theonion.com/...\", \"theonion.com/x\") or contain a URL with a scheme or www. (link spam). Domains mentioned in a sentence (\"Launder Money On ClickHole.com\") are kept."},
			{Name: "drop_spam", Type: cty.Bool, Default: cty.True,
				Doc: "Drop obvious spam and promotions: offers to buy reviews, followers, likes or views (\"Buy Google Places Reviews\"), discounts (\"30% OFF\", \"promo code\", \"free shipping\"), calls to action (\"Order now!\", \"limited time offer\"), messenger or phone contacts (\"WhatsApp +1 555 123 4567\") and easy-money offers (\"Earn $500 a day\"). The report counts each rule."},
			{Name: "drop_patterns", Type: cty.List(cty.String), Default: strList(DefaultDropPatterns),
				Doc: "Regular expressions (Go RE2 syntax; prefix (?i) to ignore case) matched against each cleaned text; a text any of them matches is dropped. The default drops ClickHole's templated \"<Name> said WHAT?!\" posts."},
			{Name: "case_insensitive_dedupe", Type: cty.Bool, Default: cty.True,
				Doc: "Besides exact duplicates, drop near-duplicates: texts equal to an earlier kept one when compared on their letters and digits alone, ignoring case, apostrophes (straight, curly or none), hyphens and dashes, periods (\"D.C.\" and \"DC\"), other punctuation and spacing. Accents count. The first occurrence, and its spelling, is kept; the report counts what each near-duplicate differed in."},
			{Name: "skip_malformed", Type: cty.Bool, Default: cty.False,
				Doc: "Drop (and count) rows whose number of fields differs from the header's instead of failing. Quoting errors (an unterminated or stray quote) always fail the step, naming the file, line and column."},
			{Name: "max_line_bytes", Type: cty.Number, Default: cty.NumberIntVal(defaultMaxLineBytes),
				Doc: "The longest line, and the longest record (a quoted field may span lines), read, in bytes (default 1 MiB). A longer one fails the step with its file and line instead of holding it in memory (reading a line costs several times its size); raise it to read such a file."},
		},
		Outputs: []steps.Output{
			{Name: "output", Path: OutputFile, Doc: "The cleaned texts, one compact JSON object {\"text\": ...} per line, in input order."},
			{Name: "report", Path: ReportFile, Doc: "Counts: rows in and out, rows dropped by reason, near-duplicates by what they differed in, spam by rule, texts changed by each repair, per-file counts and a few examples of each drop reason."},
		},
	}
}

// attrConfig is a step's attributes, as steps.Decode reads them, in the
// schema's order. A pipeline may set an attribute to null: column's null
// means it is not set, the bools that default to true (drop_urls,
// strip_outlet_suffixes, drop_spam, case_insensitive_dedupe) and
// max_line_bytes take their default, and every other null means the
// field's zero value (columns: ["title"]).
type attrConfig struct {
	Columns        []string `attr:"columns"`
	Column         *string  `attr:"column"`
	MinWords       int      `attr:"min_words"`
	MinCapitalized float64  `attr:"min_capitalized"`
	Suffixes       []string `attr:"suffixes"`
	OutletSuffixes *bool    `attr:"strip_outlet_suffixes"`
	Prefixes       []string `attr:"prefixes"`
	DropURLs       *bool    `attr:"drop_urls"`
	DropSpam       *bool    `attr:"drop_spam"`
	DropPatterns   []string `attr:"drop_patterns"`
	CIDedupe       *bool    `attr:"case_insensitive_dedupe"`
	SkipMalformed  bool     `attr:"skip_malformed"`
	MaxLineBytes   *int64   `attr:"max_line_bytes"`
}

// config is what a run works with, derived from the attributes.
type config struct {
	columns        []string
	minWords       int
	minCapitalized float64
	prefixes       *affixStripper
	suffixes       *affixStripper
	dropURLs       bool
	patterns       []*regexp.Regexp
	ciDedupe       bool
	skipMalformed  bool
	maxLineBytes   int64
	outletSuffixes bool
	dropSpam       bool
}

// maxMinWords bounds min_words.
const maxMinWords = 1 << 20

// parseConfig decodes and checks the step's attributes. A problem with an
// attribute is a *steps.AttrError naming it (Decode's, for a value of the
// wrong shape, before the checks of the values in the schema's order).
func parseConfig(inv *steps.Invocation) (*config, error) {
	var a attrConfig
	if err := inv.Decode(&a); err != nil {
		return nil, err
	}
	return a.config()
}

// config checks a, in the schema's order, and derives the run's config.
func (a *attrConfig) config() (*config, error) {
	c := &config{columns: a.Columns}
	if err := checkColumns("columns", a.Columns); err != nil {
		return nil, err
	}
	if a.Column != nil {
		if len(a.Columns) > 0 && !(len(a.Columns) == 1 && a.Columns[0] == "title") {
			return nil, &steps.AttrError{Attr: "column", Msg: "set column or columns, not both"}
		}
		c.columns = []string{*a.Column}
		if err := checkColumns("column", c.columns); err != nil {
			return nil, err
		}
	}
	if len(c.columns) == 0 {
		c.columns = []string{"title"}
	}
	if a.MinWords < 0 || a.MinWords > maxMinWords {
		return nil, &steps.AttrError{Attr: "min_words", Msg: fmt.Sprintf("must be between 0 and %d, got %d", maxMinWords, a.MinWords)}
	}
	c.minWords = a.MinWords
	if !(a.MinCapitalized >= 0 && a.MinCapitalized <= 1) {
		return nil, &steps.AttrError{Attr: "min_capitalized", Msg: fmt.Sprintf("must be between 0 and 1, got %v", a.MinCapitalized)}
	}
	c.minCapitalized = a.MinCapitalized
	c.suffixes = newAffixStripper(a.Suffixes, true)
	c.prefixes = newAffixStripper(a.Prefixes, false)
	c.dropURLs = a.DropURLs == nil || *a.DropURLs
	for i, p := range a.DropPatterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, &steps.AttrError{Attr: "drop_patterns", Msg: fmt.Sprintf("element %d (%q): %v", i, p, err)}
		}
		c.patterns = append(c.patterns, re)
	}
	c.ciDedupe = a.CIDedupe == nil || *a.CIDedupe
	c.skipMalformed = a.SkipMalformed
	c.maxLineBytes = defaultMaxLineBytes
	if a.MaxLineBytes != nil {
		if *a.MaxLineBytes < 1 || *a.MaxLineBytes > maxMaxLineBytes {
			return nil, &steps.AttrError{Attr: "max_line_bytes", Msg: fmt.Sprintf("must be between 1 and %d, got %d", int64(maxMaxLineBytes), *a.MaxLineBytes)}
		}
		c.maxLineBytes = *a.MaxLineBytes
	}
	c.outletSuffixes = a.OutletSuffixes == nil || *a.OutletSuffixes
	c.dropSpam = a.DropSpam == nil || *a.DropSpam
	return c, nil
}

// checkColumns checks the column names attribute attr gives: none empty,
// none twice.
func checkColumns(attr string, cols []string) error {
	seen := map[string]bool{}
	for _, col := range cols {
		if strings.TrimSpace(col) == "" {
			return &steps.AttrError{Attr: attr, Msg: "a column name is empty"}
		}
		if seen[col] {
			return &steps.AttrError{Attr: attr, Msg: fmt.Sprintf("column %q is listed twice", col)}
		}
		seen[col] = true
	}
	return nil
}

// Report is the content of report.json.
type Report struct {
	RowsIn  int `json:"rows_in"`
	RowsOut int `json:"rows_out"`
	// Dropped counts dropped rows by reason (every reason present, 0 when
	// none): malformed_row, empty, url, spam, too_short, not_capitalized,
	// pattern, duplicate, duplicate_case_insensitive (a near-duplicate).
	Dropped map[string]int `json:"dropped"`
	// NearDuplicates counts the near-duplicates (duplicate_case_insensitive)
	// by what they differ in from the kept text they repeat: case,
	// apostrophes, hyphens, periods, punctuation, spacing. A row that
	// differs in several ways counts under each.
	NearDuplicates map[string]int `json:"near_duplicates"`
	// Spam counts the rows dropped as spam by the rule that matched:
	// buy_engagement, discount, call_to_action, contact, easy_money.
	Spam map[string]int `json:"spam"`
	// Fixed counts the texts (one per row and column) each repair changed,
	// including texts of rows dropped later.
	Fixed map[string]int `json:"fixed"`
	// Files has per-file counts, in input order.
	Files []FileReport `json:"files"`
	// Examples holds the first few dropped rows of each reason (texts cut
	// to 300 characters).
	Examples map[string][]Example `json:"examples"`
}

// FileReport is one input file's share of the counts.
type FileReport struct {
	Name    string         `json:"name"`
	Columns []string       `json:"columns"`
	RowsIn  int            `json:"rows_in"`
	RowsOut int            `json:"rows_out"`
	Dropped map[string]int `json:"dropped"`
}

// Example is one dropped row.
type Example struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Text string `json:"text"`
	// Of names the earlier kept row a duplicate repeats (file:line).
	Of string `json:"of,omitempty"`
}

const maxExamples = 5

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	cfg, err := parseConfig(inv)
	if err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	sources := inv.Inputs["source"]
	if len(sources) == 0 {
		return fmt.Errorf("%s: source: no CSV file given", inv.Step)
	}
	c := newCleaner(cfg)
	outPath := filepath.Join(inv.OutDir, OutputFile)
	w, err := steps.CreateJSONL(outPath)
	if err != nil {
		return fmt.Errorf("%s: create %s: %w", inv.Step, OutputFile, err)
	}
	var total int64
	for _, src := range sources {
		if st, err := os.Stat(src.Path); err == nil {
			total += st.Size()
		}
	}
	c.progress = func(done int64) { inv.ReportProgress(float64(done), float64(total), "") }
	for _, src := range sources {
		if err := c.cleanFile(ctx, src, w); err != nil {
			_ = w.Close() // the step failed: the engine discards its output folder
			return fmt.Errorf("%s: %w", inv.Step, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: write %s: %w", inv.Step, OutputFile, err)
	}
	inv.Logger().Info("csv_clean done", "rows_in", c.report.RowsIn, "rows_out", c.report.RowsOut)
	if err := steps.WriteJSON(filepath.Join(inv.OutDir, ReportFile), c.report); err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	return nil
}

// cleaner carries the state of one run across its files.
type cleaner struct {
	cfg      *config
	report   *Report
	exact    map[string]string // kept text -> "file:line"
	folded   map[string]kept   // dedupe key -> the kept text
	progress func(done int64)
	base     int64 // bytes of earlier files, for progress
}

// kept is a kept text and where it is.
type kept struct {
	text, where string
}

func newCleaner(cfg *config) *cleaner {
	r := &Report{Dropped: map[string]int{}, Fixed: map[string]int{}, Files: []FileReport{},
		Examples: map[string][]Example{}, NearDuplicates: map[string]int{}, Spam: map[string]int{}}
	for _, d := range allDrops {
		r.Dropped[d] = 0
	}
	for _, n := range allNear {
		r.NearDuplicates[n] = 0
	}
	for _, n := range allSpam {
		r.Spam[n] = 0
	}
	for _, f := range allFixes {
		r.Fixed[f] = 0
	}
	return &cleaner{cfg: cfg, report: r, exact: map[string]string{}, folded: map[string]kept{},
		progress: func(int64) {}}
}

// checkEvery is how many rows pass between checks of ctx and progress.
const checkEvery = 1024

// cleanFile reads one CSV file and writes its kept texts to w.
func (c *cleaner) cleanFile(ctx context.Context, src steps.InputFile, w *steps.JSONLWriter) error {
	name := src.Name
	if name == "" {
		name = filepath.Base(src.Path)
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() { _ = f.Close() }() // read-only
	const bufSize = 1 << 16
	lim := newLimitReader(f, c.cfg.maxLineBytes, bufSize)
	cr := csv.NewReader(bufio.NewReaderSize(lim, bufSize))
	cr.FieldsPerRecord = -1 // checked here, to report the file and line (or skip)
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: the file is empty; expected a header row naming the columns (%s)", name, strings.Join(c.cfg.columns, ", "))
	}
	if err != nil {
		return csvError(name, err)
	}
	lim.recordDone(cr.InputOffset())
	header = append([]string(nil), header...)
	idx, err := lookupColumns(name, header, c.cfg.columns)
	if err != nil {
		return err
	}
	fr := FileReport{Name: name, Dropped: map[string]int{}}
	for _, i := range idx {
		fr.Columns = append(fr.Columns, cleanHeader(header[i]))
	}
	for _, d := range allDrops {
		fr.Dropped[d] = 0
	}
	drop := func(reason string, line int, text, of string) {
		fr.Dropped[reason]++
		c.report.Dropped[reason]++
		if len(c.report.Examples[reason]) < maxExamples {
			c.report.Examples[reason] = append(c.report.Examples[reason], Example{File: name, Line: line, Text: truncate(text, 300), Of: of})
		}
	}
	parts := make([]string, 0, len(idx))
	for row := 0; ; row++ {
		if row%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			c.progress(c.base + cr.InputOffset())
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return csvError(name, err)
		}
		lim.recordDone(cr.InputOffset())
		line, _ := cr.FieldPos(0)
		fr.RowsIn++
		c.report.RowsIn++
		if len(rec) != len(header) {
			if c.cfg.skipMalformed {
				drop(dropMalformed, line, strings.ToValidUTF8(strings.Join(rec, ","), "\uFFFD"), "")
				continue
			}
			return fmt.Errorf("%s:%d: row has %d fields but the header has %d (an unbalanced quote on this or an earlier row, or a missing or extra comma; set skip_malformed = true to drop such rows)",
				name, line, len(rec), len(header))
		}
		parts = parts[:0]
		for _, i := range idx {
			if t := c.cleanField(rec[i]); t != "" {
				parts = append(parts, t)
			}
		}
		text := strings.Join(parts, " ")
		if reason, rule := c.filter(text); reason != "" {
			if reason == dropSpam {
				c.report.Spam[rule]++
			}
			drop(reason, line, text, "")
			continue
		}
		where := fmt.Sprintf("%s:%d", name, line)
		if first, dup := c.exact[text]; dup {
			drop(dropDuplicate, line, text, first)
			continue
		}
		if c.cfg.ciDedupe {
			key := dedupeKey(text)
			if first, dup := c.folded[key]; dup {
				for _, rule := range nearRules(first.text, text) {
					c.report.NearDuplicates[rule]++
				}
				drop(dropDuplicateCI, line, text, first.where)
				continue
			}
			c.folded[key] = kept{text: text, where: where}
		}
		c.exact[text] = where
		if err := w.Write(record{Text: text}); err != nil {
			return fmt.Errorf("write %s: %w", OutputFile, err)
		}
		fr.RowsOut++
		c.report.RowsOut++
	}
	if st, err := f.Stat(); err == nil {
		c.base += st.Size()
	}
	c.progress(c.base)
	c.report.Files = append(c.report.Files, fr)
	return nil
}

// record is one output line.
type record struct {
	Text string `json:"text"`
}

// cleanField applies every repair to one field, counting those that
// changed it.
func (c *cleaner) cleanField(s string) string {
	var changed [16]string // repairs that changed s, each counted once
	nChanged := 0
	apply := func(name string, f func(string) (string, bool)) {
		t, ok := f(s)
		if !ok {
			return
		}
		s = t
		for _, n := range changed[:nChanged] {
			if n == name {
				return
			}
		}
		changed[nChanged] = name
		nChanged++
	}
	apply(fixCP1252, decodeField)
	apply(fixEntities, decodeEntities)
	apply(fixTags, stripTags)
	apply(fixMojibake, repairMojibake)
	apply(fixBrokenUTF8, repairBrokenUTF8)
	// Tags can hide entities ("&am<i></i>p;") and the repairs can uncover
	// more; one more round catches what the first uncovered.
	if strings.ContainsAny(s, "&<") {
		apply(fixEntities, decodeEntities)
		apply(fixTags, stripTags)
		apply(fixMojibake, repairMojibake)
		apply(fixBrokenUTF8, repairBrokenUTF8)
	}
	apply(fixControl, removeControls)
	apply(fixZeroWidth, removeZeroWidth)
	apply(fixWhitespace, normalizeSpace)
	apply(fixPrefix, c.cfg.prefixes.strip)
	apply(fixSuffix, c.cfg.suffixes.strip)
	if c.cfg.outletSuffixes {
		apply(fixOutlet, stripOutletSuffixes)
		apply(fixSuffix, c.cfg.suffixes.strip)
	}
	for _, n := range changed[:nChanged] {
		c.report.Fixed[n]++
	}
	return s
}

// filter returns why a cleaned text is dropped, or "" to keep it, and
// for spam the rule that matched.
func (c *cleaner) filter(text string) (reason, rule string) {
	switch {
	case text == "":
		return dropEmpty, ""
	case c.cfg.dropURLs && (isURL(text) || containsURL(text)):
		return dropURL, ""
	}
	if c.cfg.dropSpam {
		if r := spamRule(text); r != "" {
			return dropSpam, r
		}
	}
	if countWords(text) < c.cfg.minWords {
		return dropTooShort, ""
	}
	if c.cfg.minCapitalized > 0 {
		if frac, n := capitalizedFraction(text); n > 0 && frac < c.cfg.minCapitalized {
			return dropNotCapital, ""
		}
	}
	for _, re := range c.cfg.patterns {
		if re.MatchString(text) {
			return dropPattern, ""
		}
	}
	return "", ""
}

// cleanHeader trims a header name and a leading byte order mark.
func cleanHeader(h string) string {
	return strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
}

// lookupColumns finds each wanted column in the header: exactly (after
// trimming spaces and a BOM), else case-insensitively when that is
// unambiguous.
func lookupColumns(file string, header, want []string) ([]int, error) {
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = cleanHeader(h)
	}
	idx := make([]int, 0, len(want))
	for _, col := range want {
		col = strings.TrimSpace(col)
		var exact, folded []int
		for i, h := range names {
			if h == col {
				exact = append(exact, i)
			} else if strings.EqualFold(h, col) {
				folded = append(folded, i)
			}
		}
		found := exact
		if len(found) == 0 {
			found = folded
		}
		switch len(found) {
		case 1:
			idx = append(idx, found[0])
		case 0:
			quoted := make([]string, len(names))
			for i, h := range names {
				quoted[i] = fmt.Sprintf("%q", truncate(h, 60))
			}
			return nil, fmt.Errorf("%s:1: no column %q in the header; the columns are %s", file, col, strings.Join(quoted, ", "))
		default:
			return nil, fmt.Errorf("%s:1: column %q is ambiguous: header columns %d and %d both match", file, col, found[0]+1, found[1]+1)
		}
	}
	return idx, nil
}

// csvError turns an encoding/csv error into one naming the file, line and
// column of the problem, with a hint.
func csvError(file string, err error) error {
	var long *errTooLong
	if errors.As(err, &long) {
		return fmt.Errorf("%s:%w", file, long)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		hint := ""
		switch {
		case errors.Is(pe.Err, csv.ErrBareQuote):
			hint = ` (a " inside an unquoted field: quote the field and double the quote, as ""x"")`
		case errors.Is(pe.Err, csv.ErrQuote):
			hint = ` (a quoted field is not closed, or its closing quote is followed by text; the field started on line ` + fmt.Sprint(pe.StartLine) + `)`
		}
		return fmt.Errorf("%s:%d:%d: malformed CSV: %v%s", file, pe.Line, pe.Column, pe.Err, hint)
	}
	return fmt.Errorf("%s: read CSV: %w", file, err)
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k] + "…"
		}
		i++
	}
	return s
}

// Validate checks the config when the pipeline is loaded.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := parseConfig(inv)
	return err
}
