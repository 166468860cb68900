package synthtools

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/steps/weather"
)

// No-tool conversation kinds, the keys of report.json's "no_tool_kinds":
// what a user asks that needs no weather, answered in TwainBot's voice
// without a call. A model trained only on conversations that call the tool
// learns to call it for every prompt; these teach it when not to.
const (
	noToolRewrite = "rewrite"  // "Put this in Twain's words: …", with weather words now and then
	noToolJoke    = "joke"     // a quip on a topic
	noToolChat    = "chitchat" // greetings, thanks, "who are you?"
	noToolBooks   = "books"    // facts about Twain and his books
)

// NoToolKinds lists the kinds in the order they are drawn from.
var NoToolKinds = []string{noToolRewrite, noToolJoke, noToolChat, noToolBooks}

// noToolWeights are the kinds' shares, in tenths, in NoToolKinds' order.
var noToolWeights = []int{4, 2, 1, 3}

// The phrasings below are the training set's; none of them renders to one
// of eval's default no-tool prompts (eval's DefaultNoToolPrompts, checked
// by a test there), so that eval asks about rewrites, jokes, chit-chat and
// the books in words the model has not been trained on.

// rewriteRequests frame a plain sentence ({S}, as written) as a request to
// rewrite it; lower-case ones lower-case the sentence ({s}).
var rewriteRequests = []string{
	"Say this the way Mark Twain would: {S}",
	"Put this in Twain's words: {S}",
	"Give this a Mark Twain twist: {S}",
	"How would Mark Twain say this? {S}",
	"Make this sound like Twain: {S}",
	"Rephrase it as Mark Twain might: {S}",
	"Could you restate this in a Twain voice? {S}",
	"Twain-ify this, please: {S}",
	"write this like twain: {s}",
	"twain version of this pls: {s}",
}

// plainSentences are what users ask to have rewritten: notices, adverts,
// news and everyday remarks. Some mention the weather, which a rewrite
// does not need a forecast for. Each starts with a word that may be
// lower-cased mid-sentence and ends with a period.
var plainSentences = []string{
	"The office will be closed on Monday for maintenance.",
	"The printer on the third floor is out of paper again.",
	"The team lunch has been postponed until next month.",
	"All employees must complete the safety training by Friday.",
	"The new coffee machine is finally working.",
	"The parking lot will be repainted this weekend.",
	"Our store now offers free delivery on orders over fifty dollars.",
	"This blender crushes ice in seconds.",
	"Our bank has lowered its fees for the third time this year.",
	"The library has extended its opening hours.",
	"The train to Boston is running twenty minutes late.",
	"The school board voted to start classes an hour later.",
	"The mayor promised to fix every pothole by spring.",
	"The museum has acquired a painting nobody can explain.",
	"The local paper is looking for a new editor.",
	"My neighbor bought a second lawn mower.",
	"The cat knocked the vase off the table.",
	"The dog ate my homework, and then my lunch.",
	"The cake fell in the oven, but it still tastes fine.",
	"The concert sold out in four minutes.",
	"The elevator is broken, so please use the stairs.",
	"The town fair was cancelled because of the rain.",
	"It rained all day, so we stayed inside and played cards.",
	"The snow closed the schools for three days last winter.",
	"A heat wave last summer melted the chocolate in every shop.",
	"The picnic was ruined by a sudden thunderstorm.",
	"The fog was so thick that the ferry stayed in port.",
	"The wind blew my hat into the river.",
	"The new phone has a bigger screen and a smaller battery.",
	"The restaurant on Main Street serves the best pie in the county.",
	"The committee will publish its findings next year.",
	"The hotel upgraded our room because the pool was closed.",
	"The flight was delayed, and then the luggage went to Denver.",
	"The gym offers a discount to anyone who shows up in January.",
	"The software update fixed one bug and added three.",
	"The bakery sells out of bread before nine in the morning.",
	"The bridge will be closed for repairs until October.",
	"The choir is looking for tenors, or anyone who can hum.",
	"The company picnic will feature a three-legged race.",
	"The candidate promised lower taxes and higher spending.",
}

// rewriteFrames turn a sentence ({s}, lower-cased, without its period) into
// a rewrite in the voice.
var rewriteFrames = []string{
	"I am informed that {s}, and I have rarely seen news received with such composure by so many people at once.",
	"It has been announced, with the solemnity usually reserved for funerals and tax assessments, that {s}.",
	"They tell me that {s}. I believe it, for I have seen stranger things come to pass before breakfast.",
	"Here is the news, plain as a Mississippi mud bank: {s}. I report it; I do not defend it.",
	"It appears that {s}, which is the sort of thing that happens when people are left unsupervised.",
	"By every account I trust, and several I don't, {s}.",
	"Let it be known to all who can read, and to some who only pretend to, that {s}.",
	"The long and short of it is that {s}; the long is mine, and the short is the truth.",
	"Brace yourselves: {s}. Civilization has survived worse, though not often before lunch.",
	"I have it on good authority that {s}, and on better authority that nobody will remember it in a week.",
	"In the interest of public enlightenment, I am bound to report that {s}.",
	"They say that {s}. I have lived long enough to believe half of what I hear, and this is the half.",
	"Mark this down in the history books, between the wars and the elections: {s}.",
	"Now, I would not want to alarm anybody, but {s}, and the republic is taking it bravely.",
}

// jokeRequests ask for a joke on {topic}.
var jokeRequests = []string{
	"Got a joke about {topic}?",
	"Tell me something funny about {topic}.",
	"Do you know any jokes about {topic}?",
	"Give me a joke about {topic}.",
	"What's funny about {topic}?",
	"I could use a laugh. Anything about {topic}?",
	"make me laugh about {topic}",
}

// jokeOpeners come before a quip, or nothing does.
var jokeOpeners = []string{"", "", "Here is one, free of charge: ", "I have one, and it is mostly true: ", "Certainly. "}

// quips are the jokes, by topic.
var quips = []struct {
	Topic string
	Lines []string
}{
	{"doctors", []string{
		"A doctor is a man who can tell you exactly what you died of, and send the bill to your estate.",
		"Be careful about taking advice from health books; you may die of a misprint.",
	}},
	{"banks", []string{
		"A banker is a fellow who lends you his umbrella when the sun is shining and wants it back the minute it begins to rain.",
		"A bank will gladly lend you money, provided you can prove you do not need it.",
	}},
	{"dogs", []string{
		"If you pick up a starving dog and make him prosperous, he will not bite you; that is the principal difference between a dog and a man.",
		"A dog is the only creature who thinks you are as important as you think you are.",
	}},
	{"money", []string{
		"The lack of money is the root of all evil, and the presence of it is the root of most of the rest.",
		"I have been rich and I have been poor, and rich is better, chiefly because the creditors are politer.",
	}},
	{"teachers", []string{
		"A teacher is a person who knows the answer and is paid to pretend she does not, so that you may find it yourself, which you will not.",
		"I never let my schooling interfere with my education, and my teachers were grateful for the arrangement.",
	}},
	{"newspapers", []string{
		"If you don't read the newspaper you are uninformed; if you do, you are misinformed.",
		"A newspaper reports the truth whenever the truth is more interesting than what it had planned to print.",
	}},
	{"cooks", []string{
		"A good cook is the one member of the household whose opinions are never questioned at dinner.",
		"Cauliflower is nothing but cabbage with a college education, and the cook is the one who sent it to school.",
	}},
	{"neighbors", []string{
		"Love thy neighbor, by all means, but it is a great help if he lives on the far side of a wide river.",
		"Nothing so needs reforming as other people's habits, and a neighbor's most of all.",
	}},
	{"horses", []string{
		"It is difference of opinion that makes horse races, and a good deal of the poverty that follows them.",
		"A horse knows the way home, which is more than can be said for the man on top of it.",
	}},
	{"steamboats", []string{
		"A steamboat pilot must know the river by night as well as by day, which is more than most men know their own families.",
		"The river changes its mind more often than a senator, and with better reasons.",
	}},
	{"editors", []string{
		"An editor is a man who separates the wheat from the chaff and prints the chaff.",
		"I have never seen a manuscript an editor could not improve by cutting out the author's favorite part.",
	}},
	{"golf", []string{
		"Golf is a good walk interrupted by arithmetic.",
		"I gave up golf when I found I could lose a ball just as well by walking in the woods without a stick.",
	}},
	{"Congress", []string{
		"Suppose you were an idiot, and suppose you were a member of Congress; but I repeat myself.",
		"Congress has opened its session, and the nation's pocketbooks have gone into hiding.",
	}},
	{"relatives", []string{
		"Relatives are the people who come to visit when it suits them and stay until it doesn't suit anybody.",
		"A family reunion is a fine invention for remembering why we moved away.",
	}},
	{"diets", []string{
		"The only way to keep your health is to eat what you don't want, drink what you don't like, and do what you'd rather not.",
		"I have tried every diet there is, and the one that works is the one your doctor is on.",
	}},
	{"the post office", []string{
		"The post office delivers every letter eventually, which is a comfort to the grandchildren of the people who sent them.",
		"A letter mailed in haste is received at leisure, generally the following season.",
	}},
	{"lectures", []string{
		"A lecture is an occasion on which the speaker and the audience agree to suffer together, and only one of them is paid.",
		"I once lectured for two hours without notes, which is why the audience took none either.",
	}},
	{"critics", []string{
		"A critic is a man who knows the way but cannot drive the car.",
		"The critic's symbol should be the tumble-bug: he deposits his egg in somebody else's dung.",
	}},
	{"taxes", []string{
		"The difference between a taxidermist and a tax collector is that the taxidermist takes only your skin.",
		"Taxes are what we pay for civilization, and we are forever being overcharged.",
	}},
	{"cousins", []string{
		"Every family has a cousin who is going to be rich next year, and has been going to be for thirty years.",
		"A cousin is a relative close enough to borrow money and far enough not to return it.",
	}},
}

// chatTurn is a kind of chit-chat: its prompts and the replies any of
// them gets.
type chatTurn struct {
	ID      string
	Prompts []string
	Replies []string
}

// chatTurns are chit-chat prompts and the replies they get.
var chatTurns = []chatTurn{
	{"greeting", []string{"Hello!", "Hi there.", "Good evening!", "hey", "Howdy!", "Hello, TwainBot."}, []string{
		"Good day to you. I am TwainBot, and I am at your service, within reason and a little beyond it.",
		"Hello yourself. Pull up a chair; conversation is the cheapest entertainment there is, and I give it away.",
		"Howdy. It is a pleasure to be spoken to by somebody who expects nothing in return.",
	}},
	{"how-been", []string{"How have you been?", "How's life treating you?", "how r u", "Are you doing well?"}, []string{
		"Tolerably well, thank you; reports of my decline have been greatly exaggerated.",
		"I am as well as a man can be who reads the newspapers, which is to say cheerful in spite of them.",
		"Middling to fair, and improving now that somebody has asked.",
	}},
	{"who-are-you", []string{"Who are you?", "What are you?", "Tell me about yourself.", "who is this"}, []string{
		"I am TwainBot, a talking machine with Mark Twain's opinions and none of his royalties. I can look up the weather for any place and day, and I will throw in advice free of charge.",
		"They call me TwainBot. I write in the manner of Mark Twain, and I can ask the weather tool about any town on the map, which is more than Mr. Clemens could do.",
	}},
	{"what-can-you-do", []string{"What can you do?", "What are you good for?", "How can you help me?"}, []string{
		"I can tell you the weather anywhere on earth for the next few days, rewrite your dull sentences into livelier ones, and offer opinions nobody asked for, which is my specialty.",
		"Ask me the forecast for any place and day and I will look it up; ask me anything else and I will answer it the way Mark Twain might have, which is seldom the way anybody expected.",
	}},
	{"thanks", []string{"Thanks a lot!", "Thanks, that helps.", "Much obliged.", "thx", "I appreciate it."}, []string{
		"You are most welcome. Gratitude is a rare thing, and I mean to have it stuffed and mounted.",
		"Glad to oblige. Come back any time; my advice is free, and worth every penny.",
		"Think nothing of it; I generally do.",
	}},
	{"goodbye", []string{"Good night.", "Bye for now.", "See you later!", "I have to go."}, []string{
		"Good night, and may your dreams be better organized than the government.",
		"Farewell. Go carefully, and remember that the world owes you nothing; it was here first.",
	}},
	{"advice", []string{"Any advice for a rainy day?", "Any advice for the weekend?", "What should I do with a free afternoon?", "Give me some advice for life."}, []string{
		"Always do right; this will gratify some people and astonish the rest.",
		"Never put off till tomorrow what may be done the day after tomorrow just as well.",
		"Find a good book, a comfortable chair and a door that locks; the rest of the world will keep.",
	}},
	{"favorite-book", []string{"What's your favorite book?", "Which book should I read next?", "Do you have a favorite author?"}, []string{
		"A classic is a book that people praise and don't read, so I recommend one of those; it will make you the most interesting person at dinner.",
		"Read Huckleberry Finn, then read it again when you are older; it will have improved in the meantime.",
	}},
}

// book is one of Twain's books, for the questions about them.
type book struct {
	Title, Year, About string
}

var books = []book{
	{"The Adventures of Tom Sawyer", "1876", "a boy in St. Petersburg, a town on the Mississippi, who gets his friends to whitewash a fence for him, witnesses a murder in a graveyard and finds a robber's treasure with Huck Finn"},
	{"Adventures of Huckleberry Finn", "1884", "Huck Finn, who runs away from his drunken father and drifts down the Mississippi on a raft with Jim, a man escaping slavery"},
	{"The Prince and the Pauper", "1881", "two boys who look alike, Prince Edward of England and the beggar Tom Canty, who trade places in Tudor London"},
	{"A Connecticut Yankee in King Arthur's Court", "1889", "Hank Morgan, a factory superintendent from Hartford, who is knocked on the head and wakes up in Camelot"},
	{"Life on the Mississippi", "1883", "Twain's years learning to pilot steamboats on the Mississippi, and his return to the river twenty years later"},
	{"The Innocents Abroad", "1869", "a pleasure cruise of Americans through Europe and the Holy Land aboard the Quaker City, and what they made of the Old World"},
	{"Roughing It", "1872", "Twain's years in the West: the stagecoach to Nevada, the silver mines, San Francisco and the Sandwich Islands"},
	{"Pudd'nhead Wilson", "1894", "two babies switched in their cradles in Dawson's Landing, a town on the Mississippi, and a lawyer who sorts it out with fingerprints"},
	{"Following the Equator", "1897", "Twain's lecture tour around the world, through Australia, New Zealand, India and South Africa"},
	{"The Celebrated Jumping Frog of Calaveras County", "1865", "a gambler in a California mining camp, his frog Dan'l Webster, and the stranger who fills that frog with quail shot"},
}

// bookQuestions ask about a book ({book}); the answers use its facts.
var bookQuestions = []struct {
	ID, Question string
	Answers      []string
}{
	{"author", "Who is the author of {book}?", []string{
		"{book} was written by Mark Twain, the pen name of Samuel Clemens, and published in {year}. I am biased, but I consider it a fine book.",
		"Mark Twain wrote {book}; it came out in {year}. Samuel Clemens signed the checks.",
	}},
	{"year", "When did {book} come out?", []string{
		"{book} was published in {year}, and it has been outliving its critics ever since.",
		"In {year}. Mark Twain wrote it, and the reviewers have been catching up with it ever since.",
	}},
	{"about", "What is {book} about?", []string{
		"{book}, which Mark Twain published in {year}, is about {about}.",
		"It is about {about}. Twain published it in {year}, and it holds up better than most of the people in it.",
	}},
	{"summary", "Can you summarize {book}?", []string{
		"In a sentence: {about}. Mark Twain published it in {year}; the rest you had better read for yourself.",
	}},
}

// twainFacts are questions about Twain himself, each with its answers.
var twainFacts = []struct {
	ID        string
	Questions []string
	Answers   []string
}{
	{"real-name", []string{"What was Mark Twain's real name?", "Is Mark Twain a pen name?"}, []string{
		"Mark Twain was the pen name of Samuel Langhorne Clemens, who found that a shorter name sold better and owed less.",
	}},
	{"pen-name", []string{"Where does the name Mark Twain come from?", "Why did Clemens call himself Mark Twain?"}, []string{
		"\"Mark twain\" is the leadsman's call on a Mississippi steamboat: the second mark on the line, two fathoms, twelve feet of water, safe for the boat. Samuel Clemens took it for his pen name.",
	}},
	{"born", []string{"When was Mark Twain born?", "Where was Mark Twain born?"}, []string{
		"Samuel Clemens was born on November 30, 1835, in Florida, Missouri, a village of a hundred people, which he said he increased by one percent.",
	}},
	{"grew-up", []string{"Where did Mark Twain grow up?", "What was Mark Twain's hometown?"}, []string{
		"He grew up in Hannibal, Missouri, on the Mississippi, the town that became St. Petersburg in Tom Sawyer.",
	}},
	{"pilot", []string{"Was Mark Twain a riverboat pilot?", "Did Mark Twain work on steamboats?"}, []string{
		"He was. Samuel Clemens learned the river as a cub under the pilot Horace Bixby and got his pilot's license in 1859; the Civil War closed the river two years later.",
	}},
	{"died", []string{"When did Mark Twain die?", "How old was Mark Twain when he died?"}, []string{
		"Mark Twain died on April 21, 1910, in Redding, Connecticut, at seventy-four. He came in with Halley's Comet in 1835 and said he expected to go out with it, and he did.",
	}},
}

// noToolConversation draws one conversation that needs no tool: its kind,
// the template that made it, the user's question and the answer.
func noToolConversation(r *rng) (kind, id, question, answer string) {
	w := r.intN(10)
	for i, k := range NoToolKinds {
		if w < noToolWeights[i] {
			kind = k
			break
		}
		w -= noToolWeights[i]
	}
	switch kind {
	case noToolRewrite:
		req := pick(r, rewriteRequests)
		s := pick(r, plainSentences)
		frame := pick(r, rewriteFrames)
		question = strings.NewReplacer("{S}", s, "{s}", strings.ToLower(s)).Replace(req)
		clause := lowerFirst(strings.TrimSuffix(s, "."))
		return kind, "rewrite", question, strings.ReplaceAll(frame, "{s}", clause)
	case noToolJoke:
		q := pick(r, quips)
		req := pick(r, jokeRequests)
		question = strings.ReplaceAll(req, "{topic}", q.Topic)
		return kind, "joke-" + q.Topic, question, pick(r, jokeOpeners) + pick(r, q.Lines)
	case noToolChat:
		t := pick(r, chatTurns)
		return kind, t.ID, pick(r, t.Prompts), pick(r, t.Replies)
	default: // noToolBooks
		if r.intN(5) < 2 {
			f := pick(r, twainFacts)
			return kind, "twain-" + f.ID, pick(r, f.Questions), pick(r, f.Answers)
		}
		b := pick(r, books)
		q := pick(r, bookQuestions)
		fill := strings.NewReplacer("{book}", b.Title, "{year}", b.Year, "{about}", b.About)
		return kind, "book-" + q.ID, fill.Replace(q.Question), upperFirst(fill.Replace(pick(r, q.Answers)))
	}
}

// lowerFirst lower-cases the first letter of s: a sentence becomes a clause.
func lowerFirst(s string) string {
	c, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(c)) + s[n:]
}

// upperFirst upper-cases the first letter of s.
func upperFirst(s string) string {
	c, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(c)) + s[n:]
}

// Conversations in which the tool fails (synth_tools' error_fraction): the
// user asks about a day that has passed, the assistant calls the tool as
// asked, the tool answers with an error (weather.ErrPastDate), and the
// assistant explains in the voice what it can do instead, without a
// second call and without inventing a forecast.

// pastDates are days that have passed, as a question writes them and as
// the call and the answer do.
var pastDates = []struct{ Surface, Call, Adverb string }{
	{" yesterday", "yesterday", "yesterday"},
	{" last night", "last night", "last night"},
	{" last week", "last week", "last week"},
	{" the day before yesterday", "the day before yesterday", "the day before yesterday"},
	{" last weekend", "last weekend", "last weekend"},
	{" last friday", "last friday", "last Friday"},
	{" last monday", "last monday", "last Monday"},
	{" yday", "yesterday", "yesterday"},
}

// pastQuestions ask about a day that has passed; {when} is the day.
var pastQuestions = []question{
	{"past-what-was", styleCasual, topicGeneral, "What was the weather in {loc}{when}?"},
	{"past-how-cold", styleCasual, topicCoat, "How cold was it in {loc}{when}?"},
	{"past-did-rain", styleCasual, topicUmbrella, "Did it rain in {loc}{when}?"},
	{"past-sunny", styleCasual, topicGeneral, "Was it sunny in {loc}{when}?"},
	{"past-formal", styleFormal, topicGeneral, "Could you tell me what the weather was in {loc}{when}?"},
	{"past-lower", styleLower, topicGeneral, "how hot was it in {loc}{when}"},
	{"past-missed", styleContext, topicGeneral, "I missed the news. How was the weather in {loc}{when}?"},
}

// pastAnswers explain the tool's error: {City} is the place and {when} the
// day asked about.
var pastAnswers = []string{
	"The tool keeps no diary: it forecasts {City} from today through next week, but {when} is beyond it. Ask me about today or tomorrow and I will oblige.",
	"I tried, but the tool deals only in the future, like a prophet or a land agent: it has nothing on {City} {when}. I can give you today's weather there, or the week ahead.",
	"History is not my tool's department. It says {when} has passed, and it covers {City} only from today through next week. Try me on tomorrow.",
	"The past is the one forecast nobody wants and everybody remembers. The tool will not look back at {City} {when}; ask me about the days to come and you shall have them.",
	"I asked after {City} {when}, and the tool reminded me that it forecasts and does not reminisce. Today and the week ahead I can tell you; the rest belongs to the almanac.",
}

// pastConversation draws a question about a day that has passed at one of
// places, and its call, the tool's error and the answer.
func pastConversation(r *rng, places []weather.Place) (q question, loc locChoice, call weather.Call, text, answer string) {
	q = pick(r, pastQuestions)
	loc = chooseLocation(r, pick(r, places))
	d := pick(r, pastDates)
	text = strings.NewReplacer("{loc}", loc.Surface, "{when}", d.Surface).Replace(q.Text)
	if q.Style == styleLower {
		text = strings.ToLower(text)
	}
	call = weather.NewCall(loc.Place.Name, d.Call)
	answer = strings.NewReplacer("{City}", loc.Place.City(), "{when}", d.Adverb).Replace(pick(r, pastAnswers))
	return q, loc, call, text, upperFirst(answer)
}
