package gutenberg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/steps"
)

func config(min, max int) map[string]cty.Value {
	return map[string]cty.Value{
		"min_words":     cty.NumberIntVal(int64(min)),
		"max_words":     cty.NumberIntVal(int64(max)),
		"keep_headings": cty.False,
	}
}

// run executes the kind and returns the chunks, the report and the raw
// chunks.jsonl bytes.
func run(t testing.TB, cfg map[string]cty.Value, paths ...string) ([]chunkRecord, report, []byte, error) {
	t.Helper()
	var ins []steps.InputFile
	for _, p := range paths {
		ins = append(ins, steps.InputFile{Path: p, Name: filepath.Base(p)})
	}
	out := t.TempDir()
	inv := &steps.Invocation{
		Step:    "gutenberg_chunk.books",
		Config:  cfg,
		Inputs:  map[string][]steps.InputFile{"source": ins},
		OutDir:  out,
		TempDir: t.TempDir(),
	}
	if err := (Kind{}).Run(context.Background(), inv); err != nil {
		return nil, report{}, nil, err
	}
	raw, err := os.ReadFile(filepath.Join(out, chunksFile))
	if err != nil {
		t.Fatal(err)
	}
	var chunks []chunkRecord
	err = steps.ReadJSONL(filepath.Join(out, chunksFile), func(line int, b []byte) error {
		var c chunkRecord
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return err
		}
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	rb, err := os.ReadFile(filepath.Join(out, reportFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rb, &rep); err != nil {
		t.Fatal(err)
	}
	return chunks, rep, raw, nil
}

func writeFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSchema(t *testing.T) {
	s := Kind{}.Schema()
	if s.Kind != "gutenberg_chunk" || s.Version != "2" || s.Doc == "" {
		t.Errorf("schema %+v", s)
	}
	k, ok := steps.Default.Lookup("gutenberg_chunk")
	if !ok {
		t.Fatal("gutenberg_chunk is not registered")
	}
	if _, ok := k.(Kind); !ok {
		t.Errorf("registered %T", k)
	}
	attrs := map[string]steps.Attribute{}
	for _, a := range s.Attributes {
		attrs[a.Name] = a
	}
	if a := attrs["source"]; !a.Input || !a.Required || !a.Type.Equals(cty.List(cty.String)) {
		t.Errorf("source %+v", a)
	}
	if a := attrs["min_words"]; !a.Default.RawEquals(cty.NumberIntVal(200)) {
		t.Errorf("min_words %+v", a)
	}
	if a := attrs["max_words"]; !a.Default.RawEquals(cty.NumberIntVal(500)) {
		t.Errorf("max_words %+v", a)
	}
	if a := attrs["keep_headings"]; !a.Default.RawEquals(cty.False) {
		t.Errorf("keep_headings %+v", a)
	}
	if len(s.Outputs) != 2 || s.Outputs[0].Name != "output" || s.Outputs[0].Path != "chunks.jsonl" || s.Outputs[1].Name != "report" || s.Outputs[1].Path != "report.json" {
		t.Errorf("outputs %+v", s.Outputs)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	book := writeFile(t, dir, "b.txt", "text\n")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	frac := config(200, 500)
	frac["min_words"] = cty.NumberFloatVal(2.5)
	tests := []struct {
		name string
		cfg  map[string]cty.Value
		path string
		want string
	}{
		{"zero min", config(0, 500), book, "min_words"},
		{"max below min", config(300, 200), book, "max_words"},
		{"fraction", frac, book, "min_words"},
		{"missing file", config(200, 500), filepath.Join(dir, "nope.txt"), "nope.txt"},
		{"empty directory", config(200, 500), empty, "no .txt files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := run(t, tc.cfg, tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "gutenberg_chunk.books") {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	if _, _, _, err := run(t, config(200, 500)); err == nil {
		t.Error("no source: no error")
	}
}

func TestRunCancelled(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "b.txt", "text\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inv := &steps.Invocation{
		Step: "gutenberg_chunk.books", Config: config(200, 500), OutDir: t.TempDir(),
		Inputs: map[string][]steps.InputFile{"source": {{Path: p, Name: "b.txt"}}},
	}
	if err := (Kind{}).Run(ctx, inv); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// story returns n paragraphs of about 60 words each.
func story(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("The river ran on past the town and the boys watched it from the bank, talking of\n")
		b.WriteString("pirates and treasure and the cave, and of what they would do when they were rich.\n")
		b.WriteString("Nobody listened to them; the afternoon was warm and the town was asleep. They threw\n")
		b.WriteString("stones at the water for a while and then went home to supper.\n\n")
	}
	return b.String()
}

func TestRunStylesAndDirectories(t *testing.T) {
	dir := t.TempDir()
	newStyle := "\ufeffThe Project Gutenberg eBook of River Days\r\n\r\nTitle: River Days\r\n\r\nAuthor: Jane Doe\r\n\r\n*** START OF THE PROJECT GUTENBERG EBOOK RIVER DAYS ***\r\n\r\n\r\nCHAPTER I.\r\n\r\n" +
		strings.ReplaceAll(story(10), "\n", "\r\n") + "*** END OF THE PROJECT GUTENBERG EBOOK RIVER DAYS ***\r\n\r\nSTART: FULL LICENSE\r\nThe Project Gutenberg License.\r\n"
	mid := "The Project Gutenberg EBook of Town Days, by John Roe\n\n*** START OF THIS PROJECT GUTENBERG EBOOK TOWN DAYS ***\n\nProduced by Someone\n\n\n\n" + story(5) +
		"End of the Project Gutenberg EBook of Town Days, by John Roe\n\n*** END OF THIS PROJECT GUTENBERG EBOOK TOWN DAYS ***\n"
	old := "The Project Gutenberg Etext of Cave Days, by Ann Poe\n\n***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n" +
		strings.ReplaceAll(story(7), "\n", "\r\n")
	latin := "Caf\xe9 days, by nobody.\n\n" + story(4)
	writeFile(t, dir, "b/mid.txt", mid)
	writeFile(t, dir, "a/new.txt", newStyle)
	writeFile(t, dir, "b/old.TXT", old)
	writeFile(t, dir, "b/notes.md", "not a book")
	single := writeFile(t, t.TempDir(), "latin.txt", latin)

	chunks, rep, raw, err := run(t, config(100, 150), dir, single)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, b := range rep.Books {
		order = append(order, b.Source+":"+b.Style+":"+b.Encoding)
	}
	if got := strings.Join(order, " "); got != "new.txt:new:utf-8 mid.txt:mid:ascii old.TXT:old:ascii latin.txt:none:iso-8859-1" {
		t.Errorf("books %s", got)
	}
	want := map[string][2]string{
		"new.txt": {"River Days", "Jane Doe"}, "mid.txt": {"Town Days", "John Roe"},
		"old.TXT": {"Cave Days", "Ann Poe"}, "latin.txt": {"latin", ""},
	}
	next := map[string]int{}
	for _, c := range chunks {
		if w := want[c.Source]; c.Title != w[0] || c.Author != w[1] {
			t.Errorf("%s: title %q author %q", c.Source, c.Title, c.Author)
		}
		if c.Chunk != next[c.Source] {
			t.Errorf("%s: chunk %d, want %d", c.Source, c.Chunk, next[c.Source])
		}
		next[c.Source]++
		if n := len(strings.Fields(c.Text)); n < 100 || n > 150 {
			t.Errorf("%s chunk %d: %d words", c.Source, c.Chunk, n)
		}
		for _, bad := range []string{"Project Gutenberg", "CHAPTER", "Produced by", "SMALL PRINT", "\r", "\ufeff"} {
			if strings.Contains(c.Text, bad) {
				t.Errorf("%s chunk %d contains %q", c.Source, c.Chunk, bad)
			}
		}
	}
	if rep.Totals.Chunks != len(chunks) || rep.Totals.Books != 4 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if b := rep.Books[0]; !b.BOM || b.LineEndings != "crlf" || b.Dropped.Headings.Items != 1 || len(b.Warnings) != 0 {
		t.Errorf("new book report %+v", b)
	}
	if b := rep.Books[1]; b.Dropped.Credits.Items != 1 {
		t.Errorf("mid book report %+v", b)
	}
	if b := rep.Books[2]; len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], "END marker") {
		t.Errorf("old book warnings %q", b.Warnings)
	}
	if b := rep.Books[3]; len(b.Warnings) != 2 || !strings.HasPrefix(chunks[len(chunks)-next["latin.txt"]].Text, "Café days, by nobody.") {
		t.Errorf("latin book warnings %q", b.Warnings)
	}
	// Deterministic.
	_, _, raw2, err := run(t, config(100, 150), dir, single)
	if err != nil || !bytes.Equal(raw, raw2) {
		t.Errorf("second run differs (err %v)", err)
	}
	// Field order is fixed.
	if !bytes.HasPrefix(raw, []byte(`{"text":"`)) || !bytes.Contains(raw, []byte(`","source":"new.txt","title":"River Days","author":"Jane Doe","chunk":0}`)) {
		t.Errorf("first line %.200s", raw)
	}
}

func TestRunTinyBook(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "tiny.txt", "*** START OF THE PROJECT GUTENBERG EBOOK X ***\nOnly a few words here.\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
	chunks, rep, _, err := run(t, config(200, 500), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 0 || rep.Books[0].Dropped.Tail.Words != 5 || len(rep.Books[0].Warnings) != 1 {
		t.Errorf("chunks %v report %+v", chunks, rep.Books[0])
	}
	// A book of 150 words with min 200 keeps them as one short last chunk.
	p = writeFile(t, dir, "short.txt", story(2)+"One two three four five six seven eight nine ten.\n")
	chunks, _, _, err = run(t, config(200, 500), p)
	if err != nil || len(chunks) != 1 {
		t.Fatalf("chunks %d err %v", len(chunks), err)
	}
}

var headingLineRe = regexp.MustCompile(`(?m)^\s*(?:CHAPTER|Chapter)\b`)

// TestRealBooks runs the step on the three real Project Gutenberg files, one
// in each header style.
func TestRealBooks(t *testing.T) {
	dir := shareddata.Path(t, "gutenberg")
	chunks, rep, raw, err := run(t, config(200, 500), dir)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		style, encoding, title, author string
		chunks                         int
		first, last                    string
	}
	wants := map[string]want{
		"franklin_autobiography_148.txt": {
			style: "mid", encoding: "ascii", title: "The Autobiography of Benjamin Franklin", author: "Benjamin Franklin",
			chunks: 161,
			// The editor's introductory note opens the book; the editor's
			// chronology of Franklin's life closes it.
			first: "BENJAMIN FRANKLIN was born in Milk Street, Boston, on January 6, 1706.",
			last:  "His grave is in the churchyard at Fifth and Arch streets, Philadelphia. Editor.",
		},
		"twain_huck_finn_hfinn10_oldstyle.txt": {
			style: "old", encoding: "ascii", title: "The Adventures of Huckleberry Finn", author: "Mark Twain",
			chunks: 271,
			// Twain's NOTICE comes before chapter I.
			first: "PERSONS attempting to find a motive in this narrative will be prosecuted;",
			last:  "Aunt Sally she's going to adopt me and sivilize me, and I can't stand it. I been there before.",
		},
		"twain_tom_sawyer_pg74.txt": {
			style: "new", encoding: "utf-8", title: "The Adventures of Tom Sawyer, Complete", author: "Mark Twain",
			chunks: 171,
			// The book opens with Twain's preface (the title page, contents
			// and list of illustrations are dropped), then "“Tom!”".
			first: "Most of the adventures recorded in this book really occurred;",
			last:  "therefore it will be wisest not to reveal any of that part of their lives at present.",
		},
	}
	if len(rep.Books) != len(wants) {
		t.Fatalf("%d books", len(rep.Books))
	}
	byBook := map[string][]chunkRecord{}
	for _, c := range chunks {
		byBook[c.Source] = append(byBook[c.Source], c)
	}
	for _, b := range rep.Books {
		w, ok := wants[b.Source]
		if !ok {
			t.Errorf("unexpected book %s", b.Source)
			continue
		}
		cs := byBook[b.Source]
		t.Logf("%s: style %s, %d lines, %d paragraphs, %d words, %d chunks (%d–%d words), boundaries %v",
			b.Source, b.Style, b.Lines, b.Paragraphs, b.Words, b.Chunks, b.ChunkWords.Min, b.ChunkWords.Max, b.Boundaries)
		if b.Style != w.style || b.Encoding != w.encoding || b.Title != w.title || b.Author != w.author {
			t.Errorf("%s: style %s encoding %s title %q author %q", b.Source, b.Style, b.Encoding, b.Title, b.Author)
		}
		if b.Chunks != w.chunks || len(cs) != w.chunks {
			t.Errorf("%s: %d chunks (%d in JSONL), want %d", b.Source, b.Chunks, len(cs), w.chunks)
		}
		if len(cs) == 0 {
			continue
		}
		if !strings.HasPrefix(cs[0].Text, w.first) {
			t.Errorf("%s: first chunk starts %.120q", b.Source, cs[0].Text)
		}
		if !strings.HasSuffix(cs[len(cs)-1].Text, w.last) {
			t.Errorf("%s: last chunk ends %q", b.Source, cs[len(cs)-1].Text[max(0, len(cs[len(cs)-1].Text)-120):])
		}
		if b.Boundaries["word"] != 0 || b.Boundaries["clause"] != 0 {
			t.Errorf("%s: chunks split inside sentences: %v", b.Source, b.Boundaries)
		}
		if b.Dropped.Tail.Items != 0 {
			t.Errorf("%s: tail dropped: %+v", b.Source, b.Dropped.Tail)
		}
		total := 0
		for i, c := range cs {
			n := len(strings.Fields(c.Text))
			total += n
			if n < 200 || n > 500 {
				t.Errorf("%s chunk %d: %d words", b.Source, i, n)
			}
			if c.Chunk != i || c.Title != w.title || c.Author != w.author {
				t.Errorf("%s chunk %d: %+v", b.Source, i, c)
			}
			if !utf8.ValidString(c.Text) || strings.ContainsAny(c.Text, "\r\ufeff\t") || c.Text != strings.TrimSpace(c.Text) {
				t.Errorf("%s chunk %d: bad characters or spacing", b.Source, i)
			}
			for _, bad := range []string{"*** START", "*** END", "Project Gutenberg", "PROJECT GUTENBERG", "SMALL PRINT", "[Illustration", "Produced by", "CHAPTER", "CONTENTS", "http", "{", "|"} {
				if strings.Contains(c.Text, bad) {
					t.Errorf("%s chunk %d contains %q", b.Source, i, bad)
				}
			}
			if headingLineRe.MatchString(c.Text) {
				t.Errorf("%s chunk %d has a chapter heading line", b.Source, i)
			}
		}
		if total != b.Words {
			t.Errorf("%s: %d words in chunks, report says %d", b.Source, total, b.Words)
		}
	}
	// Huck Finn's words broken at line ends are rejoined.
	huck := strings.Join(func() []string {
		var s []string
		for _, c := range byBook["twain_huck_finn_hfinn10_oldstyle.txt"] {
			s = append(s, c.Text)
		}
		return s
	}(), "\n\n")
	for _, w := range []string{" narrative ", " behave?", "who-whooing", " sugar-hogshead "} {
		if !strings.Contains(huck, w) {
			t.Errorf("Huck Finn lacks %q", w)
		}
	}
	// Deterministic.
	_, _, raw2, err := run(t, config(200, 500), dir)
	if err != nil || !bytes.Equal(raw, raw2) {
		t.Errorf("second run differs (err %v)", err)
	}
}
