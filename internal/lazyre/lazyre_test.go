package lazyre

import "testing"

func TestCompilesOnFirstUse(t *testing.T) {
	r := New(`(\w+)@(\w+)`)
	if r.re != nil {
		t.Fatal("compiled before use")
	}
	if !r.MatchString("a@b") || r.FindStringSubmatch("x y@z")[2] != "z" || r.ReplaceAllString("a@b", "$2") != "b" {
		t.Fatal("wrong matches")
	}
	if r.re == nil || r.String() != `(\w+)@(\w+)` {
		t.Fatal("not compiled after use")
	}
}

func TestInvalidPatternPanicsOnUse(t *testing.T) {
	r := New(`(`)
	defer func() {
		if recover() == nil {
			t.Fatal("an invalid pattern did not panic")
		}
	}()
	r.MatchString("x")
}
