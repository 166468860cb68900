// Package weather is mlbuild's one tool, get_weather, shared by the
// synth_tools step (which writes training conversations that call it), the
// eval step (which parses a model's calls, executes them and scores their
// arguments) and `mlbuild chat`.
//
// # The tool
//
//	get_weather(location: str, date: str = "today") -> dict
//
// Definition returns its name, description and JSON-schema parameters as
// data, and SystemPrompt a ready-made instruction block for prompts.
// Execute is a deterministic mock with no network access: the result is
// derived from a SHA-256 of the canonical location key and canonical date,
// around a typical temperature for built-in places, so the same call always
// gives the same result, e.g.
//
//	{"location": "San Francisco, CA", "date": "tomorrow", "condition": "fog",
//	 "temp_c": 14, "temp_f": 57, "high_c": 16, "low_c": 10,
//	 "precip_chance": 0.3, "wind_kph": 18, "humidity": 81}
//
// # Wire format
//
// A tool call in model output is one Python-like keyword call with
// double-quoted string arguments, wrapped in markers:
//
//	<tool_call>get_weather(location="San Francisco, CA", date="tomorrow")</tool_call>
//
// Format writes exactly this (arguments in the order location, date, then
// any others sorted; ", " between them; Python/Go string escapes) and Parse
// finds the first <tool_call> in a text and reads the call back; Parse
// returns exactly the Call that Format wrote. Text around the markers is
// ignored; whitespace between tokens is allowed. Without an opening marker
// Parse fails with ErrNoCall; a malformed call gives a *ParseError naming
// the byte offset and what is wrong.
//
// # Canonical arguments
//
// CanonicalLocation maps the names and aliases of about 80 built-in places
// ("SF", "NYC", "LA", "NOLA", "DC", "Philly", "Bombay", "CDMX" ...) to one
// canonical name ("San Francisco, CA"); other locations are kept with their
// whitespace collapsed. CanonicalDate lower-cases and collapses the date
// and maps a few spellings ("", "now" → "today"; "tmrw" → "tomorrow";
// "on Tuesday" → "tuesday"; "weekend" → "this weekend"). ArgsMatch compares
// two calls exactly after this canonicalisation (see CompareArgs).
package weather

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Names of the tool and its arguments.
const (
	ToolName    = "get_weather"
	ArgLocation = "location"
	ArgDate     = "date"
	// DefaultDate is the date used when a call gives none.
	DefaultDate = "today"
)

// Tool is a tool definition as data, in the shape chat templates and
// function-calling APIs use ({"name", "description", "parameters"}).
type Tool struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Parameters  Parameters `json:"parameters"`
}

// Parameters is the JSON-schema object describing a tool's arguments.
type Parameters struct {
	Type       string              `json:"type"`
	Properties map[string]Property `json:"properties"`
	Required   []string            `json:"required"`
}

// Property is one argument's JSON-schema description.
type Property struct {
	Type        string `json:"type"`
	Description string `json:"description"`
	Default     string `json:"default,omitempty"`
}

// Definition returns the get_weather tool definition.
func Definition() Tool {
	return Tool{
		Name:        ToolName,
		Description: "Get the weather forecast for a place and day: condition, temperature in °C and °F, daily high and low, chance of precipitation, wind and humidity.",
		Parameters: Parameters{
			Type: "object",
			Properties: map[string]Property{
				ArgLocation: {Type: "string", Description: `The place, as "City, ST" for US cities (e.g. "San Francisco, CA") or "City, Country" elsewhere (e.g. "Paris, France"); expand abbreviations such as SF or NYC.`},
				ArgDate:     {Type: "string", Description: `The day: "today", "tonight", "tomorrow", "this weekend", "next week", a weekday such as "friday" or "next tuesday".`, Default: DefaultDate},
			},
			Required: []string{ArgLocation},
		},
	}
}

// SystemPrompt returns a system-prompt block that describes the tool (its
// definition as JSON) and the exact call syntax.
func SystemPrompt() string {
	def, _ := json.Marshal(Definition()) // cannot fail: plain strings and maps
	return "You can use one tool. Its definition:\n" + string(def) + "\n" +
		"To call it, think briefly on a line starting with \"Thought:\", then write exactly one call such as\n" +
		Format(NewCall("San Francisco, CA", "tomorrow")) + "\n" +
		"and wait for the result, which comes back as JSON. Then answer using the numbers it gives."
}

// Result is what get_weather returns. Its JSON field order is fixed.
type Result struct {
	// Location is the canonical location.
	Location string `json:"location"`
	// Date is the canonical date.
	Date string `json:"date"`
	// Condition is one of sunny, clear, partly cloudy, cloudy, fog, windy,
	// drizzle, rain, thunderstorms, light snow, snow.
	Condition string `json:"condition"`
	// TempC and TempF are the representative temperature for the date.
	TempC int `json:"temp_c"`
	TempF int `json:"temp_f"`
	// HighC and LowC are the day's high and low in °C.
	HighC int `json:"high_c"`
	LowC  int `json:"low_c"`
	// PrecipChance is the chance of precipitation, 0 to 1 in steps of 0.05.
	PrecipChance float64 `json:"precip_chance"`
	// WindKph is the wind speed in km/h.
	WindKph int `json:"wind_kph"`
	// Humidity is the relative humidity in percent.
	Humidity int `json:"humidity"`
}

// JSON returns the result as compact JSON with fields in declaration order,
// the content of the tool message in conversations.
func (r Result) JSON() string {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return string(b)
}

// CToF converts °C to the nearest whole °F (halves away from zero).
func CToF(c int) int { return int(math.Round(float64(c)*9/5 + 32)) }

// Validate checks that c is a well-formed get_weather call: the right name,
// a non-empty location of at most 200 bytes, an optional date of at most
// 100 bytes, and no other arguments.
func Validate(c Call) error {
	if c.Name != ToolName {
		return fmt.Errorf("unknown tool %q: the only tool is %s", c.Name, ToolName)
	}
	for k := range c.Arguments {
		if k != ArgLocation && k != ArgDate {
			return fmt.Errorf("%s: unknown argument %q (it takes %s and %s)", ToolName, k, ArgLocation, ArgDate)
		}
	}
	loc, ok := c.Arguments[ArgLocation]
	if !ok {
		return fmt.Errorf("%s: missing required argument %s", ToolName, ArgLocation)
	}
	if strings.TrimSpace(loc) == "" {
		return fmt.Errorf("%s: argument %s is empty", ToolName, ArgLocation)
	}
	if len(loc) > 200 {
		return fmt.Errorf("%s: argument %s is %d bytes long (at most 200)", ToolName, ArgLocation, len(loc))
	}
	if len(c.Arguments[ArgDate]) > 100 {
		return fmt.Errorf("%s: argument %s is %d bytes long (at most 100)", ToolName, ArgDate, len(c.Arguments[ArgDate]))
	}
	return nil
}

// ErrPastDate is the error of a call for a day that has passed: the tool
// forecasts, as a real weather API's forecast endpoint does, from today
// through next week.
var ErrPastDate = errors.New("the forecast covers today through next week, not days that have passed")

// IsPastDate reports whether a canonical date (CanonicalDate) names a day
// that has passed: "yesterday", "last night", "the day before yesterday",
// "last week", "last weekend", "last " and a weekday, or anything "ago".
func IsPastDate(date string) bool {
	switch date {
	case "yesterday", "last night", "the day before yesterday", "last week", "last weekend":
		return true
	}
	if w, ok := strings.CutPrefix(date, "last "); ok {
		for _, d := range weekdays {
			if w == d {
				return true
			}
		}
	}
	return strings.HasSuffix(date, " ago")
}

// ErrorJSON is the tool message for a call that could not run: {"error":
// "..."}, the shape chat and the training data give the model.
func ErrorJSON(err error) string {
	b, _ := json.Marshal(map[string]string{"error": err.Error()}) // a map of strings always marshals
	return string(b)
}

// Execute runs the mock tool: it validates the call and returns the weather
// for its canonical location and date. The result depends only on
// LocationKey(CanonicalLocation(location)) and CanonicalDate(date). A day
// that has passed (IsPastDate) is an error wrapping ErrPastDate.
func Execute(c Call) (Result, error) {
	if err := Validate(c); err != nil {
		return Result{}, err
	}
	loc := CanonicalLocation(c.Arguments[ArgLocation])
	date := CanonicalDate(c.Arguments[ArgDate])
	if IsPastDate(date) {
		return Result{}, fmt.Errorf("%s: date %q has passed: %w", ToolName, c.Arguments[ArgDate], ErrPastDate)
	}
	h := sha256.Sum256([]byte("get_weather\x00" + LocationKey(loc) + "\x00" + date))

	mean := int(h[0]%36) - 5 // unknown places: -5..30 °C
	if p, ok := LookupPlace(loc); ok {
		mean = p.MeanC
	}
	temp := mean + int(h[1]%13) - 6
	if date == "tonight" {
		temp -= 6
	}
	high := temp + 1 + int(h[2]%5)
	low := temp - 2 - int(h[3]%7)
	precip := float64(h[4]%21) / 20
	wind := 3 + int(h[5]%40)
	humidity := 25 + int(h[6]%60) + int(precip*15)

	var cond string
	switch pick := int(h[7]); {
	case precip >= 0.6:
		switch {
		case temp <= 1:
			cond = "snow"
		case pick%4 == 0:
			cond = "thunderstorms"
		default:
			cond = "rain"
		}
	case precip >= 0.4:
		if temp <= 1 {
			cond = "light snow"
		} else {
			cond = []string{"drizzle", "cloudy", "fog"}[pick%3]
		}
	default:
		cond = []string{"sunny", "clear", "partly cloudy", "partly cloudy", "sunny"}[pick%5]
		if wind >= 35 {
			cond = "windy"
		} else if date == "tonight" && cond == "sunny" {
			cond = "clear"
		}
	}
	return Result{
		Location:     loc,
		Date:         date,
		Condition:    cond,
		TempC:        temp,
		TempF:        CToF(temp),
		HighC:        high,
		LowC:         low,
		PrecipChance: precip,
		WindKph:      wind,
		Humidity:     humidity,
	}, nil
}

var weekdays = []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

var weekdayAbbrev = map[string]string{
	"mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday", "thu": "thursday",
	"thur": "thursday", "thurs": "thursday", "fri": "friday", "sat": "saturday", "sun": "sunday",
}

var dateSynonyms = map[string]string{
	"": "today", "now": "today", "right now": "today", "currently": "today", "current": "today",
	"today": "today", "tmrw": "tomorrow", "tmr": "tomorrow", "tomorow": "tomorrow", "tommorow": "tomorrow",
	"tommorrow": "tomorrow", "weekend": "this weekend", "the weekend": "this weekend",
	"this weekend": "this weekend", "overmorrow": "the day after tomorrow",
	"day after tomorrow": "the day after tomorrow",
	"yday":               "yesterday", "last nite": "last night", "day before yesterday": "the day before yesterday",
}

// Weekdays returns the weekday names in canonical (lower-case) form,
// Monday first.
func Weekdays() []string { return append([]string(nil), weekdays...) }

// CanonicalDate maps a date as written to its canonical form: trimmed,
// lower-cased, whitespace collapsed, a leading "on " dropped; "", "now",
// "right now", "currently" → "today"; "tmrw" and common misspellings →
// "tomorrow"; "weekend"/"the weekend" → "this weekend"; "day after
// tomorrow"/"overmorrow" → "the day after tomorrow"; weekday abbreviations
// ("tue", "next fri", "last fri") spelled out. Anything else (e.g. "2025-07-04") is
// kept as trimmed, collapsed lower case.
func CanonicalDate(date string) string {
	d := strings.ToLower(strings.Join(strings.Fields(date), " "))
	d = strings.TrimPrefix(d, "on ")
	if s, ok := dateSynonyms[d]; ok {
		return s
	}
	prefix := ""
	for _, p := range []string{"next ", "this ", "last "} {
		if strings.HasPrefix(d, p) {
			prefix, d = p, d[len(p):]
			break
		}
	}
	if full, ok := weekdayAbbrev[d]; ok {
		d = full
	}
	if prefix == "this " {
		for _, w := range weekdays {
			if d == w {
				return w // "this friday" is "friday"
			}
		}
	}
	return prefix + d
}

// CompareArgs reports whether got calls the same tool with the same
// arguments as want, and when not, why. Semantics: the names must be equal;
// locations are equal when LocationKey(CanonicalLocation(·)) is equal (so
// "SF", "san francisco" and "San Francisco, CA" match); dates are equal
// when CanonicalDate is equal, a missing date counting as "today"; any
// other argument must be present in both with byte-equal values. Nothing is
// fuzzy beyond that: "Oakland, CA" does not match "San Francisco, CA".
func CompareArgs(want, got Call) (bool, string) {
	if want.Name != got.Name {
		return false, fmt.Sprintf("tool %q, want %q", got.Name, want.Name)
	}
	wl, wok := want.Arguments[ArgLocation]
	gl, gok := got.Arguments[ArgLocation]
	switch {
	case wok != gok:
		return false, fmt.Sprintf("%s given in only one of the calls", ArgLocation)
	case LocationKey(CanonicalLocation(wl)) != LocationKey(CanonicalLocation(gl)):
		return false, fmt.Sprintf("%s %q, want %q", ArgLocation, gl, wl)
	}
	if wd, gd := CanonicalDate(want.Arguments[ArgDate]), CanonicalDate(got.Arguments[ArgDate]); wd != gd {
		return false, fmt.Sprintf("%s %q, want %q", ArgDate, gd, wd)
	}
	for _, c := range []struct{ a, b Call }{{want, got}, {got, want}} {
		for _, k := range c.a.argOrder() {
			if k == ArgLocation || k == ArgDate {
				continue
			}
			if v, ok := c.b.Arguments[k]; !ok || v != c.a.Arguments[k] {
				return false, fmt.Sprintf("argument %q differs", k)
			}
		}
	}
	return true, ""
}

// ArgsMatch reports whether got matches want under CompareArgs.
func ArgsMatch(want, got Call) bool {
	ok, _ := CompareArgs(want, got)
	return ok
}
