package weather

import (
	"strings"
	"sync"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Place is a location the tool knows by name, with the aliases users write
// for it and a typical daytime temperature that the mock's numbers vary
// around.
type Place struct {
	// Name is the canonical name, e.g. "San Francisco, CA" or
	// "Paris, France". Calls should use it as their location.
	Name string
	// Region is "us" for United States places and "world" otherwise.
	Region string
	// Aliases are other ways to name the place ("SF", "San Fran", "Frisco").
	// The part of Name before the comma and, for US places, "City, State"
	// with the state spelled out are aliases too without being listed.
	Aliases []string
	// MeanC is a typical daytime temperature in °C.
	MeanC int
}

// City returns the part of the canonical name before the first comma
// ("San Francisco" for "San Francisco, CA").
func (p Place) City() string {
	city, _, _ := strings.Cut(p.Name, ",")
	return city
}

var usStates = map[string]string{
	"AK": "Alaska", "AZ": "Arizona", "CA": "California", "CO": "Colorado", "CT": "Connecticut",
	"DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "IL": "Illinois",
	"LA": "Louisiana", "MA": "Massachusetts", "MD": "Maryland", "MI": "Michigan", "MN": "Minnesota",
	"MO": "Missouri", "NV": "Nevada", "NY": "New York", "OH": "Ohio", "OR": "Oregon",
	"PA": "Pennsylvania", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "WA": "Washington",
}

var places = []Place{
	// United States.
	{Name: "San Francisco, CA", Region: "us", Aliases: []string{"SF", "San Fran", "Frisco", "the City by the Bay"}, MeanC: 16},
	{Name: "New York, NY", Region: "us", Aliases: []string{"NYC", "NY", "New York City", "the Big Apple", "Manhattan"}, MeanC: 14},
	{Name: "Los Angeles, CA", Region: "us", Aliases: []string{"LA", "L.A.", "the City of Angels"}, MeanC: 21},
	{Name: "New Orleans, LA", Region: "us", Aliases: []string{"NOLA", "the Big Easy", "N'awlins"}, MeanC: 24},
	{Name: "Washington, DC", Region: "us", Aliases: []string{"DC", "D.C.", "Washington DC", "Washington, D.C."}, MeanC: 16},
	{Name: "Philadelphia, PA", Region: "us", Aliases: []string{"Philly"}, MeanC: 15},
	{Name: "Chicago, IL", Region: "us", Aliases: []string{"Chi-town", "Chitown", "the Windy City"}, MeanC: 11},
	{Name: "Boston, MA", Region: "us", Aliases: []string{"Beantown"}, MeanC: 12},
	{Name: "Seattle, WA", Region: "us", Aliases: []string{"the Emerald City"}, MeanC: 12},
	{Name: "Portland, OR", Region: "us", Aliases: []string{"PDX"}, MeanC: 13},
	{Name: "Las Vegas, NV", Region: "us", Aliases: []string{"Vegas", "Sin City"}, MeanC: 25},
	{Name: "Atlanta, GA", Region: "us", Aliases: []string{"ATL", "Hotlanta"}, MeanC: 19},
	{Name: "Miami, FL", Region: "us", Aliases: []string{"the Magic City"}, MeanC: 27},
	{Name: "Austin, TX", Region: "us", Aliases: []string{"ATX"}, MeanC: 23},
	{Name: "Houston, TX", Region: "us", Aliases: []string{"H-Town", "HTX"}, MeanC: 24},
	{Name: "Denver, CO", Region: "us", Aliases: []string{"the Mile High City"}, MeanC: 12},
	{Name: "Phoenix, AZ", Region: "us", Aliases: []string{"PHX"}, MeanC: 28},
	{Name: "St. Louis, MO", Region: "us", Aliases: []string{"STL", "Saint Louis"}, MeanC: 15},
	{Name: "Kansas City, MO", Region: "us", Aliases: []string{"KC", "KCMO"}, MeanC: 14},
	{Name: "Hannibal, MO", Region: "us", MeanC: 14},
	{Name: "Hartford, CT", Region: "us", MeanC: 12},
	{Name: "Elmira, NY", Region: "us", MeanC: 10},
	{Name: "Virginia City, NV", Region: "us", MeanC: 11},
	{Name: "Sacramento, CA", Region: "us", Aliases: []string{"Sac", "Sactown"}, MeanC: 18},
	{Name: "San Diego, CA", Region: "us", Aliases: []string{"SD", "San Dog"}, MeanC: 19},
	{Name: "Salt Lake City, UT", Region: "us", Aliases: []string{"SLC", "Salt Lake"}, MeanC: 13},
	{Name: "Minneapolis, MN", Region: "us", Aliases: []string{"MSP", "the Twin Cities"}, MeanC: 8},
	{Name: "Detroit, MI", Region: "us", Aliases: []string{"the Motor City", "Motown"}, MeanC: 10},
	{Name: "Cleveland, OH", Region: "us", Aliases: []string{"CLE"}, MeanC: 11},
	{Name: "Honolulu, HI", Region: "us", Aliases: []string{"HNL"}, MeanC: 27},
	{Name: "Anchorage, AK", Region: "us", Aliases: []string{"ANC"}, MeanC: 3},
	{Name: "Memphis, TN", Region: "us", MeanC: 18},
	{Name: "Nashville, TN", Region: "us", Aliases: []string{"Music City", "Nashvegas"}, MeanC: 17},
	{Name: "Baltimore, MD", Region: "us", Aliases: []string{"Bmore", "Charm City"}, MeanC: 14},
	// The rest of the world.
	{Name: "London, UK", Region: "world", Aliases: []string{"London, England", "London, United Kingdom"}, MeanC: 12},
	{Name: "Edinburgh, UK", Region: "world", Aliases: []string{"Edinburgh, Scotland", "Auld Reekie"}, MeanC: 9},
	{Name: "Dublin, Ireland", Region: "world", MeanC: 10},
	{Name: "Paris, France", Region: "world", Aliases: []string{"the City of Light"}, MeanC: 13},
	{Name: "Berlin, Germany", Region: "world", MeanC: 10},
	{Name: "Heidelberg, Germany", Region: "world", MeanC: 11},
	{Name: "Rome, Italy", Region: "world", Aliases: []string{"the Eternal City"}, MeanC: 17},
	{Name: "Venice, Italy", Region: "world", Aliases: []string{"Venezia"}, MeanC: 14},
	{Name: "Madrid, Spain", Region: "world", MeanC: 16},
	{Name: "Lisbon, Portugal", Region: "world", Aliases: []string{"Lisboa"}, MeanC: 18},
	{Name: "Amsterdam, Netherlands", Region: "world", Aliases: []string{"Amsterdam, Holland", "the Dam"}, MeanC: 10},
	{Name: "Vienna, Austria", Region: "world", Aliases: []string{"Wien"}, MeanC: 11},
	{Name: "Zürich, Switzerland", Region: "world", MeanC: 10},
	{Name: "Stockholm, Sweden", Region: "world", MeanC: 7},
	{Name: "Oslo, Norway", Region: "world", MeanC: 6},
	{Name: "Reykjavík, Iceland", Region: "world", MeanC: 5},
	{Name: "Moscow, Russia", Region: "world", Aliases: []string{"Moskva"}, MeanC: 6},
	{Name: "Istanbul, Türkiye", Region: "world", Aliases: []string{"Istanbul, Turkey", "Constantinople"}, MeanC: 15},
	{Name: "Jerusalem, Israel", Region: "world", MeanC: 18},
	{Name: "Cairo, Egypt", Region: "world", MeanC: 23},
	{Name: "Marrakesh, Morocco", Region: "world", Aliases: []string{"Marrakech"}, MeanC: 20},
	{Name: "Cape Town, South Africa", Region: "world", Aliases: []string{"CPT", "the Mother City"}, MeanC: 17},
	{Name: "Nairobi, Kenya", Region: "world", MeanC: 19},
	{Name: "Lagos, Nigeria", Region: "world", MeanC: 27},
	{Name: "Dubai, UAE", Region: "world", Aliases: []string{"Dubai, United Arab Emirates"}, MeanC: 29},
	{Name: "Mumbai, India", Region: "world", Aliases: []string{"Bombay"}, MeanC: 28},
	{Name: "New Delhi, India", Region: "world", Aliases: []string{"Delhi"}, MeanC: 25},
	{Name: "Bangkok, Thailand", Region: "world", Aliases: []string{"BKK", "Krung Thep"}, MeanC: 29},
	{Name: "Singapore", Region: "world", Aliases: []string{"SG", "the Lion City"}, MeanC: 28},
	{Name: "Hong Kong", Region: "world", Aliases: []string{"HK", "HKG"}, MeanC: 23},
	{Name: "Beijing, China", Region: "world", Aliases: []string{"Peking"}, MeanC: 13},
	{Name: "Shanghai, China", Region: "world", MeanC: 17},
	{Name: "Seoul, South Korea", Region: "world", MeanC: 13},
	{Name: "Tokyo, Japan", Region: "world", MeanC: 16},
	{Name: "Sydney, Australia", Region: "world", Aliases: []string{"Syd"}, MeanC: 18},
	{Name: "Melbourne, Australia", Region: "world", Aliases: []string{"Melb"}, MeanC: 15},
	{Name: "Auckland, New Zealand", Region: "world", Aliases: []string{"Auckland, NZ", "AKL"}, MeanC: 15},
	{Name: "Toronto, Canada", Region: "world", Aliases: []string{"Toronto, ON", "the Six", "T.O."}, MeanC: 9},
	{Name: "Montreal, Canada", Region: "world", Aliases: []string{"Montreal, QC", "MTL"}, MeanC: 7},
	{Name: "Vancouver, Canada", Region: "world", Aliases: []string{"Vancouver, BC", "Van City"}, MeanC: 11},
	{Name: "Mexico City, Mexico", Region: "world", Aliases: []string{"CDMX", "Ciudad de México"}, MeanC: 17},
	{Name: "Havana, Cuba", Region: "world", Aliases: []string{"La Habana"}, MeanC: 26},
	{Name: "Hamilton, Bermuda", Region: "world", Aliases: []string{"Bermuda"}, MeanC: 22},
	{Name: "Rio de Janeiro, Brazil", Region: "world", Aliases: []string{"Rio"}, MeanC: 24},
	{Name: "São Paulo, Brazil", Region: "world", Aliases: []string{"SP", "Sampa"}, MeanC: 20},
	{Name: "Buenos Aires, Argentina", Region: "world", Aliases: []string{"BA", "Baires"}, MeanC: 18},
	{Name: "Lima, Peru", Region: "world", MeanC: 19},
}

// placeIndex maps LocationKey of every name and alias to its place.
var placeIndex = sync.OnceValue(func() map[string]int {
	idx := map[string]int{}
	add := func(name string, i int) {
		k := LocationKey(name)
		if j, dup := idx[k]; dup && j != i {
			panic("weather: alias " + name + " names both " + places[j].Name + " and " + places[i].Name)
		}
		idx[k] = i
	}
	for i, p := range places {
		add(p.Name, i)
		add(p.City(), i)
		if _, st, ok := strings.Cut(p.Name, ", "); ok && p.Region == "us" {
			add(p.City()+", "+usStates[st], i)
		}
		for _, a := range p.Aliases {
			add(a, i)
		}
	}
	return idx
})

// Places returns the built-in places in a fixed order (a copy).
func Places() []Place {
	out := make([]Place, len(places))
	copy(out, places)
	for i := range out {
		out[i].Aliases = append([]string(nil), places[i].Aliases...)
	}
	return out
}

// LookupPlace returns the built-in place that location names (by canonical
// name, city, "City, State" or alias, compared by LocationKey).
func LookupPlace(location string) (Place, bool) {
	i, ok := placeIndex()[LocationKey(location)]
	if !ok {
		return Place{}, false
	}
	return places[i], true
}

// CanonicalLocation maps a location as a user or model writes it to its
// canonical form: the canonical name of a built-in place when location is
// one of its names or aliases ("SF", "san francisco", "San Francisco,
// California" → "San Francisco, CA"), otherwise location with its
// whitespace trimmed and collapsed to single spaces.
func CanonicalLocation(location string) string {
	if p, ok := LookupPlace(location); ok {
		return p.Name
	}
	return strings.Join(strings.Fields(location), " ")
}

// LocationKey is the comparison key of a location string: diacritics
// removed (São → Sao), lower-cased, periods and apostrophes dropped, a
// leading "the " dropped, spaces around commas normalised to ", ", and
// whitespace collapsed. Two locations are the same place when the keys of
// their canonical forms are equal.
func LocationKey(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == '.' || r == '\'' || r == '’':
		case r == ',':
			b.WriteString(" , ")
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	k := strings.Join(strings.Fields(b.String()), " ")
	k = strings.ReplaceAll(k, " ,", ",")
	k = strings.TrimPrefix(k, "the ")
	return k
}
