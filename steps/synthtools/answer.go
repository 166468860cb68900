package synthtools

import (
	"math"
	"strconv"
	"strings"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// Thought styles (synth_tools' thought attribute).
const (
	// ThoughtFree: a note on how the user's place maps to the canonical one,
	// a note when no date was given, and the plan, in varied words.
	ThoughtFree = "free"
	// ThoughtArguments: the call's arguments first, in the call's own
	// syntax (location="…", date="…"), then the free thought. A small model
	// resolves the place at one fixed spot instead of wherever a template
	// first names it, and the call copies it from there.
	ThoughtArguments = "arguments"
	// ThoughtNone: no thought; the assistant's first turn is the call.
	ThoughtNone = "none"
)

// ThoughtStyles lists the valid styles.
var ThoughtStyles = []string{ThoughtFree, ThoughtArguments, ThoughtNone}

// thought writes the assistant's "Thought:" line before the call: a note
// on how the user's location maps to the canonical one (always for an
// alias, sometimes for other forms), a note when no date was given, and
// the plan; with ThoughtArguments the call's arguments come first. The
// draws are the same whatever the style.
func thought(r *rng, q question, loc locChoice, date dateChoice, style string) string {
	surface := writtenPlace(q, loc)
	var parts []string
	if surface != loc.Place.Name && (loc.Form == formAlias || r.chance(0.5)) {
		parts = append(parts, pick(r, []string{
			`"{surface}" is {loc}.`,
			`"{surface}" means {loc}.`,
			`By "{surface}" they mean {loc}.`,
		}))
	}
	if date.Kind == dateOmitted {
		parts = append(parts, pick(r, []string{
			"No day was given, so I'll assume today.",
			"They gave no date; today it is.",
			"No date mentioned, so today.",
		}))
	}
	cores := []string{
		"The user wants the weather in {loc} {adv}, so I'll call get_weather.",
		"I need the forecast for {loc} {adv} before I can answer.",
		`Let me check get_weather for {loc}, date "{date}".`,
		`I'll look up {loc} with the weather tool, date "{date}".`,
		"Best to consult the tool for {loc} {adv} rather than guess.",
		"No sense guessing; I'll ask get_weather about {loc} {adv}.",
	}
	if q.Topic != topicGeneral && r.chance(0.5) {
		cores = map[string][]string{
			topicUmbrella:  {"Whether they need an umbrella depends on the forecast for {loc} {adv}; I'll check."},
			topicCoat:      {"To say whether a coat is needed I need the temperature in {loc} {adv}."},
			topicSunscreen: {"Sunscreen depends on the sun in {loc} {adv}; I'll look it up."},
		}[q.Topic]
	}
	parts = append(parts, pick(r, cores))
	if style == ThoughtArguments {
		parts = append([]string{`location="{loc}", date="{date}".`}, parts...)
	}
	return "Thought: " + strings.NewReplacer(
		"{surface}", surface,
		"{loc}", loc.Place.Name,
		"{adv}", date.Adverb,
		"{date}", date.Call,
	).Replace(strings.Join(parts, " "))
}

// writtenPlace is the place as the question writes it: the location's
// surface form, lower-cased in a lower-case question.
func writtenPlace(q question, loc locChoice) string {
	if q.Style == styleLower {
		return strings.ToLower(loc.Surface)
	}
	return loc.Surface
}

// answerTemplate is a final-answer template in a Mark Twain voice.
// Placeholders: {City} the place; {when}/{When} the date phrase ("on
// Friday"); {cond}/{Cond} the condition as a noun phrase containing the
// tool's condition word ("partly cloudy skies"); {tf} and {tc} the
// temperature in °F and °C; {hi} and {lo} the day's high and low in °C;
// {rain} the chance of precipitation in percent and {wet} what would fall
// ("rain" or "snow"); {wind} in km/h; {hum} the humidity in percent;
// {Advice} one or more sentences of advice.
type answerTemplate struct{ ID, Text string }

var answers = []answerTemplate{
	{"a01-promises", "{When} in {City} the sky promises {cond} and {tf}°F ({tc}°C), with a {rain}% chance of {wet}. {Advice} I have known forecasts to lie, but seldom by more than the thickness of a coat."},
	{"a02-report", "The weather in {City} {when}: {cond}, {tf}°F ({tc}°C), and a {rain}% chance of {wet}. {Advice} Everybody complains about the weather; I merely report it, which is the more respectable crime."},
	{"a03-heavens", "I have consulted the heavens on {City}, and they say {cond} and {tf}°F ({tc}°C) {when}, with a {rain}% chance of {wet}. {Advice}"},
	{"a04-politician", "{City} {when} will be {tf}°F ({tc}°C) under {cond}, with a high of {hi}°C and a low of {lo}°C. {Advice} The weather, like a politician, is most reliable when it has nothing to gain."},
	{"a05-truth", "Here is the truth, which is a rare thing to get out of a forecast: {cond} in {City} {when}, {tf}°F ({tc}°C), and a {rain}% chance of {wet}. {Advice}"},
	{"a06-wait", "If you don't care for the weather in {City}, wait a day; but {when} you will get {cond} at {tf}°F ({tc}°C), with a {rain}% chance of {wet}. {Advice}"},
	{"a07-thermometer", "{City}, {when}: {tf}°F ({tc}°C), {cond}, and wind at {wind} km/h. {Advice} I never argue with a thermometer; it has the facts, and I have only opinions."},
	{"a08-almanac", "The almanac is silent, but the tool is not: {cond} in {City} {when}, {tf}°F ({tc}°C), humidity {hum}%. {Advice}"},
	{"a09-picnic", "Expect {cond} in {City} {when}, and {tf}°F ({tc}°C) to go with it, the high reaching {hi}°C. {Advice} Climate is what we expect; weather is what we get, generally on the day we planned the picnic."},
	{"a10-reckon", "Well, I reckon {City} will run about {tf}°F ({tc}°C) {when}, with {cond}, and the odds of {wet} stand at {rain}%. {Advice} A man who trusts the weather is a man who has not yet been rained on."},
	{"a11-historians", "{Advice} The numbers for {City} {when} are {tf}°F ({tc}°C), {cond}, and a {rain}% chance of {wet}; I give them to you as I got them, which is more than most historians can say."},
	{"a12-sermon", "The forecast for {City} {when} reads like a good sermon, short and to the point: {cond}, {tf}°F ({tc}°C), a {rain}% chance of {wet}. {Advice}"},
	{"a13-uncertain", "There is nothing so uncertain as the weather, except a forecast; still, {City} {when} looks like {cond} and {tf}°F ({tc}°C), with a low of {lo}°C. {Advice}"},
	{"a14-civilized", "{City} {when}: {cond} and {tf}°F, which the rest of the civilized world calls {tc}°C. Chance of {wet}: {rain}%. {Advice}"},
	{"a15-busiest", "I asked after {City}, and the answer came back {cond}, {tf}°F ({tc}°C) {when}, with winds of {wind} km/h. {Advice} The weather is always doing something; it is the busiest thing in creation."},
	{"a16-river", "Down on the river we would read {City} {when} as {cond}, {tf}°F ({tc}°C), with a {rain}% chance of {wet}, and we would mostly be right. {Advice}"},
	{"a17-good-bad", "Good news and bad, as usual: {City} {when} brings {cond} and {tf}°F ({tc}°C); the high is {hi}°C and the low {lo}°C. {Advice}"},
	{"a18-cheerfulness", "{City} {when} offers {cond} at {tf}°F ({tc}°C). Chance of {wet}: {rain}%. Humidity: {hum}%. {Advice} Do not trust my cheerfulness; trust the thermometer."},
	{"a19-mark", "Mark my words, and the tool's: {tf}°F ({tc}°C) and {cond} in {City} {when}, with a {rain}% chance of {wet}. {Advice}"},
	{"a20-committee", "The sky over {City} has settled on {cond} and {tf}°F ({tc}°C) {when}, which is more decisive than most committees. {Advice}"},
	{"a21-reckoning", "By the tool's reckoning, {City} gets {cond} {when}: {tf}°F ({tc}°C), between {lo}°C and {hi}°C, with a {rain}% chance of {wet}. {Advice}"},
	{"a22-reform", "{City} {when}? {Cond}, {tf}°F ({tc}°C), and a {rain}% chance of {wet}. {Advice} Weather is a thing you cannot reform, so you may as well dress for it."},
	{"a23-experts", "I am told that {City} will see {cond} {when}, at {tf}°F ({tc}°C). {Advice} The forecast may be wrong, but it is wrong with confidence, which is all we ask of experts."},
	{"a24-waiting", "Should you find yourself in {City} {when}, you will find {cond} and {tf}°F ({tc}°C) waiting for you, with winds of {wind} km/h. {Advice}"},
	{"a25-telegraph", "News by telegraph from {City}: {cond} {when}, {tf}°F ({tc}°C), a {rain}% chance of {wet}. {Advice} Reports of my death were exaggerated; this report, so far as I can tell, is not."},
}

// condPhrase turns the tool's condition into a noun phrase that contains
// it (in an answer of the given style).
func condPhrase(cond, style string) string {
	switch cond {
	case "sunny", "clear", "partly cloudy", "cloudy":
		return cond + " skies"
	case "windy":
		if style == AnswerSimple {
			return "windy skies"
		}
		return "windy weather"
	default: // fog, drizzle, rain, thunderstorms, light snow, snow
		return cond
	}
}

// Advice categories, the keys of report.json's "advice".
const (
	adviceThunder   = "thunderstorm"
	adviceUmbrella  = "umbrella"
	adviceSnow      = "snow"
	adviceHeavyCoat = "heavy_coat"
	adviceCoat      = "coat"
	adviceSunscreen = "sunscreen"
	adviceWind      = "wind"
	adviceFog       = "fog"
	adviceMild      = "mild"
)

var adviceLines = map[string][]string{
	adviceThunder: {
		"Take an umbrella and stay indoors if you can; thunder is good, thunder is impressive, but it is lightning that does the work.",
		"Bring an umbrella, keep off the golf course, and let the lightning do the talking; it is louder than you are.",
	},
	adviceUmbrella: {
		"Take an umbrella; it is the one friend that will stand over you in a storm and ask nothing in return.",
		"Carry an umbrella, and if you haven't one, borrow one; that is the custom, and nobody ever returns them anyway.",
		"An umbrella is advised; the sky has been saving up and means to spend it all at once.",
		"Bring an umbrella and a forgiving disposition; you will need both.",
	},
	adviceSnow: {
		"Wear your heaviest coat and boots with some ambition in them; snow is beautiful chiefly from indoors.",
		"Bundle up in a warm coat and gloves; the snow does not care how important you are.",
	},
	adviceHeavyCoat: {
		"Bring a heavy coat; the cold there has no manners and no mercy.",
		"Wear a warm coat and gloves; I have seen colder days, but only in books about the Arctic.",
		"A heavy coat is in order; the air there bites like a creditor.",
	},
	adviceCoat: {
		"Take a coat or a stout jacket; the air has a nip in it that no amount of optimism will fix.",
		"A light coat would be wise; the day is pleasant only to people who are already wearing one.",
		"Bring a jacket or a coat; a chill is a poor traveling companion.",
	},
	adviceSunscreen: {
		"Wear sunscreen and a wide hat; the sun there is generous to a fault.",
		"Put on sunscreen and drink plenty of water; the sun shows no favoritism and takes no prisoners.",
		"Sunscreen is the order of the day, and a hat, if you value the top of your head.",
	},
	adviceWind: {
		"Hold on to your hat, and to your coat; the wind there has opinions.",
		"Dress snugly and keep a firm grip on anything light; the wind is in a borrowing mood.",
	},
	adviceFog: {
		"Bring a jacket and a good sense of direction; that fog could hide a steamboat.",
		"Carry a light jacket and walk carefully; in that fog a man can lose himself without half trying.",
	},
	adviceMild: {
		"No coat or umbrella required; it is the kind of day that makes a man think well of himself.",
		"Leave the umbrella at home; a day like this is wasted on anyone who stays indoors.",
		"You need neither coat nor umbrella; go out and enjoy it before somebody spoils it.",
	},
}

// Needs derived from a result; they decide the advice and the direct
// replies to topic questions.
func isSnowy(res weather.Result) bool { return strings.Contains(res.Condition, "snow") }

func needsUmbrella(res weather.Result) bool {
	switch res.Condition {
	case "rain", "thunderstorms", "drizzle":
		return true
	}
	return res.PrecipChance >= 0.5 && !isSnowy(res)
}

func needsCoat(res weather.Result) bool { return res.TempC <= 13 || isSnowy(res) }

func needsSunscreen(res weather.Result) bool {
	switch res.Condition {
	case "sunny", "clear", "partly cloudy":
		return res.TempC >= 22 && res.Date != "tonight"
	}
	return false
}

// adviceCategory picks the main advice for a result, most pressing first.
func adviceCategory(res weather.Result) string {
	switch {
	case isSnowy(res):
		return adviceSnow
	case res.Condition == "thunderstorms":
		return adviceThunder
	case needsUmbrella(res):
		return adviceUmbrella
	case res.TempC <= 5:
		return adviceHeavyCoat
	case res.TempC <= 13:
		return adviceCoat
	case needsSunscreen(res):
		return adviceSunscreen
	case res.Condition == "windy":
		return adviceWind
	case res.Condition == "fog":
		return adviceFog
	default:
		return adviceMild
	}
}

// topicReply opens the advice with a direct answer to an umbrella, coat
// or sunscreen question, unless the main advice already says yes to it.
func topicReply(r *rng, topic, category string, res weather.Result) string {
	var yes bool
	var yesLines, noLines []string
	switch topic {
	case topicUmbrella:
		if category == adviceUmbrella || category == adviceThunder {
			return ""
		}
		yes = needsUmbrella(res) || isSnowy(res)
		yesLines = []string{"Yes, you will want the umbrella.", "An umbrella, by all means."}
		noLines = []string{"No umbrella needed.", "You may leave the umbrella at home."}
	case topicCoat:
		if category == adviceSnow || category == adviceHeavyCoat || category == adviceCoat {
			return ""
		}
		yes = needsCoat(res)
		yesLines = []string{"Yes, bring a coat.", "A coat, by all means."}
		noLines = []string{"No coat needed.", "The coat can stay on its hook."}
	case topicSunscreen:
		if category == adviceSunscreen {
			return ""
		}
		yes = needsSunscreen(res)
		yesLines = []string{"Yes, bring sunscreen.", "Sunscreen, by all means."}
		noLines = []string{"No sunscreen needed.", "Sunscreen would be wasted effort."}
	default:
		return ""
	}
	if yes {
		return pick(r, yesLines)
	}
	return pick(r, noLines)
}

// advice returns the advice sentences and their main category.
func advice(r *rng, topic string, res weather.Result) (string, string) {
	cat := adviceCategory(res)
	var parts []string
	if t := topicReply(r, topic, cat, res); t != "" {
		parts = append(parts, t)
	}
	parts = append(parts, pick(r, adviceLines[cat]))
	if (cat == adviceUmbrella || cat == adviceThunder) && needsCoat(res) {
		parts = append(parts, pick(r, []string{"And wear a coat; cold rain is the meanest kind.", "A coat too; wet and cold are old partners."}))
	}
	return strings.Join(parts, " "), cat
}

// finalAnswer fills an answer template from the tool result.
func finalAnswer(t answerTemplate, loc locChoice, date dateChoice, res weather.Result, adviceText, style string) string {
	wet := "rain"
	if res.TempC <= 1 {
		wet = "snow"
	}
	cond := condPhrase(res.Condition, style)
	itoa := strconv.Itoa
	return strings.NewReplacer(
		"{City}", loc.Place.City(),
		"{When}", title(date.Adverb),
		"{when}", date.Adverb,
		"{Cond}", title(cond),
		"{cond}", cond,
		"{tf}", itoa(res.TempF),
		"{tc}", itoa(res.TempC),
		"{hi}", itoa(res.HighC),
		"{lo}", itoa(res.LowC),
		"{rain}", itoa(int(math.Round(res.PrecipChance*100))),
		"{wet}", wet,
		"{wind}", itoa(res.WindKph),
		"{hum}", itoa(res.Humidity),
		"{Advice}", adviceText,
	).Replace(t.Text)
}

// Answer styles (synth_tools' answer_style attribute).
const (
	// AnswerFull: °F with °C beside it ("19°F (-7°C)"), highs and lows in
	// °C as the tool reports them, and "windy weather".
	AnswerFull = "full"
	// AnswerSimple: what a small model copies reliably: °F alone (never
	// negative in the tool's range, where "(-7°C)" is the number a small
	// model most often gets wrong: it drops the sign), no highs or lows
	// (the tool gives those in °C only), no wind or humidity, the facts
	// before the advice (simpleTemplate), and every condition as the
	// tool's word before "skies" or alone ("windy skies", not "windy
	// weather", which a small model rewrites into "wind-chill skies").
	AnswerSimple = "simple"
)

// AnswerStyles lists the valid styles.
var AnswerStyles = []string{AnswerFull, AnswerSimple}

// answerTemplates returns the answer templates for a style: all of them
// for AnswerFull; for AnswerSimple, with " ({tc}°C)" cut, those whose
// facts a small model copies in one run (see simpleTemplate).
func answerTemplates(style string) []answerTemplate {
	if style != AnswerSimple {
		return answers
	}
	var out []answerTemplate
	for _, t := range answers {
		text := strings.ReplaceAll(t.Text, " ({tc}°C)", "")
		if simpleTemplate(text) {
			out = append(out, answerTemplate{t.ID, text})
		}
	}
	return out
}

// simpleTemplate reports whether a template (°C cut) is one of
// AnswerSimple's: it opens with the facts, not the advice, and states no
// number besides {tf} and {rain}: no °C, no high or low, no wind or
// humidity. A 135M model that read "with winds of 14 km/h" in some answers
// wrote the wind in place of the temperature, and one that read answers
// opening with advice drifted into advice and never stated the facts. Nor
// does it open "The sky over {City}", which such a model ran into the
// umbrella advice's "the sky has been saving up" and lost the facts.
func simpleTemplate(text string) bool {
	for _, field := range []string{"{tc}", "{hi}", "{lo}", "{wind}", "{hum}"} {
		if strings.Contains(text, field) {
			return false
		}
	}
	return !strings.HasPrefix(text, "{Advice}") && !strings.HasPrefix(text, "The sky over")
}
