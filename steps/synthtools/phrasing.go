package synthtools

import (
	"strings"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// Question styles.
const (
	styleCasual  = "casual"
	styleFormal  = "formal"
	styleLower   = "lower" // lower-case, typo-ish, terse; the whole question is lower-cased
	styleContext = "context"
)

// Topics: what a question is really after. The final answer opens with a
// direct reply to umbrella, coat and sunscreen questions.
const (
	topicGeneral   = "general"
	topicUmbrella  = "umbrella"
	topicCoat      = "coat"
	topicSunscreen = "sunscreen"
)

// question is a user-question template: {loc} is the location as the user
// writes it and {when} the date phrase with its leading space, or nothing
// when the user gives no date.
type question struct {
	ID, Style, Topic, Text string
}

var questions = []question{
	// Casual.
	{"what-weather", styleCasual, topicGeneral, "What's the weather in {loc}{when}?"},
	{"weather-like", styleCasual, topicGeneral, "What's the weather like in {loc}{when}?"},
	{"hows-weather", styleCasual, topicGeneral, "How's the weather in {loc}{when}?"},
	{"going-to-rain", styleCasual, topicUmbrella, "Is it going to rain in {loc}{when}?"},
	{"need-umbrella", styleCasual, topicUmbrella, "Will I need an umbrella in {loc}{when}?"},
	{"need-coat", styleCasual, topicCoat, "Do I need a coat in {loc}{when}?"},
	{"bring-jacket", styleCasual, topicCoat, "Should I bring a jacket to {loc}{when}?"},
	{"sunscreen-weather", styleCasual, topicSunscreen, "Is it sunscreen weather in {loc}{when}?"},
	{"how-hot", styleCasual, topicGeneral, "How hot is it going to be in {loc}{when}?"},
	{"how-cold", styleCasual, topicCoat, "How cold will it get in {loc}{when}?"},
	{"chance-rain", styleCasual, topicUmbrella, "Any chance of rain in {loc}{when}?"},
	{"hey-looking", styleCasual, topicGeneral, "Hey, what's it looking like in {loc}{when}?"},
	{"quick-one", styleCasual, topicGeneral, "Quick one: weather in {loc}{when}?"},
	{"check-forecast", styleCasual, topicGeneral, "Can you check the forecast for {loc}{when}?"},
	{"give-forecast", styleCasual, topicGeneral, "Give me the forecast for {loc}{when}, please."},
	{"twain-fixing", styleCasual, topicGeneral, "Mr. Twain, what's the weather fixing to do in {loc}{when}?"},
	// Formal.
	{"formal-tell", styleFormal, topicGeneral, "Could you tell me what the weather will be in {loc}{when}?"},
	{"formal-like", styleFormal, topicGeneral, "I would like to know the forecast for {loc}{when}."},
	{"formal-provide", styleFormal, topicGeneral, "Please provide the weather conditions for {loc}{when}."},
	{"formal-kind", styleFormal, topicGeneral, "Would you be so kind as to look up the weather in {loc}{when}?"},
	{"formal-may", styleFormal, topicGeneral, "May I ask what the forecast is for {loc}{when}?"},
	{"formal-temp", styleFormal, topicGeneral, "Kindly report the expected temperature in {loc}{when}."},
	{"formal-umbrella", styleFormal, topicUmbrella, "Would you advise carrying an umbrella in {loc}{when}?"},
	// Lower-case, typo-ish.
	{"lower-terse", styleLower, topicGeneral, "weather {loc}{when}"},
	{"lower-whats", styleLower, topicGeneral, "whats the weather in {loc}{when}"},
	{"lower-hows", styleLower, topicGeneral, "hows it looking in {loc}{when}"},
	{"lower-need", styleLower, topicGeneral, "weather in {loc}{when}?? need to know"},
	{"lower-gonna-rain", styleLower, topicUmbrella, "is it gonna rain in {loc}{when}"},
	{"lower-temp", styleLower, topicGeneral, "temp in {loc}{when}?"},
	{"lower-wat", styleLower, topicGeneral, "wat's the forecast for {loc}{when}"},
	{"lower-umbrella", styleLower, topicUmbrella, "do i need an umbrella in {loc}{when}"},
	{"lower-hot-cold", styleLower, topicGeneral, "hot or cold in {loc}{when}?"},
	{"lower-jacket", styleLower, topicCoat, "jacket or no jacket in {loc}{when}"},
	{"lower-sunscreen", styleLower, topicSunscreen, "need sunscreen in {loc}{when}?"},
	// A question inside some context.
	{"ctx-packing-coat", styleContext, topicCoat, "Packing for {loc}{when}, need a coat?"},
	{"ctx-flying", styleContext, topicGeneral, "I'm flying to {loc}{when}. What should I pack?"},
	{"ctx-picnic", styleContext, topicUmbrella, "Planning a picnic in {loc}{when}. Good idea or not?"},
	{"ctx-wedding", styleContext, topicGeneral, "My sister is getting married in {loc}{when}. Will the weather behave?"},
	{"ctx-walking", styleContext, topicUmbrella, "Thinking of walking around {loc}{when}. Umbrella or sunglasses?"},
	{"ctx-run", styleContext, topicGeneral, "Heading out for a run in {loc}{when}; what am I in for?"},
	{"ctx-boat", styleContext, topicGeneral, "We have a boat trip planned in {loc}{when}. How does it look?"},
	{"ctx-interview", styleContext, topicGeneral, "Got a job interview in {loc}{when} and I only own one suit. Weather?"},
	{"ctx-sweater", styleContext, topicCoat, "Visiting my aunt in {loc}{when}. Do I pack a sweater?"},
	{"ctx-ballgame", styleContext, topicSunscreen, "Going to a ball game in {loc}{when}. Will I get sunburned?"},
	{"ctx-shorts", styleContext, topicGeneral, "Is {loc} warm enough for shorts{when}?"},
	{"ctx-miserable", styleContext, topicGeneral, "Tell me honestly: is {loc} going to be miserable{when}?"},
	{"ctx-beach", styleContext, topicSunscreen, "Beach day in {loc}{when}? Should I bring sunscreen?"},
	{"ctx-leave-umbrella", styleContext, topicUmbrella, "Can I leave the umbrella at home in {loc}{when}?"},
}

// heldOutQuestions are question templates that no training set uses: a
// test set (set = "test") asks half its questions with them, so that eval
// can tell a model that understands the question from one that matches
// the training's phrasings.
var heldOutQuestions = []question{
	{"ho-forecast-say", styleCasual, topicGeneral, "What does the forecast say for {loc}{when}?"},
	{"ho-tell-weather", styleCasual, topicGeneral, "Tell me the weather for {loc}{when}."},
	{"ho-nice-out", styleCasual, topicGeneral, "Is it going to be nice out in {loc}{when}?"},
	{"ho-rain-shine", styleCasual, topicUmbrella, "Rain or shine in {loc}{when}?"},
	{"ho-grateful", styleFormal, topicGeneral, "I should be grateful for the forecast in {loc}{when}."},
	{"ho-conditions", styleFormal, topicGeneral, "Could you check the conditions in {loc}{when}?"},
	{"ho-forecast-pls", styleLower, topicGeneral, "forecast {loc}{when} pls"},
	{"ho-cold", styleLower, topicCoat, "is it cold in {loc}{when}"},
	{"ho-umbrella-needed", styleLower, topicUmbrella, "umbrella needed in {loc}{when}?"},
	{"ho-driving", styleContext, topicGeneral, "Driving to {loc}{when}; anything to worry about, weather-wise?"},
	{"ho-barbecue", styleContext, topicUmbrella, "We're hosting a barbecue in {loc}{when}. Will it stay dry?"},
	{"ho-wear-coat", styleContext, topicCoat, "Should I wear a coat in {loc}{when}?"},
}

// Date kinds, the keys of report.json's "date_kinds".
const (
	dateOmitted     = "omitted"
	dateToday       = "today"
	dateTonight     = "tonight"
	dateTomorrow    = "tomorrow"
	dateWeekend     = "this_weekend"
	dateWeekday     = "weekday"
	dateNextWeekday = "next_weekday"
	dateDayAfter    = "day_after_tomorrow"
	dateNextWeek    = "next_week"
)

var dateKindWeights = []struct {
	kind   string
	weight int
}{
	{dateOmitted, 14}, {dateToday, 10}, {dateTonight, 8}, {dateTomorrow, 20}, {dateWeekend, 12},
	{dateWeekday, 16}, {dateNextWeekday, 10}, {dateDayAfter, 5}, {dateNextWeek, 5},
}

// dateChoice is the day a question asks about.
type dateChoice struct {
	Kind string
	// Call is the canonical date written in the call (weather.CanonicalDate
	// form; "today" when the user gave none).
	Call string
	// Surface is the date as the question writes it, with a leading space,
	// or "" when omitted.
	Surface string
	// Adverb is the date as the thought and answer write it ("tomorrow",
	// "on Friday", "this weekend").
	Adverb string
}

var weekdayShort = map[string][]string{
	"monday": {"mon"}, "tuesday": {"tue", "tues"}, "wednesday": {"wed"}, "thursday": {"thu", "thurs"},
	"friday": {"fri"}, "saturday": {"sat"}, "sunday": {"sun"},
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// chooseDate draws a date; lower allows the typo-ish spellings of
// lower-case questions.
func chooseDate(r *rng, lower bool) dateChoice {
	total := 0
	for _, w := range dateKindWeights {
		total += w.weight
	}
	n := r.intN(total)
	kind := dateKindWeights[len(dateKindWeights)-1].kind
	for _, w := range dateKindWeights {
		if n < w.weight {
			kind = w.kind
			break
		}
		n -= w.weight
	}
	surface := func(normal []string, typo ...string) string {
		if lower {
			normal = append(normal, typo...)
		}
		return pick(r, normal)
	}
	switch kind {
	case dateOmitted:
		return dateChoice{kind, weather.DefaultDate, "", "today"}
	case dateToday:
		return dateChoice{kind, "today", surface([]string{" today", " right now", " this afternoon"}, " rn", " 2day"), "today"}
	case dateTonight:
		return dateChoice{kind, "tonight", surface([]string{" tonight", " this evening"}, " tonite", " 2nite"), "tonight"}
	case dateTomorrow:
		return dateChoice{kind, "tomorrow", surface([]string{" tomorrow", " tomorrow morning"}, " tmrw", " tomorow", " tmr"), "tomorrow"}
	case dateWeekend:
		return dateChoice{kind, "this weekend", surface([]string{" this weekend", " over the weekend", " on the weekend"}, " this wknd"), "this weekend"}
	case dateWeekday:
		d := pick(r, weather.Weekdays())
		D := title(d)
		return dateChoice{kind, d, surface([]string{" on " + D, " " + D, " this " + D}, " on "+pick(r, weekdayShort[d]), " this "+pick(r, weekdayShort[d])), "on " + D}
	case dateNextWeekday:
		d := pick(r, weather.Weekdays())
		D := title(d)
		return dateChoice{kind, "next " + d, surface([]string{" next " + D}, " next "+pick(r, weekdayShort[d])), "next " + D}
	case dateDayAfter:
		return dateChoice{kind, "the day after tomorrow", surface([]string{" the day after tomorrow"}, " day after tmrw"), "the day after tomorrow"}
	default:
		return dateChoice{dateNextWeek, "next week", surface([]string{" next week", " sometime next week"}, " nxt week"), "next week"}
	}
}

// Location forms, the keys of report.json's "location_forms".
const (
	formName      = "name"       // the canonical name, "San Francisco, CA"
	formCity      = "city"       // the city alone, "San Francisco"
	formAlias     = "alias"      // an alias or abbreviation, "SF", "the Big Apple"
	formCityState = "city_state" // US city with the state spelled out, "San Francisco, California"
)

// usStateNames spells out the states of the built-in US places.
var usStateNames = map[string]string{
	"AK": "Alaska", "AZ": "Arizona", "CA": "California", "CO": "Colorado", "CT": "Connecticut",
	"DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "IL": "Illinois",
	"LA": "Louisiana", "MA": "Massachusetts", "MD": "Maryland", "MI": "Michigan", "MN": "Minnesota",
	"MO": "Missouri", "NV": "Nevada", "NY": "New York", "OH": "Ohio", "OR": "Oregon",
	"PA": "Pennsylvania", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "WA": "Washington",
}

// locChoice is a place and how the question names it.
type locChoice struct {
	Place   weather.Place
	Surface string
	Form    string
}

// chooseLocation picks how to name p: an alias when it has any (40%), the
// city (30%), the canonical name (20%) or, for US places, the city with
// its state spelled out (10%).
func chooseLocation(r *rng, p weather.Place) locChoice {
	type option struct {
		form   string
		weight int
	}
	var opts []option
	city := p.City()
	if len(p.Aliases) > 0 {
		opts = append(opts, option{formAlias, 40})
	}
	if city != p.Name {
		opts = append(opts, option{formCity, 30})
	}
	opts = append(opts, option{formName, 20})
	_, st, _ := strings.Cut(p.Name, ", ")
	if _, ok := usStateNames[st]; ok && p.Region == "us" {
		opts = append(opts, option{formCityState, 10})
	}
	total := 0
	for _, o := range opts {
		total += o.weight
	}
	n := r.intN(total)
	form := opts[len(opts)-1].form
	for _, o := range opts {
		if n < o.weight {
			form = o.form
			break
		}
		n -= o.weight
	}
	switch form {
	case formAlias:
		// Abbreviations ("SF", "NYC", "Philly") are what users type most:
		// they get twice the weight of longer nicknames.
		var weighted []string
		for _, a := range p.Aliases {
			weighted = append(weighted, a)
			if isAbbreviation(a) || (len(a) <= 6 && !strings.Contains(a, " ")) {
				weighted = append(weighted, a)
			}
		}
		return locChoice{p, pick(r, weighted), form}
	case formCity:
		return locChoice{p, city, form}
	case formCityState:
		return locChoice{p, city + ", " + usStateNames[st], form}
	default:
		return locChoice{p, p.Name, formName}
	}
}

// isAbbreviation reports whether an alias is an abbreviation: letters and
// periods only, every letter upper-case ("SF", "NYC", "L.A.", "T.O.").
func isAbbreviation(alias string) bool {
	letters := 0
	for _, c := range alias {
		switch {
		case c >= 'A' && c <= 'Z':
			letters++
		case c == '.':
		default:
			return false
		}
	}
	return letters >= 2
}

// featured places are dealt twice per round of the deck: the cities users
// (and evals) ask about most, most of them with well-known abbreviations.
var featured = []string{
	"San Francisco, CA", "New York, NY", "Los Angeles, CA", "Washington, DC", "Philadelphia, PA",
	"New Orleans, LA", "Chicago, IL", "Boston, MA", "London, UK", "Paris, France",
}

// renderQuestion fills a question template.
func renderQuestion(q question, loc locChoice, date dateChoice) string {
	s := strings.NewReplacer("{loc}", loc.Surface, "{when}", date.Surface).Replace(q.Text)
	if q.Style == styleLower {
		s = strings.ToLower(s)
	}
	return s
}

// normKey is the key under which two questions count as duplicates:
// lower-cased with whitespace collapsed.
func normKey(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}
