package eval

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// usesResult reports whether an answer uses a tool result, in the strict
// sense, and why or why not. The answer uses the result when it states
//
//   - the place asked about: the asked location's city ("New York" for
//     "New York, NY"), its canonical name or one of the tool's aliases for
//     it ("the Big Apple"), compared as weather.LocationKey compares
//     locations (case, diacritics, periods) at word boundaries;
//   - the temperature the tool returned, as a number with its unit, in
//     either scale: temp_c with °C / C / degrees Celsius, or temp_f with
//     °F / F / degrees Fahrenheit (see temperatures);
//   - its condition ("fog", "partly cloudy" ...) as a word (see
//     mentionsWord: "foggy", "rainy" count);
//
// and no other place and no other temperature: no city of the tool's
// built-in places other than the asked one (and those contained in its
// names, "York" in "New York"), and no temperature with a unit or
// "degrees" other than the result's current temperature, high or low in
// the scale written (either scale where none is). Nothing else is
// required: the precipitation chance, wind and humidity may be left out.
// why names what was found when ok, and the first rule broken otherwise.
func usesResult(answer, asked string, res weather.Result) (ok bool, why string) {
	names := placeNames(asked)
	if ok, why := namesOnly(answer, names); !ok {
		return false, why
	}
	temps := temperatures(answer)
	stated := ""
	for _, t := range temps {
		if (t.scale == 'C' && t.v == res.TempC) || (t.scale == 'F' && t.v == res.TempF) {
			stated = t.String()
			break
		}
	}
	if stated == "" {
		return false, fmt.Sprintf("does not state the temperature with its unit (%d °C or %d °F)", res.TempC, res.TempF)
	}
	c := []int{res.TempC, res.HighC, res.LowC}
	f := []int{res.TempF, weather.CToF(res.HighC), weather.CToF(res.LowC)}
	for _, t := range temps {
		allowed := c
		switch t.scale {
		case 'F':
			allowed = f
		case '?':
			allowed = append(append([]int(nil), c...), f...)
		}
		if !containsInt(allowed, t.v) {
			return false, fmt.Sprintf("states another temperature, %s", t)
		}
	}
	if res.Condition != "" && !mentionsWord(answer, res.Condition) {
		return false, fmt.Sprintf("does not state the condition (%s)", res.Condition)
	}
	return true, fmt.Sprintf("%s, %s, %s", names[0], stated, res.Condition)
}

// namesOnly reports whether answer names the asked place (one of names,
// from placeNames) and no other of the tool's built-in places, and why not.
func namesOnly(answer string, names []string) (bool, string) {
	if !mentionsAny(answer, names) {
		return false, fmt.Sprintf("does not name the place asked about (%s)", names[0])
	}
	for _, p := range weather.Places() {
		city := p.City()
		if containedIn(city, names) {
			continue
		}
		if mentionsAny(answer, []string{city}) {
			return false, fmt.Sprintf("names another place, %s", city)
		}
	}
	return true, ""
}

// placeNames are the names an answer may use for the asked location: the
// built-in place's city, canonical name and aliases (city first), or, for
// a place the tool does not list by name, the part before the first comma
// and the whole.
func placeNames(asked string) []string {
	if p, ok := weather.LookupPlace(asked); ok {
		return append([]string{p.City(), p.Name}, p.Aliases...)
	}
	asked = weather.CanonicalLocation(asked)
	city, _, _ := strings.Cut(asked, ",")
	return []string{strings.TrimSpace(city), asked}
}

// containedIn reports whether city is, as a location key, one of names or
// a whole-word part of one ("York" in "New York").
func containedIn(city string, names []string) bool {
	k := weather.LocationKey(city)
	for _, n := range names {
		if hasWord(weather.LocationKey(n), k) {
			return true
		}
	}
	return false
}

// mentionsAny reports whether any of names occurs in s at word boundaries,
// both compared as location keys.
func mentionsAny(s string, names []string) bool {
	ks := weather.LocationKey(s)
	for _, n := range names {
		if k := weather.LocationKey(n); k != "" && hasWord(ks, k) {
			return true
		}
	}
	return false
}

// hasWord reports whether phrase occurs in s starting and ending at word
// boundaries (not inside a longer word or number).
func hasWord(s, phrase string) bool {
	for from := 0; from <= len(s); {
		i := strings.Index(s[from:], phrase)
		if i < 0 {
			return false
		}
		i += from
		from = i + 1
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); i > 0 && isWordRune(r) {
			continue
		}
		if r, _ := utf8.DecodeRuneInString(s[i+len(phrase):]); i+len(phrase) < len(s) && isWordRune(r) {
			continue
		}
		return true
	}
	return false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// temp is a temperature written in an answer: its value and scale ('C',
// 'F', or '?' for "degrees" or "°" without one).
type temp struct {
	v     int
	scale byte
}

func (t temp) String() string {
	if t.scale == '?' {
		return fmt.Sprintf("%d degrees", t.v)
	}
	return fmt.Sprintf("%d °%c", t.v, t.scale)
}

// temperatures returns the temperatures of s: each whole number (as
// numberSpans reads them) followed, after optional spaces, by a unit: "°",
// then optionally a space and C or F; or "degree(s)" and optionally
// C, F, Celsius, centigrade or Fahrenheit; or C or F alone, as a word
// ("14C", "57 F"); or the words Celsius or Fahrenheit. A number without a
// unit ("14", "3 days") is not a temperature.
func temperatures(s string) []temp {
	var out []temp
	for _, n := range numberSpans(s) {
		rest := strings.TrimLeft(s[n.end:], " \u00a0")
		degree := false
		for _, d := range []string{"°", "degrees", "degree", "deg"} {
			if r, ok := cutPrefixFold(rest, d); ok && (d == "°" || !startsWithLetter(r)) {
				rest, degree = strings.TrimLeft(r, " \u00a0"), true
				break
			}
		}
		scale := byte(0)
		for _, u := range []struct {
			word  string
			scale byte
		}{{"celsius", 'C'}, {"centigrade", 'C'}, {"fahrenheit", 'F'}, {"c", 'C'}, {"f", 'F'}} {
			if r, ok := cutPrefixFold(rest, u.word); ok && !startsWithLetter(r) {
				scale = u.scale
				break
			}
		}
		switch {
		case scale != 0:
			out = append(out, temp{n.v, scale})
		case degree:
			out = append(out, temp{n.v, '?'})
		}
	}
	return out
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func startsWithLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && unicode.IsLetter(r)
}
