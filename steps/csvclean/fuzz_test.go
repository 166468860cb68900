package csvclean

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
)

// FuzzCSVClean feeds arbitrary bytes through Run as a CSV file: as a whole
// file (header included) and after a fixed "id,title" header, with the
// filters and max_line_bytes set by flags. Run must never panic; when it succeeds every output
// line must be one {"text": ...} object whose text is valid UTF-8, non-empty,
// trimmed, free of control and zero-width characters and not repeated, and
// the report's counts must add up.
func FuzzCSVClean(f *testing.F) {
	for _, s := range []string{
		"title\nArea Man Wins Big Prize\n",
		"id,title\n1,\"Area, Man\nWins\"\n2,Donâ€™t Stop Me Now Please\n",
		"title\n<b>Rock &amp;amp; Roll</b> Hall Of Fame\n\u200bBeyonce Pregnant With Twins\n",
		"title\nhttps://www.theonion.com/x-123\nNobel Prize Won - The Onion - America's Finest News Source\n",
		"title\nWonâ\u0080\u0099t Stop Town'\u0080\u0099s Nationâ\u0080's Luau a\u0080X\n",
		"\xef\xbb\xbftitle\r\nCaf\xe9 \x92Owner\x94 Is Here Today\r\n",
		"title\n\"unterminated\n",
		"title\na \"bare\" quote\n",
		"a,b\n1,2,3\n",
		"title\n&#128;&#129;&#8203;&amp;#x200b;&am<i></i>p;lt;b&gt; x y z\n",
		"title\nArea Man Doesn't Know Why\nArea Man Doesnt Know Why\nWashington D.C. Man Wins\nWashington DC Man Wins\nE-mail Sent To All Staff\nEmail sent to all staff\n",
		"title\nGlaciers Retreat Faster Than Forecast | World news | The Guardian\nTown Votes Again - BBC News\nFox News | Reuters\n x | CBC News\n",
		"title\nBuy Google Places Reviews Fast\n30% OFF Everything\nWhatsApp +1 555 123 4567 now\nEarn $500 A Day\n",
		"title\n" + strings.Repeat("x", 100) + "\n\"open quote\n" + strings.Repeat("y\n", 50),
		"",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(0xff))
		f.Add([]byte(s), uint8(0x40))
	}
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		over := map[string]cty.Value{
			"min_words":               cty.NumberIntVal(int64(flags & 3)),
			"drop_urls":               cty.BoolVal(flags&4 != 0),
			"case_insensitive_dedupe": cty.BoolVal(flags&8 != 0),
			"skip_malformed":          cty.BoolVal(flags&16 != 0),
		}
		if flags&32 != 0 {
			over["min_capitalized"] = cty.NumberFloatVal(0.5)
		}
		if flags&64 != 0 {
			over["max_line_bytes"] = cty.NumberIntVal(16)
			over["strip_outlet_suffixes"] = cty.False
			over["drop_spam"] = cty.False
		}
		for _, content := range [][]byte{data, append([]byte("id,title\n"), data...)} {
			p := writeCSV(t, string(content))
			texts, rep, raw, err := runKind(t, []string{p}, over)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "csv_clean.test: ") {
					t.Errorf("error without context: %v", err)
				}
				continue
			}
			lines := bytes.Split(raw, []byte("\n"))
			if len(raw) > 0 {
				if raw[len(raw)-1] != '\n' {
					t.Fatalf("output does not end with a newline")
				}
				lines = lines[:len(lines)-1]
			} else {
				lines = nil
			}
			if len(lines) != len(texts) || len(texts) != rep.RowsOut {
				t.Fatalf("%d lines, %d texts, rows_out %d", len(lines), len(texts), rep.RowsOut)
			}
			seen := map[string]bool{}
			for _, l := range lines {
				if !utf8.Valid(l) {
					t.Fatalf("invalid UTF-8 line %q", l)
				}
				s := cleanedText(t, l)
				if s == "" || s != strings.TrimSpace(s) || !utf8.ValidString(s) {
					t.Fatalf("bad text %q", s)
				}
				for _, r := range s {
					if unicode.IsControl(r) || isZeroWidth(r) {
						t.Fatalf("text %q has %U", s, r)
					}
				}
				if seen[s] {
					t.Fatalf("duplicate text %q", s)
				}
				seen[s] = true
			}
			sum := rep.RowsOut
			for _, n := range rep.Dropped {
				sum += n
			}
			if sum != rep.RowsIn {
				t.Fatalf("rows out + dropped = %d, rows in = %d", sum, rep.RowsIn)
			}
		}
	})
}
