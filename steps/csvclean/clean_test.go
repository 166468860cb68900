package csvclean

import (
	"testing"
)

type repairCase struct {
	in, want string
	changed  bool
}

func checkRepair(t *testing.T, name string, f func(string) (string, bool), cases []repairCase) {
	t.Helper()
	for _, c := range cases {
		got, changed := f(c.in)
		if got != c.want || changed != c.changed {
			t.Errorf("%s(%q) = %q, %v; want %q, %v", name, c.in, got, changed, c.want, c.changed)
		}
	}
}

func TestDecodeField(t *testing.T) {
	checkRepair(t, "decodeField", decodeField, []repairCase{
		{"plain ascii", "plain ascii", false},
		{"Don’t café", "Don’t café", false},
		{"caf\xe9 cr\xe8me", "café crème", true},
		// CP1252 punctuation bytes.
		{"Don\x92t \x93quote\x94 \x96 dash", "Don’t “quote” – dash", true},
		// UTF-8 and CP1252 mixed in one field: both are kept.
		{"Beyonc\xe9’s caf\xe9", "Beyoncé’s café", true},
		// Undefined CP1252 bytes become the C1 control of the same value.
		{"a\x81b", "a\u0081b", true},
	})
}

func TestDecodeEntities(t *testing.T) {
	checkRepair(t, "decodeEntities", decodeEntities, []repairCase{
		{"Rock &amp; Roll", "Rock & Roll", true},
		{"AT&amp;T", "AT&T", true},
		{"AT&T and R&D", "AT&T and R&D", false},
		{"&lt;3 &quot;x&quot; &#39;y&#39; &#x27;z&#x27;", "<3 \"x\" 'y' 'z'", true},
		{"Don&#8217;t", "Don’t", true},
		// HTML maps C1 numeric references to Windows-1252 characters.
		{"Don&#146;t", "Don’t", true},
		// Double and triple encoding.
		{"&amp;amp;#x27;plans&amp;amp;#x27;", "'plans'", true},
		{"Rights &amp;amp; Chickens", "Rights & Chickens", true},
		{"&nbsp;x", "\u00a0x", true},
		{"Tom &amp Jerry", "Tom & Jerry", true},
		{"&foo; &", "&foo; &", false},
	})
}

func TestStripTags(t *testing.T) {
	checkRepair(t, "stripTags", stripTags, []repairCase{
		{"<b>x</b>", "x", true},
		{`<a href="http://x">Area Man</a> Wins`, "Area Man Wins", true},
		{"line<br>break<br/>here", "line break here", true},
		{"a<!-- comment -->b", "ab", true},
		{"I <3 you", "I <3 you", false},
		{"x < y > z", "x < y > z", false},
		{"no tags", "no tags", false},
	})
}

func TestRepairMojibake(t *testing.T) {
	checkRepair(t, "repairMojibake", repairMojibake, []repairCase{
		{"Donâ€™t", "Don’t", true},
		{"cafÃ©", "café", true},
		{"â€œquotedâ€\u009d", "“quoted”", true},
		// Latin-1 reading: C1 controls instead of CP1252 punctuation.
		{"Wonâ\u0080\u0099t", "Won’t", true},
		{"Â£5", "£5", true},
		// Double encoding.
		{"DonÃ¢â‚¬â„¢t", "Don’t", true},
		// 4-byte sequences (emoji).
		{"ðŸ˜€", "😀", true},
		// Cyrillic (several adjacent sequences).
		{"Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "привет", true},
		// Correct text is never touched.
		{"Crème Brûlée Café", "Crème Brûlée Café", false},
		{"Beyoncé’s", "Beyoncé’s", false},
		{"CAFÉ…", "CAFÉ…", false},
		{"café…»", "café…»", false},
		{"naïve São Paulo Galápagos 1,800×1,800", "naïve São Paulo Galápagos 1,800×1,800", false},
		{"Charlotte Brontë–Emily Brontë", "Charlotte Brontë–Emily Brontë", false},
		{"Ñ…", "Ñ…", false},
	})
}

func TestRepairBrokenUTF8(t *testing.T) {
	checkRepair(t, "repairBrokenUTF8", repairBrokenUTF8, []repairCase{
		// Lead byte replaced by an ASCII stand-in.
		{"Town'\u0080\u0099s", "Town’s", true},
		{"Platinum-\u0080\u0093Level", "Platinum–Level", true},
		// Last byte lost.
		{"Nationâ\u0080's", "Nation's", true},
		{"Or a\u0080X-Files", "Or X-Files", true},
		// A stray continuation byte.
		{"Sleep\"\u0099 Assures", "Sleep\" Assures", true},
		{"no controls", "no controls", false},
	})
}

func TestRemoveZeroWidthAndControls(t *testing.T) {
	checkRepair(t, "removeZeroWidth", removeZeroWidth, []repairCase{
		{"\u200bBeyonce Pregnant", "Beyonce Pregnant", true},
		{"Top \u200b\u200bBenefits\u200c\u200d\u2060\ufeff", "Top Benefits", true},
		{"soft\u00adhyphen", "softhyphen", true},
		{"right\u200fto-left mark kept", "right\u200fto-left mark kept", false},
	})
	checkRepair(t, "removeControls", removeControls, []repairCase{
		{"a\x00b\x07c\u0085d\x7f", "abcd", true},
		{"tab\tnew\nline", "tab\tnew\nline", false},
	})
}

func TestNormalizeSpace(t *testing.T) {
	checkRepair(t, "normalizeSpace", normalizeSpace, []repairCase{
		{"  Area\n\tMan\u00a0 Wins  ", "Area Man Wins", true},
		{"Area Man", "Area Man", false},
		{"", "", false},
	})
}

func TestURLs(t *testing.T) {
	for _, s := range []string{
		"https://www.theonion.com/defiant-dallas-police-officer-claims-anyone-could-have-1828942372",
		"http://x.y/z", "theonion.com/article-123", "www.theonion.com", "ftp://files.example.org",
	} {
		if !isURL(s) {
			t.Errorf("isURL(%q) = false", s)
		}
	}
	for _, s := range []string{
		"Congratulations, You Can Now Launder Money On ClickHole.com!",
		"ClickHole.com Is Great", "R.I.P.", "George R.R. Martin", "U.S.",
	} {
		if isURL(s) || containsURL(s) {
			t.Errorf("%q taken for a URL", s)
		}
	}
	for _, s := range []string{
		"Empire Market Invite: http://empiremktxgjovhm.onion/ref/142",
		"the home of www.dinar.tv",
	} {
		if !containsURL(s) {
			t.Errorf("containsURL(%q) = false", s)
		}
	}
}

func TestSuffixes(t *testing.T) {
	st := newAffixStripper(DefaultSuffixes, true)
	checkRepair(t, "strip suffix", st.strip, []repairCase{
		{"Nobel Committee Awards Self Peace Prize For Once - The Onion - America's Finest News Source",
			"Nobel Committee Awards Self Peace Prize For Once", true},
		// Typographic apostrophe and dash, other case.
		{"Area Man Wins – the onion – America’s finest news source", "Area Man Wins", true},
		{"Tibetan Teen Getting Into Western Philosophy - The Onion", "Tibetan Teen Getting Into Western Philosophy", true},
		{"All 6 Grandpas Who Died At Panera Bread In 2016 | ClickHole", "All 6 Grandpas Who Died At Panera Bread In 2016", true},
		// Repeated suffixes.
		{"Area Man - The Onion | ClickHole", "Area Man", true},
		// Not a suffix: no space before it, or the whole text, or another site.
		{"Anti- The Onion", "Anti- The Onion", false},
		{"Meet-The Onion", "Meet-The Onion", false},
		{"- The Onion", "- The Onion", false},
		{"Ducks Go Quack, Chickens Say Cluck - Onion Talks", "Ducks Go Quack, Chickens Say Cluck - Onion Talks", false},
		{"The Onion", "The Onion", false},
	})
	if got, ok := newAffixStripper(nil, true).strip("x - The Onion"); ok || got != "x - The Onion" {
		t.Errorf("empty suffix list changed the text: %q", got)
	}
}

func TestPrefixes(t *testing.T) {
	st := newAffixStripper(DefaultPrefixes, false)
	checkRepair(t, "strip prefix", st.strip, []repairCase{
		{"Life: Life Hack: How To Order Off Menu At The San Diego Zoo", "Life Hack: How To Order Off Menu At The San Diego Zoo", true},
		{"Must See: Heartbreaking: Rex Tillerson Boxes Up Oil", "Heartbreaking: Rex Tillerson Boxes Up Oil", true},
		{"news: lower case label", "lower case label", true},
		{"Report: Nothing Stopping You", "Report: Nothing Stopping You", false},
		{"Newsroom Chaos Erupts", "Newsroom Chaos Erupts", false},
		{"News:", "News:", false},
		{"Life:Hack", "Life:Hack", false},
	})
}

func TestCountWords(t *testing.T) {
	for s, want := range map[string]int{
		"Drew Brees said WHAT?!":     4,
		"Area Man – Wins":            3,
		"":                           0,
		"— … !!":                     0,
		"5G Phones Coming":           3,
		"O’Neal Is Tall, Reportedly": 4,
	} {
		if got := countWords(s); got != want {
			t.Errorf("countWords(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestCapitalizedFraction(t *testing.T) {
	for s, want := range map[string]float64{
		"Area Man Accepts Burden Of Being Only Person": 1,
		"am i doing this right":                        0,
		"‘No Way To Prevent This,’ Says Nation":        1,
		"Drew Brees said WHAT?!":                       0.75,
		"2018 … 50%":                                   1,
	} {
		if got, _ := capitalizedFraction(s); got != want {
			t.Errorf("capitalizedFraction(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestDedupeKey(t *testing.T) {
	same := [][2]string{
		{"Man Does Incredibly Well At Slot Machine", "Man does incredibly well at slot machine"},
		{"Hellmann’s Introduces New Mayo", "Hellmann's Introduces New Mayo"},
		{"Ex–Goldman Sachs", "Ex-Goldman Sachs"},
		{"Fearful Americans Stockpiling Facts", "Fearful Americans Stockpiling Facts."},
		{"‘No Way To Prevent This,’ Says Nation", "'No way to prevent this' says nation"},
	}
	for _, p := range same {
		if dedupeKey(p[0]) != dedupeKey(p[1]) {
			t.Errorf("dedupeKey(%q) = %q != dedupeKey(%q) = %q", p[0], dedupeKey(p[0]), p[1], dedupeKey(p[1]))
		}
	}
	differ := [][2]string{
		{"Area Man Wins", "Area Men Win"},
		{"😀😀", "🎉"},
		{"Crème Brûlée", "Creme Brulee"},
	}
	for _, p := range differ {
		if dedupeKey(p[0]) == dedupeKey(p[1]) {
			t.Errorf("dedupeKey(%q) == dedupeKey(%q) = %q", p[0], p[1], dedupeKey(p[0]))
		}
	}
}
