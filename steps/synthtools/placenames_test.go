package synthtools

import (
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/weather"
)

// TestPlacesAny: with places = "any" most questions name places the tool
// does not list, the call copies the place from the question, no held-out
// name is ever used, and the output is the same on every run.
func TestPlacesAny(t *testing.T) {
	if n := len(gazetteer()); n < 3000 {
		t.Fatalf("gazetteer has %d places, want thousands", n)
	}
	opts := Options{Count: 1500, Seed: 7, Places: PlacesAny}
	recs, rep, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	unlisted, distinct, diacritics, multiword := 0, map[string]bool{}, 0, 0
	for i, r := range recs {
		if again[i].Text != r.Text {
			t.Fatalf("record %d differs between two runs", i)
		}
		loc := r.Call.Location
		if _, listed := weather.LookupPlace(loc); listed {
			continue
		}
		unlisted++
		distinct[weather.LocationKey(loc)] = true
		city, _, _ := strings.Cut(loc, ",")
		if heldOutPlace(city) {
			t.Errorf("record %d names the held-out place %q", i, loc)
		}
		question := ""
		for _, m := range r.Messages {
			if m.Role == chat.RoleUser {
				question = m.Content
				break
			}
		}
		if !strings.Contains(question, loc) {
			t.Errorf("record %d: the call's location %q is not copied from the question %q", i, loc, question)
		}
		if strings.ContainsAny(loc, "áàåäéèëöóøüúíñÁÉÖÜÅ") || strings.ContainsFunc(loc, func(r rune) bool { return r > 0x7f }) {
			diacritics++
		}
		if strings.Contains(city, " ") {
			multiword++
		}
	}
	if unlisted != rep.UnlistedLocations || unlisted < 800 || unlisted > 1000 {
		t.Errorf("%d unlisted places (report: %d), want about 60%% of 1500", unlisted, rep.UnlistedLocations)
	}
	if len(distinct) < unlisted*9/10 {
		t.Errorf("only %d distinct unlisted places in %d questions", len(distinct), unlisted)
	}
	if diacritics < 30 || multiword < 100 {
		t.Errorf("%d places with diacritics, %d multi-word: want a varied set", diacritics, multiword)
	}
	if rep.Places != PlacesAny {
		t.Errorf("report places %q", rep.Places)
	}
}

// TestHeldOutPlacesExist: the held-out part of the unlisted names is about
// a fifth, and drawing from it gives only held-out names.
func TestHeldOutPlacesExist(t *testing.T) {
	held := 0
	for _, g := range gazetteer() {
		if heldOutPlace(g.Name) {
			held++
		}
	}
	if n := len(gazetteer()); held < n/7 || held > n/4 {
		t.Fatalf("%d of %d gazetteer names held out, want about a fifth", held, n)
	}
	r := newRNG(1)
	for range 300 {
		loc := unlistedLocation(r, true)
		city, _, _ := strings.Cut(loc.Surface, ",")
		if !heldOutPlace(city) {
			t.Fatalf("%q drawn from the held-out part is not held out", loc.Surface)
		}
		if _, listed := weather.LookupPlace(loc.Surface); listed {
			t.Fatalf("%q is a listed place", loc.Surface)
		}
	}
}

func TestCheckPlaces(t *testing.T) {
	if _, _, err := Generate(Options{Count: 1, Places: "everywhere"}); err == nil || !strings.Contains(err.Error(), `"listed"`) {
		t.Fatalf("err = %v", err)
	}
}
