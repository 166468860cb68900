package csvclean

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/internal/lazyre"

	"golang.org/x/text/encoding/charmap"
)

// Names of the repairs counted in report.json's "fixed" map. Each counts the
// texts (one per row and column) the repair changed, whether or not the row
// was dropped later.
const (
	fixCP1252     = "cp1252_decoded"
	fixEntities   = "entities_decoded"
	fixTags       = "tags_stripped"
	fixMojibake   = "mojibake_repaired"
	fixBrokenUTF8 = "broken_utf8_repaired"
	fixControl    = "control_removed"
	fixZeroWidth  = "zero_width_removed"
	fixWhitespace = "whitespace_normalized"
	fixPrefix     = "prefix_stripped"
	fixSuffix     = "suffix_stripped"
	fixOutlet     = "outlet_suffix_stripped"
)

var allFixes = []string{fixCP1252, fixEntities, fixTags, fixMojibake, fixBrokenUTF8, fixControl,
	fixZeroWidth, fixWhitespace, fixPrefix, fixSuffix, fixOutlet}

// decodeField returns a CSV field as valid UTF-8. Valid UTF-8 sequences are
// kept; every byte that is not part of one is taken to be Windows-1252 (the
// usual encoding of such files; its five undefined bytes map to the C1
// control of the same value, as browsers do, and are removed later), so a
// field that mixes UTF-8 and CP1252 keeps both.
func decodeField(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			c := charmap.Windows1252.DecodeByte(s[i])
			if c == utf8.RuneError {
				c = rune(s[i])
			}
			b.WriteRune(c)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), true
}

// entityRE matches one HTML character reference: numeric (with or without
// the semicolon), named with a semicolon, or one of the few legacy names
// that browsers also accept without one when they end a word ("&amp").
var entityRE = lazyre.New(`&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};|(?:amp|lt|gt|quot|nbsp)\b)`)

// decodeEntities decodes every HTML character reference (all HTML5 named
// references, decimal and hexadecimal ones, with the HTML rules for C1 code
// points), repeatedly so that double-encoded text ("&amp;amp;") is decoded
// fully. Unknown names ("&foo;") and ampersands in text ("AT&T", "R&D") are
// left alone.
func decodeEntities(s string) (string, bool) {
	if !strings.Contains(s, "&") {
		return s, false
	}
	changed := false
	for pass := 0; pass < 5; pass++ {
		t := entityRE.ReplaceAllStringFunc(s, html.UnescapeString)
		if t == s {
			break
		}
		s, changed = t, true
		if !strings.Contains(s, "&") {
			break
		}
	}
	return s, changed
}

// tagRE matches an HTML comment or a start/end tag: '<' directly followed by
// a letter (or '/' and a letter), so "<3" and "x < y" are text, not tags.
var tagRE = lazyre.New(`<!--[\s\S]*?-->|</?([A-Za-z][A-Za-z0-9]*)(?:[\s/][^<>]*)?>`)

// blockTags separate words, so they are replaced by a space.
var blockTags = map[string]bool{
	"br": true, "p": true, "div": true, "li": true, "ul": true, "ol": true, "hr": true,
	"tr": true, "td": true, "th": true, "table": true, "h1": true, "h2": true, "h3": true,
	"h4": true, "h5": true, "h6": true, "blockquote": true, "section": true, "article": true,
}

// stripTags removes HTML tags and comments. Block-level tags become a space;
// inline ones (<i>, <b>, <a href=...>) disappear.
func stripTags(s string) (string, bool) {
	if !strings.Contains(s, "<") {
		return s, false
	}
	t := tagRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := tagRE.FindStringSubmatch(m)
		if len(sub) > 1 && blockTags[strings.ToLower(sub[1])] {
			return " "
		}
		return ""
	})
	return t, t != s
}

// isZeroWidth reports the invisible characters that are removed: soft
// hyphen (U+00AD), Mongolian vowel separator (U+180E), zero width space,
// non-joiner and joiner (U+200B–U+200D), word joiner and the invisible
// operators (U+2060–U+2064) and the byte order mark / zero width no-break
// space (U+FEFF). Directional marks are kept: they matter in
// right-to-left text.
func isZeroWidth(r rune) bool {
	return r == 0xAD || r == 0x180E || (r >= 0x200B && r <= 0x200D) || (r >= 0x2060 && r <= 0x2064) || r == 0xFEFF
}

func removeZeroWidth(s string) (string, bool) {
	if strings.IndexFunc(s, isZeroWidth) < 0 {
		return s, false
	}
	return strings.Map(func(r rune) rune {
		if isZeroWidth(r) {
			return -1
		}
		return r
	}, s), true
}

// isStrayControl reports control characters that are neither whitespace
// nor printable: C0 controls other than tab/newline/CR/FF/VT, DEL, and C1
// controls left after mojibake repair.
func isStrayControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
		return false
	}
	return r < 0x20 || r == 0x7F || isC1(r)
}

func removeControls(s string) (string, bool) {
	if strings.IndexFunc(s, isStrayControl) < 0 {
		return s, false
	}
	return strings.Map(func(r rune) rune {
		if isStrayControl(r) {
			return -1
		}
		return r
	}, s), true
}

// normalizeSpace turns every run of Unicode white space (including newlines
// inside quoted CSV fields and no-break spaces) into one ASCII space and
// trims both ends.
func normalizeSpace(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	pendingSpace := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			pendingSpace = true
			continue
		}
		if pendingSpace && b.Len() > 0 {
			b.WriteByte(' ')
		}
		pendingSpace = false
		b.WriteRune(r)
	}
	t := b.String()
	return t, t != s
}

// foldPunct folds a rune for suffix comparison: lower case, typographic
// quotes and dashes to their ASCII forms.
func foldPunct(r rune) rune {
	switch r {
	case '‘', '’', '‚', '‛', '′':
		return '\''
	case '“', '”', '„', '‟', '″':
		return '"'
	case '‐', '‑', '‒', '–', '—', '―':
		return '-'
	}
	return unicode.ToLower(r)
}

// affixStripper removes configured site prefixes or suffixes (e.g.
// " - The Onion", "News:") from the ends of a text.
type affixStripper struct {
	suffix bool
	folded [][]rune // folded, trimmed affixes, longest first
}

func newAffixStripper(affixes []string, suffix bool) *affixStripper {
	st := &affixStripper{suffix: suffix}
	for _, a := range affixes {
		a, _ = normalizeSpace(a)
		if a == "" {
			continue
		}
		f := []rune(a)
		for i, r := range f {
			f[i] = foldPunct(r)
		}
		st.folded = append(st.folded, f)
	}
	// Longest first, ties in configured order (a stable insertion sort of a
	// handful of items).
	for i := 1; i < len(st.folded); i++ {
		for j := i; j > 0 && len(st.folded[j]) > len(st.folded[j-1]); j-- {
			st.folded[j], st.folded[j-1] = st.folded[j-1], st.folded[j]
		}
	}
	return st
}

// strip removes matching affixes until none matches, comparing
// case-insensitively and treating typographic quotes and dashes as their
// ASCII forms (’ as ', – as -). An affix is removed only where white space
// separates it from the rest of the text, and never when it is the whole
// text: "News: Contact Us" loses "News:", "Newsroom" and "News:" alone do
// not. The input is already whitespace-normalized; the result is trimmed.
// Only the text's ends are read, so a long text costs no copy.
func (st *affixStripper) strip(s string) (string, bool) {
	if len(st.folded) == 0 || s == "" {
		return s, false
	}
	changed := false
	for again := true; again; {
		again = false
		for _, a := range st.folded {
			var rest string
			var ok bool
			if st.suffix {
				rest, ok = cutFoldedSuffix(s, a)
			} else {
				rest, ok = cutFoldedPrefix(s, a)
			}
			if ok {
				s, changed, again = rest, true, true
				break
			}
		}
	}
	return s, changed
}

// cutFoldedSuffix returns s without the folded affix a at its end and the
// white space before it, when s ends so and something is left.
func cutFoldedSuffix(s string, a []rune) (string, bool) {
	i := len(s)
	for k := len(a) - 1; k >= 0; k-- {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		if n == 0 || foldPunct(r) != a[k] {
			return "", false
		}
		i -= n
	}
	if r, _ := utf8.DecodeLastRuneInString(s[:i]); !unicode.IsSpace(r) {
		return "", false
	}
	rest := strings.TrimRightFunc(s[:i], unicode.IsSpace)
	return rest, rest != ""
}

// cutFoldedPrefix returns s without the folded affix a at its start and
// the white space after it, when s starts so and something is left.
func cutFoldedPrefix(s string, a []rune) (string, bool) {
	i := 0
	for _, want := range a {
		r, n := utf8.DecodeRuneInString(s[i:])
		if n == 0 || foldPunct(r) != want {
			return "", false
		}
		i += n
	}
	if r, _ := utf8.DecodeRuneInString(s[i:]); !unicode.IsSpace(r) {
		return "", false
	}
	rest := strings.TrimLeftFunc(s[i:], unicode.IsSpace)
	return rest, rest != ""
}

// urlRE finds URLs with a scheme or a www. prefix inside text.
var urlRE = lazyre.New(`(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>"]+`)

// bareURLRE matches a text that is a single URL or domain/path, with or
// without a scheme ("theonion.com/article-123", "https://x.y/z").
var bareURLRE = lazyre.New(`(?i)^(?:[a-z][a-z0-9+.-]*://\S+|(?:www\.)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?:[/?#:]\S*)?)$`)

// isURL reports whether the whole text is a URL or a bare domain with an
// optional path. Text that merely mentions a domain ("Launder Money On
// ClickHole.com") is not a URL.
func isURL(s string) bool {
	return !strings.ContainsAny(s, " \t\n") && bareURLRE.MatchString(s)
}

// containsURL reports whether the text contains a URL with a scheme or a
// www. prefix ("Market Invite: http://...", "the home of www.dinar.tv"):
// in scraped titles these are link spam, not headlines.
func containsURL(s string) bool {
	return urlRE.MatchString(s)
}

// countWords counts the white-space separated tokens that contain a letter
// or a digit, so that dashes, bullets and emoji do not count as words.
func countWords(s string) int {
	n := 0
	inWord, counted := false, false
	for _, r := range s {
		if unicode.IsSpace(r) {
			inWord = false
			continue
		}
		if !inWord {
			inWord, counted = true, false
		}
		if !counted && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			n++
			counted = true
		}
	}
	return n
}

// capitalizedFraction returns, among the words whose first letter (after
// leading punctuation such as quotes) is a cased letter, the fraction that
// begin with an upper-case letter, and the number of such words. Headline
// style ("Area Man Accepts Burden Of Being...") scores 1; sentence-case
// chatter ("am i doing this right") scores low.
func capitalizedFraction(s string) (float64, int) {
	cased, upper := 0, 0
	for _, f := range strings.Fields(s) {
		for _, r := range f {
			if unicode.IsDigit(r) {
				break
			}
			if !unicode.IsLetter(r) {
				continue
			}
			if unicode.IsUpper(r) || unicode.IsTitle(r) {
				cased++
				upper++
			} else if unicode.IsLower(r) {
				cased++
			}
			break
		}
	}
	if cased == 0 {
		return 1, 0
	}
	return float64(upper) / float64(cased), cased
}
