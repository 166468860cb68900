package synthtools

import (
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/pariz/gountries"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// Place sets: which places the questions name (synth_tools' places
// attribute).
const (
	// PlacesListed: only the tool's built-in places, by name or alias.
	PlacesListed = "listed"
	// PlacesAny: the built-in places, real places from a gazetteer (the
	// world's capitals and first-level subdivisions, with diacritics and
	// multi-word names) and realistic generated names, so that a model
	// learns to copy the place from the question instead of memorising
	// a list. The tool answers for any of them, as a real weather API does.
	PlacesAny = "any"
)

// PlaceSets lists the valid place sets.
var PlaceSets = []string{PlacesListed, PlacesAny}

// Location forms of unlisted places, beside formName etc.
const (
	formGazetteer = "gazetteer" // a real place the tool does not list by name
	formGenerated = "generated" // a realistic made-up name
)

// gazEntry is a real place from the gazetteer: its name and country.
type gazEntry struct{ Name, Country string }

// gazetteer returns the real places of the gazetteer (github.com/pariz/
// gountries: each country's capital and its ISO 3166-2 subdivisions), in a
// fixed order: names of letters, spaces, hyphens and apostrophes only, 3
// to 28 bytes, none that is a name or alias of a built-in place, each
// location key once. Loading it takes about 0.2 s; it is loaded on first use.
var gazetteer = sync.OnceValue(func() []gazEntry {
	q := gountries.New()
	var out []gazEntry
	seen := map[string]bool{}
	add := func(name, country string) {
		name = strings.TrimSpace(name)
		if !plainPlaceName(name) || country == "" {
			return
		}
		k := weather.LocationKey(name)
		if seen[k] {
			return
		}
		if _, listed := weather.LookupPlace(name); listed {
			return
		}
		if _, listed := weather.LookupPlace(name + ", " + country); listed {
			return
		}
		seen[k] = true
		out = append(out, gazEntry{name, country})
	}
	countries := q.FindAllCountries()
	for _, code := range slices.Sorted(maps.Keys(countries)) {
		c := countries[code]
		country := c.Name.Common
		if !plainPlaceName(country) {
			continue
		}
		add(c.Capital, country)
		subs := c.SubDivisions()
		names := make([]string, 0, len(subs))
		for _, s := range subs {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		for _, n := range names {
			add(n, country)
		}
	}
	return out
})

// plainPlaceName reports whether s reads as a place name a user would
// type: 3 to 28 bytes of letters, spaces, hyphens, apostrophes and
// periods, starting with an upper-case letter.
func plainPlaceName(s string) bool {
	if len(s) < 3 || len(s) > 28 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 0 && !unicode.IsUpper(r):
			return false
		case unicode.IsLetter(r), r == ' ', r == '-', r == '\'', r == '.':
		default:
			return false
		}
	}
	return !strings.Contains(s, "  ")
}

// heldOutPlace reports whether an unlisted place name belongs to the
// held-out part (a fifth of the names, by a hash of its location key): no
// training set (set = "train") names it, so that an eval can ask about
// places a model has never seen.
func heldOutPlace(name string) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(weather.LocationKey(name)))
	return h.Sum32()%5 == 0
}

// Syllables of generated names.
var (
	nameStarts = []string{"Al", "Bel", "Cor", "Dun", "El", "Fal", "Gor", "Har", "Ist", "Jun", "Kel", "Lor",
		"Mar", "Nor", "Ost", "Pel", "Quin", "Ros", "Sel", "Tor", "Ul", "Val", "Wen", "Yar", "Zel", "Brin",
		"Cal", "Dra", "Gil", "Kra", "Mir", "Sto", "Tre", "Vor", "Ash", "Bran", "Cas", "Fen", "Lin", "Mor",
		"Ber", "Chal", "Dor", "Est", "Grim", "Hol", "Kir", "Lud", "Nev", "Pra", "Sar", "Tam", "Vel", "Wol"}
	nameMiddles = []string{"", "", "a", "e", "i", "o", "u", "an", "en", "ar", "or", "il", "el", "in", "us"}
	nameEnds    = []string{"ton", "ville", "burg", "ford", "dale", "stad", "heim", "mouth", "port", "field",
		"wick", "by", "sk", "grad", "ov", "ara", "ino", "ia", "os", "ez", "ham", "holm", "vik", "bridge",
		"haven", "ley", "more", "ridge", "ac", "ona", "ique", "au", "berg", "ice", "ten", "ow"}
	namePrefixes = []string{"Port ", "San ", "New ", "Lake ", "Fort ", "Mount ", "Bad ", "Villa ", "Santa ", "Saint ", "East ", "Upper "}
	nameSuffixes = []string{" Falls", " Springs", " Junction", "-on-Sea", " Heights", " Bay", " Crossing", " del Mar"}
	accents      = map[byte][]string{'a': {"á", "à", "å", "ä"}, 'e': {"é", "è", "ë"}, 'o': {"ö", "ó", "ø"}, 'u': {"ü", "ú"}, 'i': {"í"}, 'n': {"ñ"}}
	regionEnds   = []string{"shire", "ia", "land", "ovia", "ara", "mark", "onia", "stan"}
)

// generatedName draws a realistic made-up place name: syllables, now and
// then a prefix ("Port ", "San ") or suffix (" Falls", "-on-Sea"), an
// accented letter, and in half the names a region after a comma (a real
// country or a made-up region).
func generatedName(r *rng) string {
	base := pick(r, nameStarts) + pick(r, nameMiddles) + pick(r, nameEnds)
	if r.chance(0.15) {
		// One accented vowel (or ñ) after the first letter.
		b := []byte(base)
		i := 1 + r.intN(len(b)-1)
		for ; i < len(b); i++ {
			if alts, ok := accents[b[i]]; ok {
				base = string(b[:i]) + pick(r, alts) + string(b[i+1:])
				break
			}
		}
	}
	switch n := r.intN(10); {
	case n < 2:
		base = pick(r, namePrefixes) + base
	case n < 3:
		base += pick(r, nameSuffixes)
	}
	switch n := r.intN(10); {
	case n < 3:
		base += ", " + pick(r, gazetteer()).Country
	case n < 5:
		base += ", " + pick(r, nameStarts) + pick(r, regionEnds)
	}
	return base
}

// misspell makes one typo in s (two neighbouring letters swapped, a letter
// dropped or doubled), inside a word and never in its first letter.
func misspell(r *rng, s string) string {
	rs := []rune(s)
	var spots []int
	for i := 1; i+1 < len(rs); i++ {
		if unicode.IsLetter(rs[i]) && unicode.IsLetter(rs[i-1]) && unicode.IsLetter(rs[i+1]) {
			spots = append(spots, i)
		}
	}
	if len(spots) == 0 {
		return s
	}
	i := pick(r, spots)
	switch r.intN(3) {
	case 0:
		rs[i], rs[i+1] = rs[i+1], rs[i]
	case 1:
		rs = append(rs[:i], rs[i+1:]...)
	default:
		rs = append(rs[:i+1], rs[i:]...)
	}
	return string(rs)
}

// unlistedLocation draws a place the tool does not list, from the
// gazetteer (60%) or generated (40%), in the held-out part or the rest
// (heldOut), and how the user writes it: the name alone or with its
// country, sometimes misspelt. The call copies the place as the user
// wrote it: the tool answers for any string, as a real API does.
func unlistedLocation(r *rng, heldOut bool) locChoice {
	for {
		var surface, form string
		if r.intN(10) < 6 {
			g := pick(r, gazetteer())
			if heldOutPlace(g.Name) != heldOut {
				continue
			}
			surface, form = g.Name, formGazetteer
			if r.chance(0.5) {
				surface += ", " + g.Country
			}
		} else {
			surface, form = generatedName(r), formGenerated
			city, _, _ := strings.Cut(surface, ",")
			if heldOutPlace(city) != heldOut || gazetteerHas(city) {
				continue
			}
			if _, listed := weather.LookupPlace(surface); listed {
				continue
			}
		}
		if r.chance(0.06) {
			// The typo must leave the name in its part (held out or not)
			// and not turn it into another real place.
			s := misspell(r, surface)
			city, _, _ := strings.Cut(s, ",")
			if heldOutPlace(city) == heldOut && !gazetteerHas(city) {
				surface = s
			}
		}
		if _, listed := weather.LookupPlace(surface); listed {
			continue
		}
		return locChoice{Place: weather.Place{Name: surface}, Surface: surface, Form: form}
	}
}

// gazetteerKeys holds the location key of every gazetteer name.
var gazetteerKeys = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, g := range gazetteer() {
		m[weather.LocationKey(g.Name)] = true
	}
	return m
})

func gazetteerHas(name string) bool { return gazetteerKeys()[weather.LocationKey(name)] }
