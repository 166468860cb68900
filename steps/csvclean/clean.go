package csvclean

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Names of the repairs counted in report.json's "fixed" map. Each counts the
// texts the repair changed, whether or not the text was dropped later.
const (
	fixCP1252      = "cp1252_decoded"
	fixEntities    = "entities_decoded"
	fixTags        = "tags_stripped"
	fixMojibake    = "mojibake_repaired"
	fixBrokenUTF8  = "broken_utf8_repaired"
	fixControl     = "control_removed"
	fixZeroWidth   = "zero_width_removed"
	fixWhitespace  = "whitespace_normalized"
	fixSuffix      = "suffix_stripped"
	fixURLStripped = "url_stripped"
)

var allFixes = []string{fixCP1252, fixEntities, fixTags, fixMojibake, fixBrokenUTF8, fixControl,
	fixZeroWidth, fixWhitespace, fixSuffix, fixURLStripped}

// decodeField returns a CSV field as valid UTF-8: fields that are not valid
// UTF-8 are taken to be Windows-1252 (the usual encoding of such files).
func decodeField(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	t, err := charmap.Windows1252.NewDecoder().String(s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD"), true
	}
	return t, true
}

// entityRE matches one HTML character reference: numeric (with or without
// the semicolon), named with a semicolon, or one of the few legacy names
// that browsers also accept without one when they end a word ("&amp").
var entityRE = regexp.MustCompile(`&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};|(?:amp|lt|gt|quot|nbsp)\b)`)

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
var tagRE = regexp.MustCompile(`<!--[\s\S]*?-->|</?([A-Za-z][A-Za-z0-9]*)(?:[\s/][^<>]*)?>`)

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

// isZeroWidth reports the invisible characters that are removed: zero
// width space, non-joiner and joiner (U+200B–U+200D), word joiner (U+2060)
// and the byte order mark / zero width no-break space (U+FEFF).
func isZeroWidth(r rune) bool {
	return (r >= 0x200B && r <= 0x200D) || r == 0x2060 || r == 0xFEFF
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

// suffixStripper removes configured site suffixes from the end of a text.
type suffixStripper struct {
	folded [][]rune // folded suffixes, longest first
}

func newSuffixStripper(suffixes []string) *suffixStripper {
	st := &suffixStripper{}
	for _, s := range suffixes {
		s, _ = normalizeSpace(s)
		if s == "" {
			continue
		}
		f := []rune(s)
		for i, r := range f {
			f[i] = foldPunct(r)
		}
		st.folded = append(st.folded, f)
	}
	// Longest first, ties in configured order (stable insertion sort keeps it
	// deterministic without importing sort for a handful of items).
	for i := 1; i < len(st.folded); i++ {
		for j := i; j > 0 && len(st.folded[j]) > len(st.folded[j-1]); j-- {
			st.folded[j], st.folded[j-1] = st.folded[j-1], st.folded[j]
		}
	}
	return st
}

// strip removes matching suffixes (case-insensitively, treating ’ as ' and
// – as -) until none matches. A suffix that is the whole text is not
// removed from nothing: the text must end with it. The input is already
// whitespace-normalized; the result is trimmed.
func (st *suffixStripper) strip(s string) (string, bool) {
	if len(st.folded) == 0 || s == "" {
		return s, false
	}
	rs := []rune(s)
	changed := false
	for again := true; again; {
		again = false
		for _, suf := range st.folded {
			if len(suf) > len(rs) {
				continue
			}
			off := len(rs) - len(suf)
			match := true
			for k, r := range suf {
				if foldPunct(rs[off+k]) != r {
					match = false
					break
				}
			}
			if match {
				rs = rs[:off]
				for len(rs) > 0 && unicode.IsSpace(rs[len(rs)-1]) {
					rs = rs[:len(rs)-1]
				}
				changed, again = true, true
				break
			}
		}
	}
	if !changed {
		return s, false
	}
	return string(rs), true
}

// urlRE finds URLs with a scheme or a www. prefix inside text.
var urlRE = regexp.MustCompile(`(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>"]+`)

// bareURLRE matches a text that is a single URL or domain/path, with or
// without a scheme ("theonion.com/article-123", "https://x.y/z").
var bareURLRE = regexp.MustCompile(`(?i)^(?:[a-z][a-z0-9+.-]*://\S+|(?:www\.)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?:[/?#:]\S*)?)$`)

// isURL reports whether the whole text is a URL.
func isURL(s string) bool {
	return !strings.ContainsAny(s, " \t\n") && bareURLRE.MatchString(s)
}

// containsURL reports whether the text contains a URL with a scheme or www.
func containsURL(s string) bool {
	return urlRE.MatchString(s)
}

// stripURLs removes URLs from the text.
func stripURLs(s string) (string, bool) {
	t := urlRE.ReplaceAllString(s, " ")
	if t == s {
		return s, false
	}
	t, _ = normalizeSpace(t)
	return t, true
}
