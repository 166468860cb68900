package csvclean

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/internal/lazyre"
)

// Near-duplicate rules: what a near-duplicate differs in from the kept
// text it repeats, the keys of report.json's "near_duplicates" map. A row
// is counted under every rule it needs (a hyphen replaced by a space needs
// both "hyphens" and "spacing").
const (
	nearCase        = "case"        // "Area Man" / "area man"
	nearApostrophes = "apostrophes" // "Don't" / "Dont" / "Don’t"
	nearHyphens     = "hyphens"     // "e-mail" / "email", "Risk-Taker" / "Risk Taker", "–" / "-"
	nearPeriods     = "periods"     // "D.C." / "DC", a final full stop
	nearPunctuation = "punctuation" // other punctuation, quotes and symbols
	nearSpacing     = "spacing"     // where the spaces are
)

var allNear = []string{nearCase, nearApostrophes, nearHyphens, nearPeriods, nearPunctuation, nearSpacing}

// runeClass sorts a text's runes for the duplicate check.
type runeClass int

const (
	classWord runeClass = iota // letters, digits, combining marks: compared
	classApostrophe
	classHyphen
	classPeriod
	classSpace
	classOther
)

func classify(r rune) runeClass {
	switch {
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
		return classWord
	case strings.ContainsRune("'’‘‛`´ʼ′", r):
		return classApostrophe
	case strings.ContainsRune("-‐‑‒–—―−", r):
		return classHyphen
	case r == '.':
		return classPeriod
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// dedupeKey is the key under which near-duplicates are compared: the
// text's letters, digits and combining marks, lower-cased, and nothing
// else, so texts that differ only in case, apostrophes (straight, curly or
// none), hyphens and dashes, periods ("D.C." and "DC"), other punctuation
// or spacing share a key ("Man Pretty Sure He Could Run This Company" and
// "man, pretty sure he could run this company!"; "Nation's" and
// "Nation’s"). Accents count ("Crème" is not "Creme"). A text with no
// letters or digits is its own (lower-cased) key.
func dedupeKey(s string) string {
	k := keyKeeping(s, -1)
	if k == "" {
		return strings.ToLower(s)
	}
	return k
}

// keyKeeping builds dedupeKey's key but leaves one rule out: with
// nearCase the letters keep their case; with another rule the runes of
// its class are kept as they are (spaces collapsed to one). rule -1 is
// the full key.
func keyKeeping(s string, rule int) string {
	keep := classWord - 1 // no class kept besides words
	switch rule {
	case 1:
		keep = classApostrophe
	case 2:
		keep = classHyphen
	case 3:
		keep = classPeriod
	case 4:
		keep = classOther
	case 5:
		keep = classSpace
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		c := classify(r)
		switch {
		case c == classWord:
			if space {
				b.WriteByte(' ')
				space = false
			}
			if rule != 0 {
				r = unicode.ToLower(r)
			}
			b.WriteRune(r)
		case c == keep && c == classSpace:
			space = b.Len() > 0
		case c == keep:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// nearRules returns the rules a near-duplicate needs to equal the kept
// text first: those whose runes, kept as they are, tell the two apart.
func nearRules(kept, dup string) []string {
	var out []string
	for i, name := range allNear {
		if keyKeeping(kept, i) != keyKeeping(dup, i) {
			out = append(out, name)
		}
	}
	return out
}

// outletSuffixRe finds a trailing " | X", " - X", " – X", " — X", " :: X",
// " · X" or " // X" whose X (one to six words) may be a news outlet's or
// section's name.
var outletSuffixRe = lazyre.New(`\s(?:\||-|–|—|::|·|//)\s+([^|–—·]{1,60})$`)

// outletWordRe matches the words that end a news outlet's or news
// section's name ("CBC News", "BBC News", "World news", "The New York
// Times", "The Guardian", "Reuters", "CNN.com").
var outletWordRe = lazyre.New(`(?i)^(?:news|newsroom|times|post|herald|tribune|journal|gazette|chronicle|telegraph|guardian|independent|observer|reuters|bloomberg|press|ap|afp|bbc|cnn|cbc|abc|nbc|cbs|msnbc|npr|pbs|itv|rt|politico|axios|vox|slate|salon|wired|forbes|fortune|newsweek|huffpost|buzzfeed|vice|insider|breitbart|mail|express|mirror|standard|examiner|dispatch|courier|inquirer|bulletin|sentinel|globe|star|register|weekly|daily|today|online|magazine|times-picayune|jazeera|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|co\.uk|org|net|ca|au|ie|in|nz))$`)

// outletConnectorRe matches the lower-case words allowed inside an
// outlet's name ("Globe and Mail", "World news").
var outletConnectorRe = lazyre.New(`^(?:of|the|and|&|de|la|le|on|news|online|world|us|uk)$`)

// stripOutletSuffixes removes news outlets' page-title suffixes (" | CBC
// News", " - BBC News", " | World news", " - The New York Times"),
// repeatedly, when at least three words remain before them. A suffix is
// an outlet's when its last word is one an outlet's or news section's
// name ends with (News, Times, Post, Guardian, Reuters, a domain, ...)
// and its other words are capitalized or connectors ("and", "of", "the").
// The input is already whitespace-normalized.
func stripOutletSuffixes(s string) (string, bool) {
	changed := false
	for {
		// The suffix is short: look at the end only (regexp would scan all
		// of a long text).
		from := max(0, len(s)-4*64)
		for from > 0 && !utf8.RuneStart(s[from]) {
			from--
		}
		m := outletSuffixRe.FindStringSubmatchIndex(s[from:])
		if m == nil {
			break
		}
		head, tail := strings.TrimSpace(s[:from+m[0]]), s[from+m[2]:from+m[3]]
		if countWords(head) < 3 || !isOutletName(tail) {
			break
		}
		s, changed = head, true
	}
	return s, changed
}

// isOutletName reports whether tail looks like a news outlet's or news
// section's name.
func isOutletName(tail string) bool {
	words := strings.Fields(tail)
	if len(words) == 0 || len(words) > 6 {
		return false
	}
	last := strings.TrimRight(words[len(words)-1], ".!?,;:")
	if !outletWordRe.MatchString(last) {
		return false
	}
	for _, w := range words {
		r := []rune(w)[0]
		if unicode.IsLower(r) && !outletConnectorRe.MatchString(strings.ToLower(w)) && !outletWordRe.MatchString(w) {
			return false
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '&' {
			return false
		}
	}
	return true
}

// Spam rules: kinds of spam and promotion, the keys of report.json's
// "spam" map. A row is counted under the first rule that matches.
const (
	spamBuyEngagement = "buy_engagement" // "Buy Google Places Reviews", "buy Instagram followers"
	spamDiscount      = "discount"       // "30% OFF ...", "promo code", "free shipping"
	spamCallToAction  = "call_to_action" // "Order now", "click here", "limited time offer"
	spamContact       = "contact"        // "WhatsApp +1 555 ...", phone numbers to call
	spamMoney         = "easy_money"     // "Earn $500 a day", "work from home"
)

var allSpam = []string{spamBuyEngagement, spamDiscount, spamCallToAction, spamContact, spamMoney}

// spamRules are the checks of drop_spam, in order.
var spamRules = []struct {
	name string
	re   *lazyre.Regexp
}{
	{spamBuyEngagement, lazyre.New(`(?i)\b(?:buy|purchase|get)\s+(?:cheap\s+|real\s+|active\s+|verified\s+|\d+k?\s+)*(?:(?:google|facebook|fb|instagram|insta|ig|twitter|tiktok|youtube|yelp|trustpilot|amazon|tripadvisor|linkedin|spotify|soundcloud|reddit|places|play\s+store|app\s+store)\s+){0,3}(?:reviews?|followers|likes|views|subscribers|upvotes|retweets|plays|ratings|backlinks|accounts?)\b`)},
	// A discount that opens the text ("30% off ...", "Up to 50% OFF"), or
	// one shouted anywhere ("... 70% OFF"); satire that mentions one in
	// passing ("Offers 75% Off All Facebook User Data") is kept.
	{spamDiscount, lazyre.New(`(?i:^\W*(?:(?:up\s+to|save|get|extra|flat|now|sale:?)\s+)?\d{1,2}(?:\.\d+)?\s?%\s*off\b)|\d\s?%\s*OFF\b|(?i:\b(?:coupon|promo|discount|voucher)\s+codes?\b|\bfree\s+shipping\b|\b(?:use|with)\s+code\s+[A-Z0-9]{3,}\b)`)},
	{spamCallToAction, lazyre.New(`(?i)\b(?:order|shop|buy|book|download|subscribe|register|enroll|apply)\s+(?:now|today)\s*[!:.]|\b(?:order|shop|buy)\s+now\b|\bclick\s+(?:here|the\s+link|below)\s+(?:to|for)\s+(?:buy|order|get|download|claim|win)\b|\blimited[-\s]time\s+(?:offer|deal|only)\b|\bbest\s+price\s+guarantee`)},
	{spamContact, lazyre.New(`(?i)\b(?:whats\s?app|telegram|wechat|viber|call|text|contact)(?:\s+(?:us|me|now))?\s*(?:at|on|:)?\s*\+?\(?\d{1,4}\)?[\s.-]?\d{3}[\s.-]?\d{3,4}(?:[\s.-]?\d{2,4})?\b`)},
	{spamMoney, lazyre.New(`(?i)\b(?:earn|make)\s+\$\s?\d[\d,]*(?:k)?\s*(?:\+\s*)?(?:per|a|an|each|every)\s+(?:day|week|hour|month)\b|\bwork\s+from\s+home\s+(?:and|jobs?|opportunit)|\bget\s+paid\s+(?:to|for)\s+\w+\s+(?:online|from\s+home)\b`)},
}

// spamWindow is how much of a text the spam rules read: spam says what it
// is at once, and Go's regular expressions cost about a microsecond a byte
// on long texts.
const spamWindow = 1024

// spamRule returns the name of the first spam rule the start of text (its
// first spamWindow bytes) matches, or "".
func spamRule(text string) string {
	if len(text) > spamWindow {
		cut := spamWindow
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	for _, r := range spamRules {
		if r.re.MatchString(text) {
			return r.name
		}
	}
	return ""
}
