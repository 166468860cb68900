package csvclean

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/shareddata"
)

// TestOnionCSV cleans the real r/TheOnion scrape with the default settings.
// The counts were checked by inspecting every dropped row of each reason
// and by an independent re-implementation of the rules in Python.
func TestOnionCSV(t *testing.T) {
	p := shareddata.Path(t, "onion/TheOnion_181217_184244.csv")
	texts, rep, raw, err := runKind(t, []string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}

	if rep.RowsIn != 10000 || rep.RowsOut != 8809 || len(texts) != 8809 {
		t.Errorf("rows in %d, out %d (%d texts); want 10000, 8809", rep.RowsIn, rep.RowsOut, len(texts))
	}
	wantDropped := map[string]int{
		dropMalformed:   0,
		dropEmpty:       0,
		dropURL:         4,   // 2 bare theonion.com links, a darknet invite, "the home of www.dinar.tv"
		dropSpam:        1,   // "46% off for Black Friday! The Onion Book of Known Knowledge: ..."
		dropTooShort:    174, // "Wow", "meirl", "theonion", "Democrats Win House", ...
		dropNotCapital:  0,   // off by default
		dropPattern:     83,  // "<Name> said WHAT?!" (4 words or fewer before "said")
		dropDuplicate:   863, // 738 in the raw file, the rest revealed by prefix/suffix stripping and repairs
		dropDuplicateCI: 66,  // case, quote style, punctuation differ; "Campbells" / "Campbell’s"
	}
	if !reflect.DeepEqual(rep.Dropped, wantDropped) {
		t.Errorf("dropped %v\nwant    %v", rep.Dropped, wantDropped)
	}
	// What the near-duplicates differ in (a row can differ in several
	// ways); most are a straight for a curly quote or apostrophe.
	wantNear := map[string]int{nearCase: 16, nearApostrophes: 54, nearHyphens: 3, nearPeriods: 8, nearPunctuation: 5, nearSpacing: 2}
	if !reflect.DeepEqual(rep.NearDuplicates, wantNear) {
		t.Errorf("near_duplicates %v\nwant            %v", rep.NearDuplicates, wantNear)
	}
	wantSpam := map[string]int{spamBuyEngagement: 0, spamDiscount: 1, spamCallToAction: 0, spamContact: 0, spamMoney: 0}
	if !reflect.DeepEqual(rep.Spam, wantSpam) {
		t.Errorf("spam %v\nwant %v", rep.Spam, wantSpam)
	}
	wantFixed := map[string]int{
		fixCP1252:     0,
		fixEntities:   24, // &amp; (also double-encoded &amp;amp;#x27;)
		fixTags:       0,
		fixMojibake:   13, // "Wonâ\u0080\u0099t"
		fixBrokenUTF8: 21, // "Town'\u0080\u0099s", "Nationâ\u0080's"
		fixControl:    0,
		fixZeroWidth:  2,
		fixWhitespace: 0,
		fixPrefix:     1663, // ClickHole's "Life:", "News:", "Video:", ...
		fixSuffix:     23,   // " - The Onion - America's Finest News Source", " | ClickHole", ...
		fixOutlet:     2,    // " | CBC News", " | Fox News" on reposted news stories
	}
	if !reflect.DeepEqual(rep.Fixed, wantFixed) {
		t.Errorf("fixed %v\nwant  %v", rep.Fixed, wantFixed)
	}
	sum := rep.RowsOut
	for _, n := range rep.Dropped {
		sum += n
	}
	if sum != rep.RowsIn {
		t.Errorf("rows out + dropped = %d, rows in = %d", sum, rep.RowsIn)
	}

	// Every line is compact {"text": ...} JSON without HTML escaping.
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	if len(lines) != len(texts) {
		t.Fatalf("%d lines, %d texts", len(lines), len(texts))
	}
	for i, l := range lines {
		if !bytes.HasPrefix(l, []byte(`{"text":"`)) || !utf8.Valid(l) || bytes.Contains(l, []byte(`\u0026`)) {
			t.Fatalf("line %d: %s", i+1, l)
		}
	}

	exact := map[string]int{}
	folded := map[string]int{}
	for i, s := range texts {
		if j, dup := exact[s]; dup {
			t.Errorf("lines %d and %d are the same: %q", j+1, i+1, s)
		}
		exact[s] = i
		k := dedupeKey(s)
		if j, dup := folded[k]; dup {
			t.Errorf("lines %d and %d are the same ignoring case: %q, %q", j+1, i+1, texts[j], s)
		}
		folded[k] = i
		lower := strings.ToLower(s)
		for _, bad := range []string{"&amp;", "&#", "&quot;", "&lt;", "&gt;", "â€", "\u00e2\u0080", "\ufffd", "\u200b", "<b>", "</", "<a ", "<br"} {
			if strings.Contains(lower, bad) {
				t.Errorf("line %d contains %q: %q", i+1, bad, s)
			}
		}
		if strings.HasPrefix(lower, "http") || strings.HasPrefix(lower, "www.") {
			t.Errorf("line %d is a URL: %q", i+1, s)
		}
		if strings.Contains(lower, "america's finest news source") || strings.HasSuffix(s, "| ClickHole") {
			t.Errorf("line %d keeps a site suffix: %q", i+1, s)
		}
		if strings.HasPrefix(s, "Life: ") || strings.HasPrefix(s, "News: ") {
			t.Errorf("line %d keeps a section label: %q", i+1, s)
		}
		if countWords(s) < 4 {
			t.Errorf("line %d is too short: %q", i+1, s)
		}
		for _, r := range s {
			if isC1(r) || (r < 0x20) {
				t.Errorf("line %d has control character %U: %q", i+1, r, s)
				break
			}
		}
	}

	if texts[0] != "Maria Butina Pleads Guilty To Russian Scheme To Influence Conservatives" {
		t.Errorf("first text %q", texts[0])
	}
	present := []string{
		// Kept verbatim, curly quotes and all.
		"Trump Administration Launches Human Rights Investigation Into Senate’s Harsh Treatment Of Mohammad Bin Salman",
		"Ryan Zinke Apologizes For Misuse Of Government Funds By Sending Ethics Committee $160,000 Vase",
		"Violence Erupts Across France As Citizens Protest High Cost Of Refilling Crème Brûlée Torches",
		"Supreme Court Overturns Car",
		// Entities.
		"Rapidly Expanding AT&T Merges With Entirety Of Existence",
		"Fractal, 20, 'plans to marry TETRIS after her relationship with a calculator called Pierre ended when she lost it'",
		// Mojibake and broken UTF-8.
		"Sorry Liberals, But Gun Control Won’t Stop Jackie Chan If He Wants To Take Out 30 People With A Single Mop",
		"Prince Harry, Meghan Markle Debating Between Hawaiian Luau- Or ‘X-Files’-Themed Wedding",
		"Local Church Full Of Brainwashed Idiots Feeds Town’s Poor Every Week",
		"Trump Unveils Exclusive Double Platinum–Level Press Room For Only Select Few Journalists",
		"Nation's Sexual Degenerates Impatient For Gay Marriage Slippery Slope To Kick In",
		// Zero-width characters.
		"Top Benefits Of Being A Risk-Taker",
		"Beyonce Pregnant With Twins",
		// Suffixes and prefixes.
		"Nobel Committee Awards Self Peace Prize For Once",
		"Tibetan Teen Getting Into Western Philosophy",
		"All 6 Grandpas Who Died At Panera Bread In 2016",
		"Life Hack: How To Order Off Menu At The San Diego Zoo",
		"Report: Nothing Stopping You From Deleting Your Facebook Account Right Now",
		// A domain inside a headline is not a URL.
		"Congratulations, You Can Now Launder Money On ClickHole.com!",
		"Man does incredibly well at slot machine demo embedded in ad",
		"Campbell’s Unveils One Big Can-Sized Noodle",
		"As airlines hike checked bag fees, charges for carry-on luggage could be next",
		// Satire that mentions a discount stays.
		"Cambridge Analytica Offers 75% Off All Facebook User Data For Blowout Closing Sale",
	}
	for _, s := range present {
		if _, ok := exact[s]; !ok {
			t.Errorf("missing %q", s)
		}
	}
	absent := []string{
		"Drew Brees said WHAT?!", "Wow", "theonion", "Democrats Win House",
		"Empire Market Invite: http://empiremktxgjovhm.onion/ref/142",
		"Prince Harry, Meghan Markle Debating Between Hawaiian Luau- Or X-Files’-Themed Wedding",
		// A later copy differing only in case: the first occurrence (in
		// sentence case) is kept.
		"Man Does Incredibly Well At Slot Machine Demo Embedded In Ad",
		// A later copy without its apostrophe.
		"Campbells Unveils One Big Can-Sized Noodle",
		"As airlines hike checked bag fees, charges for carry-on luggage could be next | CBC News",
	}
	for _, s := range absent {
		if _, ok := exact[s]; ok {
			t.Errorf("kept %q", s)
		}
	}
	// Input order: the first occurrence wins.
	if exact["Sorry Liberals, But Gun Control Won’t Stop Jackie Chan If He Wants To Take Out 30 People With A Single Mop"] >
		exact["Nobel Committee Awards Self Peace Prize For Once"] {
		t.Errorf("input order not kept")
	}

	// With the headline-capitalization check on, sentence-case reposts and
	// comments go too.
	texts2, rep2, _, err := runKind(t, []string{p}, map[string]cty.Value{"min_capitalized": cty.NumberFloatVal(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Dropped[dropNotCapital] != 237 || rep2.RowsOut != 8583 {
		t.Errorf("min_capitalized 0.5: dropped %d, out %d; want 237, 8583", rep2.Dropped[dropNotCapital], rep2.RowsOut)
	}
	kept := map[string]bool{}
	for _, s := range texts2 {
		kept[s] = true
	}
	if kept["am i doing this right"] || kept["UK health worker arrested over death of eight babies"] ||
		!kept["Supreme Court Overturns Car"] {
		t.Errorf("min_capitalized 0.5 kept or dropped the wrong rows")
	}
}

// BenchmarkOnionCSV measures a full run on the real file.
func BenchmarkOnionCSV(b *testing.B) {
	p := shareddata.Path(b, "onion/TheOnion_181217_184244.csv")
	for i := 0; i < b.N; i++ {
		if _, _, _, err := runKind(b, []string{p}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// cleanedText decodes one output line.
func cleanedText(t *testing.T, line []byte) string {
	t.Helper()
	var r struct {
		Text *string `json:"text"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || r.Text == nil {
		t.Fatalf("bad output line %q: %v", line, err)
	}
	return *r.Text
}
