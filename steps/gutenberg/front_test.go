package gutenberg

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps/steptest"
)

// TestEditionFrontMatter runs the kind through the engine on a book with
// the apparatus other editions carry, none of it headed "CONTENTS": HTML
// navigation lines and a breadcrumb, a title page, an epigraph, a list of
// chapter summaries, a page-numbered list of illustrations, chapter
// titles wrapped over two lines (in capitals and in title case), a
// chapter epigraph, a chapter summary under its heading, and a list of
// the transcriber's corrections. Only the story is left.
func TestEditionFrontMatter(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "front_matter.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ws := steptest.New(t)
	ws.Write("books/front_matter.txt", string(src))
	res := ws.Run(Kind{}, steptest.Step{
		Inputs: map[string][]string{"source": {"books/front_matter.txt"}},
		Config: map[string]cty.Value{"min_words": cty.NumberIntVal(50), "max_words": cty.NumberIntVal(1000)},
	})
	var texts []string
	for _, l := range res.Lines("output") {
		var c chunkRecord
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, c.Text)
	}
	all := strings.Join(texts, "\n")
	// Every paragraph of the story, in order, and nothing else.
	starts := []string{
		"The town stood on a low hill above the river,",
		"He was a man who said little and saw everything.",
		"The river was wide and brown and in no hurry,",
		"At night a storm came up from the south.",
		"The fair came to the town in the autumn,",
		"He stayed in the shop seven years,",
		"“Come here, boy,” said the master,",
		// A letter with its signature inside a chapter is not an epigraph.
		"Dear nephew, the roads are bad",
		"The boy folded the letter",
	}
	pos := 0
	for _, s := range starts {
		i := strings.Index(all[pos:], s)
		if i < 0 {
			t.Errorf("missing or out of order: %q", s)
			continue
		}
		pos += i + len(s)
	}
	if !strings.HasPrefix(all, starts[0]) {
		t.Errorf("the first chunk starts %.120q", all)
	}
	if !strings.HasSuffix(all, "showed grey in the window over the press.") {
		t.Errorf("the last chunk ends %q", all[max(0, len(all)-120):])
	}
	for _, leak := range []string{
		"Next Chapter", "Home >", "PRINTER'S APPRENTICE", "travelled much", "Old Almanac", "Lampblack--",
		"Description of", "Portrait of the Author", "Fair Ground", "Chapter I", "OLD PRINT SHOP", "WHO NEVER SLEPT",
		"Early to bed", "Journeyman", "Came Home Without", "THE LETTER", "propesed", "recieve", "Page 4", "p. 41",
		"silently corrected", "THE END",
	} {
		if strings.Contains(all, leak) {
			t.Errorf("the chunks keep %q", leak)
		}
	}
	var rep report
	res.JSON("report", &rep)
	d := rep.Books[0].Dropped
	got := map[string]int{"epigraphs": d.Epigraphs.Items, "navigation": d.Navigation.Items, "transcriber_notes": d.TranscriberNotes.Items,
		"toc": d.TOC.Items, "headings": d.Headings.Items, "front_matter": d.FrontMatter.Items}
	want := map[string]int{
		"epigraphs":         2, // the book's and chapter I's
		"navigation":        3, // "Contents | Next Chapter | Index", the breadcrumb, "Chapter I | Chapter II | Chapter III"
		"transcriber_notes": 1, // the corrections' heading, its three corrections and the remark
		"toc":               4, // the three chapters' summaries, the list of illustrations
		"headings":          9, // four chapter headings, their titles (or summary), THE END
		"front_matter":      3, // title, subtitle, author
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dropped %v\nwant    %v", got, want)
	}
}

const prose = "The morning was grey and the street was empty, and the boy went down\nto the river to see whether the boat had come in during the night.\n"

// TestExtractEditionPatterns checks each pattern of TestEditionFrontMatter
// on its own, and the text like it that must stay.
func TestExtractEditionPatterns(t *testing.T) {
	want := "The morning was grey and the street was empty, and the boy went down to the river to see whether the boat had come in during the night."
	for _, tc := range []struct {
		name, body string
		reason     func(d drops) count
		items      int
	}{
		{"chapter-summary list without a heading",
			"Description of Jerusalem--Solomon's Temple--The Church of the Holy\nSepulchre--The Stone of Unction\n\nThe Pool of Siloam--The Garden of Gethsemane--The Mount of\nOlives--Bethany\n\n\n" + prose,
			func(d drops) count { return d.TOC }, 2},
		{"illustration list, one entry a paragraph",
			"Portrait of Franklin vii\n\nFranklin's Birthplace 4\n\nThe Old Printing Press 23\n\nMap of Philadelphia xii\n\n\n" + prose,
			func(d drops) count { return d.TOC }, 4},
		{"illustration list in one paragraph, with a PAGE column head",
			"PAGE\nPortrait of Franklin vii\nFranklin's Birthplace 4\nThe Old Printing Press\n  in Water Street 23\n\n\n" + prose,
			func(d drops) count { return d.TOC }, 1},
		{"epigraph with its attribution apart",
			"    Tell the truth or trump--but get the trick.\n\n        --Pudd'nhead Wilson's Calendar.\n\n\n" + prose,
			func(d drops) count { return d.Epigraphs }, 1},
		{"epigraph under a chapter heading",
			"CHAPTER I.\n\n    Few things are harder to put up with\n    than the annoyance of a good example.\n        —Pudd'nhead Wilson's Calendar.\n\n" + prose,
			func(d drops) count { return d.Epigraphs }, 1},
		{"transcriber's corrections without a heading",
			prose + "\n\n\nPage 92: Changed propesed to proposed.\nPage 107: \"teh\" corrected to \"the\".\n\nSpelling and hyphenation have been retained as in the original.\n",
			func(d drops) count { return d.TranscriberNotes }, 2},
		{"corrections under an errata heading",
			prose + "\n\n\nERRATA\n\n\np. 12, line 4: for \"hte\" read \"the\".\n\n\np. 30: \"recieve\" changed to \"receive\".\n",
			func(d drops) count { return d.TranscriberNotes }, 1},
		{"navigation lines",
			"<< Previous Chapter | Contents | Next Chapter >>\n\n[ Back to Top ]\n\nChapter 1 · Chapter 2 · Chapter 3\n\n" + prose + "\nNext Chapter >>\n",
			func(d drops) count { return d.Navigation }, 4},
		{"wrapped capital title under a heading",
			"CHAPTER XII.\n\nTHE BOY WHO WOULD NOT GO\nTO SCHOOL ON MONDAY\n\n" + prose,
			func(d drops) count { return d.Headings }, 2},
		{"wrapped title-case title under a heading",
			"CHAPTER XII.\n\nHow Tom Sawyer Whitewashed the Fence and\nMade a Profit of It\n\n" + prose,
			func(d drops) count { return d.Headings }, 2},
		{"one-line title-case title under a heading",
			"Chapter 3\n\nThe Journey to the City\n\n" + prose,
			func(d drops) count { return d.Headings }, 2},
		{"chapter summary under a heading",
			"CHAPTER LIII.\n\nDescription of Jerusalem--Solomon's Temple\n\n" + prose,
			func(d drops) count { return d.Headings }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, d := extractText(tc.body, false)
			got = strings.TrimPrefix(got, "§")
			if got != want {
				t.Errorf("got %q", got)
			}
			if c := tc.reason(d); c.Items != tc.items {
				t.Errorf("%d items dropped, want %d: %+v", c.Items, tc.items, d)
			}
		})
	}
}

// TestExtractEditionPatternsKeepText: text that resembles the apparatus is
// kept.
func TestExtractEditionPatternsKeepText(t *testing.T) {
	for _, body := range []string{
		// Dashes in dialogue and prose.
		"CHAPTER I.\n\nAunt Polly--Tom's Aunt Polly, she is--and Mary, and the Widow Douglas is all told about in that book.",
		"He came--he saw--he went home again and slept.",
		// A dash-led reply after a section break, and a short sentence
		// under a heading.
		"CHAPTER II.\n\nNo answer.",
		"CHAPTER II.\n\nWhere are you going, boy?\n--Nowhere, sir.",
		"CHAPTER II.\n\nGet Out Of My House!",
		// Prose lines that end in numbers.
		"He paid the printer for the pamphlets in the spring of 1729\nand owed him nothing more after that until the autumn of 1731\nwhen he ordered another 200",
		// Verse.
		"Twinkle, twinkle, little star,\nHow I wonder what you are!\nUp above the world so high,\nLike a diamond in the sky.",
		// A line that mentions a page.
		"Page after page he read, until the candle was gone and the fire was out.",
	} {
		got, _ := extractText(body, false)
		text := strings.ReplaceAll(strings.TrimPrefix(got, "§"), "\n", " ")
		last := strings.Fields(body)
		if !strings.Contains(text, strings.TrimRight(last[len(last)-1], ".!?,")) {
			t.Errorf("%q: lost text, kept %q", body, got)
		}
	}
}

// TestLatin1WithUTF8 runs the kind through the engine on a book whose
// header says ISO-8859-1 but which holds UTF-8 as well (curly quotes
// pasted in): both read without mojibake, and the report says what was
// found.
func TestLatin1WithUTF8(t *testing.T) {
	para := "The caf\xe9 by the river sold coffee to the boatmen, and its owner, a na\xefve young man from the \xe9cole in the city, said \xe2\x80\x9cit will pay\xe2\x80\x9d every morning, though it never did.\n\n"
	book := "Title: The Caf\xe9\nAuthor: Anon\nCharacter set encoding: ISO-8859-1\n\n*** START OF THE PROJECT GUTENBERG EBOOK THE CAF\xc9 ***\n\n" +
		strings.Repeat(para, 8) + "*** END OF THE PROJECT GUTENBERG EBOOK THE CAF\xc9 ***\n"
	ws := steptest.New(t)
	ws.Write("books/cafe.txt", book)
	res := ws.Run(Kind{}, steptest.Step{
		Inputs: map[string][]string{"source": {"books/cafe.txt"}},
		Config: map[string]cty.Value{"min_words": cty.NumberIntVal(50), "max_words": cty.NumberIntVal(1000)},
	})
	lines := res.Lines("output")
	if len(lines) != 1 {
		t.Fatalf("%d chunks", len(lines))
	}
	var c chunkRecord
	if err := json.Unmarshal([]byte(lines[0]), &c); err != nil {
		t.Fatal(err)
	}
	want := "The café by the river sold coffee to the boatmen, and its owner, a naïve young man from the école in the city, said “it will pay” every morning, though it never did."
	if !strings.HasPrefix(c.Text, want) || c.Title != "The Café" {
		t.Errorf("chunk %.200q, title %q", c.Text, c.Title)
	}
	for _, bad := range []string{"Ã", "â€", "\ufffd"} {
		if strings.Contains(c.Text, bad) {
			t.Errorf("mojibake %q in %.200q", bad, c.Text)
		}
	}
	var rep report
	res.JSON("report", &rep)
	b := rep.Books[0]
	if b.Encoding != "iso-8859-1+utf-8" || len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], "declares ISO-8859-1 but the file also holds UTF-8") {
		t.Errorf("encoding %s, warnings %q", b.Encoding, b.Warnings)
	}
}
