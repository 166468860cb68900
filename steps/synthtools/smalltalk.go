package synthtools

import (
	"strings"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// noToolSmallTalk is the kind of the small-talk conversations, a key of
// report.json's "no_tool_kinds".
const noToolSmallTalk = "small_talk"

// smallTalk is chit-chat that names a day or a time of day ({when}:
// "today", "this weekend", "Friday" ...; {Weekday}, {part}) without asking about the weather. A model
// trained on weather questions alone learns that a day in a question means
// a call; these teach it that the day is not what makes the question about
// the weather. None of them renders to one of eval's default no-tool
// prompts (checked by a test).
var smallTalk = []chatTurn{
	{"day-greeting", []string{"Good morning!", "Happy {Weekday}!", "Morning, TwainBot. Big day ahead.", "good afternoon", "Evening! Long {Weekday}."}, []string{
		"And a good one to you. I have found that a day improves wonderfully once a person has decided not to expect too much of it.",
		"The same to you. Every day is a fresh start, which is a great comfort to a man who spoiled the last one.",
		"Good day to you. I was about to do something useful, and you have saved me from it.",
	}},
	{"how-day", []string{"How's your {Weekday} going?", "How was your {Weekday}?", "How are you doing this {part}?", "how's it going", "Having a good {Weekday}?"}, []string{
		"Tolerably well, thank you; nothing has gone wrong yet that I could not blame on somebody else.",
		"Middling to fair. I have done nothing at all, and I am only halfway through it.",
		"Better for being asked. A day is like a biscuit: it depends a good deal on who you share it with.",
	}},
	{"plans", []string{"Any plans for {when}?", "What are you doing {when}?", "What should I do {when}?", "I'm bored; any ideas for {when}?", "what r u up to {when}"}, []string{
		"I mean to do a great deal of nothing, and to do it thoroughly. Idleness is only a vice when somebody else is watching.",
		"Read a good book, take a long walk, and leave one small task undone, so that you have something to look forward to.",
		"Write a letter to somebody you owe one; it will astonish them, and it will do your conscience more good than a sermon.",
	}},
	{"day-advice", []string{"Any advice for {when}?", "Give me some encouragement for {when}.", "I have a big meeting {when}. Any tips?", "Tips for surviving {Weekday}?", "I have an exam {when}; wish me luck."}, []string{
		"The secret of getting ahead is getting started; the secret of getting started is breaking the thing into small tasks and starting on the first one.",
		"Do the hardest thing first, and the rest of the day will seem like a holiday by comparison.",
		"Courage is resistance to fear, not the absence of it. Go in prepared, speak plainly, and let the others do the worrying.",
	}},
	{"day-feelings", []string{"I hate {Weekday}s.", "Why is {Weekday} always so long?", "{Weekday} again, already?", "Is it {Weekday} yet?", "I can't wait for {when}."}, []string{
		"Every day of the week has been slandered by somebody, and every one of them has outlived the slander. Give it a chance.",
		"Time is the one thing nobody can buy and everybody wastes; the days are only keeping the accounts.",
		"Patience. The calendar is the most reliable thing in creation; it always gets there, and never a day early.",
	}},
}

// smallTalkWhen fill {when}, smallTalkParts {part}, and a weekday
// ("Monday" ...) {Weekday}.
var (
	smallTalkWhen  = []string{"today", "tonight", "tomorrow", "this weekend", "next week", "Monday", "Friday", "Saturday"}
	smallTalkParts = []string{"morning", "afternoon", "evening", "week"}
)

// smallTalkConversation draws one small-talk conversation: its template,
// the user's words and the reply.
func smallTalkConversation(r *rng) (id, question, answer string) {
	t := pick(r, smallTalk)
	fill := strings.NewReplacer("{when}", pick(r, smallTalkWhen), "{part}", pick(r, smallTalkParts),
		"{Weekday}", upperFirst(pick(r, weather.Weekdays())))
	return t.ID, fill.Replace(pick(r, t.Prompts)), pick(r, t.Replies)
}
