package gutenberg

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

// FuzzGutenbergChunk feeds arbitrary bytes as a book through Run: it must
// not panic or fail, must write valid UTF-8 JSON lines, and every chunk
// must hold min..max words, except a book's last chunk, which may hold no
// fewer than half of min.
func FuzzGutenbergChunk(f *testing.F) {
	f.Add([]byte("\ufeffTitle: T\r\n\r\n*** START OF THE PROJECT GUTENBERG EBOOK T ***\r\n\r\nCHAPTER I.\r\n\r\nOne two three. Four five six seven.\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK T ***\r\n"), uint8(3), uint8(4))
	f.Add([]byte("*** START OF THIS PROJECT GUTENBERG EBOOK\nX ***\nProduced by Y\n\nCONTENTS\n\nCHAPTER I. A\n\nPREFACE\n\nWords, words, words; and more words.\n[Illustration: a\n\nb]\nEnd of Project Gutenberg's X\n"), uint8(2), uint8(1))
	f.Add([]byte("***START**THE SMALL PRINT!**\n*END*THE SMALL PRINT!*END*\n  And did young Stephen sicken,\n    And did he die?\n\nnarra-\ntive service—\nshe [1] _said_ *\n"), uint8(1), uint8(0))
	f.Add([]byte("caf\xe9 \x93quoted\x94\r\x00\xff\xfe\xc3"), uint8(1), uint8(2))
	f.Add([]byte("\xff\xfeh\x00i\x00 \x00\x00\xd8"), uint8(1), uint8(1))
	f.Add([]byte(strings.Repeat("word ", 300)), uint8(7), uint8(5))
	// The apparatus of other editions: navigation, epigraphs, summaries,
	// page-numbered lists, wrapped titles, corrections; and a Latin-1 book
	// with UTF-8 in it.
	f.Add([]byte("Contents | Next Chapter\n\nHome > Books > X\n\n    A quote.\n        --Old Almanac.\n\nThe Town--The Shop--A Master\n\nPortrait of X vii\n\nThe Wharf 4\n\nMap xii\n\nCHAPTER I.\n\nTHE OLD SHOP AND\nTHE MASTER\n\nWords here. More words.\n\nPage 4: Changed \"a\" to \"b\".\n\nObvious printer's errors have been silently corrected.\n"), uint8(2), uint8(3))
	f.Add([]byte("Character set encoding: ISO-8859-1\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\ncaf\xe9 \xe2\x80\x9cna\xefve\xe2\x80\x9d \xc9\xbb \xc2\x85\n"), uint8(1), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, minB, spanB uint8) {
		minW := 1 + int(minB%40)
		maxW := minW + int(spanB%60)
		dir := t.TempDir()
		p := filepath.Join(dir, "book.txt")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		inv := &steps.Invocation{
			Step: "gutenberg_chunk.fuzz",
			Config: map[string]cty.Value{
				"min_words": cty.NumberIntVal(int64(minW)), "max_words": cty.NumberIntVal(int64(maxW)), "keep_headings": cty.BoolVal(minB%2 == 0),
			},
			Inputs: map[string][]steps.InputFile{"source": {{Path: p, Name: "book.txt"}}},
			OutDir: out,
		}
		if err := (Kind{}).Run(context.Background(), inv); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var chunks []chunkRecord
		err := steps.ReadJSONL(filepath.Join(out, chunksFile), func(line int, raw []byte) error {
			if !utf8.Valid(raw) {
				t.Errorf("line %d is not valid UTF-8", line)
			}
			var c chunkRecord
			if err := json.Unmarshal(raw, &c); err != nil {
				return err
			}
			chunks = append(chunks, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range chunks {
			n := len(strings.Fields(c.Text))
			last := i == len(chunks)-1
			if n > maxW || (n < minW && !last) || (last && n*2 < minW) || n == 0 {
				t.Errorf("chunk %d of %d has %d words (min %d, max %d)", i, len(chunks), n, minW, maxW)
			}
			if c.Chunk != i || !utf8.ValidString(c.Text) || c.Text != strings.TrimSpace(c.Text) {
				t.Errorf("chunk %d: %+v", i, c)
			}
		}
		var rep report
		rb, err := os.ReadFile(filepath.Join(out, reportFile))
		if err != nil || json.Unmarshal(rb, &rep) != nil || len(rep.Books) != 1 || rep.Books[0].Chunks != len(chunks) {
			t.Fatalf("report: %v %s", err, rb)
		}
	})
}
