package csvclean

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

func TestRegisteredAndSchema(t *testing.T) {
	k, ok := steps.Default.Lookup("csv_clean")
	if !ok {
		t.Fatal("csv_clean is not registered")
	}
	s := k.Schema()
	if s.Kind != "csv_clean" || s.Version != "2" || s.Doc == "" {
		t.Fatalf("schema header: %+v", s)
	}
	seen := map[string]bool{}
	for _, a := range s.Attributes {
		if a.Doc == "" {
			t.Errorf("attribute %s has no Doc", a.Name)
		}
		if seen[a.Name] {
			t.Errorf("attribute %s declared twice", a.Name)
		}
		seen[a.Name] = true
		if a.Default != cty.NilVal && !a.Default.Type().Equals(a.Type) {
			t.Errorf("attribute %s: default is %s, type is %s", a.Name, a.Default.Type().FriendlyName(), a.Type.FriendlyName())
		}
	}
	for _, n := range []string{"source", "columns", "min_words", "suffixes", "drop_urls", "case_insensitive_dedupe"} {
		if !seen[n] {
			t.Errorf("attribute %s missing", n)
		}
	}
	var outs []string
	for _, o := range s.Outputs {
		outs = append(outs, o.Name+"="+o.Path)
	}
	if want := []string{"output=clean.jsonl", "report=report.json"}; !reflect.DeepEqual(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
}

func TestRunQuotedFieldsAndHeader(t *testing.T) {
	csv := "\uFEFFid, Title ,other\r\n" +
		"1,\"Area Man, Who Has Commas, Wins Big\",x\r\n" +
		"2,\"Multi-Line\nTitle Spans\r\nThree Lines Of The File\",y\r\n" +
		"3,\"He Said \"\"No\"\" To The Whole Thing\",z\r\n" +
		"\r\n" +
		"4,<b>Rock &amp; Roll</b> Hall Of Fame Falls Apart,w\r\n"
	texts, rep, raw, err := runKind(t, []string{writeCSV(t, csv)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Area Man, Who Has Commas, Wins Big",
		"Multi-Line Title Spans Three Lines Of The File",
		`He Said "No" To The Whole Thing`,
		"Rock & Roll Hall Of Fame Falls Apart",
	}
	if !reflect.DeepEqual(texts, want) {
		t.Fatalf("texts:\n%q\nwant\n%q", texts, want)
	}
	if rep.RowsIn != 4 || rep.RowsOut != 4 {
		t.Errorf("rows in/out %d/%d", rep.RowsIn, rep.RowsOut)
	}
	if rep.Files[0].Columns[0] != "Title" {
		t.Errorf("column resolved to %q", rep.Files[0].Columns)
	}
	// Compact, not HTML-escaped JSON lines.
	if !bytes.HasPrefix(raw, []byte(`{"text":"Area Man, Who Has Commas, Wins Big"}`+"\n")) ||
		!bytes.Contains(raw, []byte(`{"text":"Rock & Roll Hall Of Fame Falls Apart"}`)) {
		t.Errorf("raw output:\n%s", raw)
	}
}

func TestRunDropsAndRepairs(t *testing.T) {
	csv := "title\n" +
		"Sorry Liberals But Gun Control Wonâ€™t Stop Jackie Chan\n" + // mojibake
		"Nobel Committee Awards Self Peace Prize - The Onion - America's Finest News Source\n" +
		"https://www.theonion.com/defiant-dallas-police-officer-1828942372\n" +
		"Empire Market Invite: http://empiremktxgjovhm.onion/ref/142\n" +
		"Drew Brees said WHAT?!\n" +
		"Wow\n" +
		"\u200b\u200b\n" +
		"Nobel Committee Awards Self Peace Prize\n" + // duplicate after suffix strip
		"NOBEL COMMITTEE AWARDS SELF PEACE PRIZE!\n" + // case-insensitive duplicate
		"\u200bBeyonce Pregnant With Twins Again\n" +
		"News: Area Man Reads Section Labels\n"
	texts, rep, _, err := runKind(t, []string{writeCSV(t, csv)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Sorry Liberals But Gun Control Won’t Stop Jackie Chan",
		"Nobel Committee Awards Self Peace Prize",
		"Beyonce Pregnant With Twins Again",
		"Area Man Reads Section Labels",
	}
	if !reflect.DeepEqual(texts, want) {
		t.Fatalf("texts:\n%q\nwant\n%q", texts, want)
	}
	wantDropped := map[string]int{dropMalformed: 0, dropEmpty: 1, dropURL: 2, dropSpam: 0, dropTooShort: 1, dropNotCapital: 0,
		dropPattern: 1, dropDuplicate: 1, dropDuplicateCI: 1}
	if !reflect.DeepEqual(rep.Dropped, wantDropped) {
		t.Errorf("dropped %v, want %v", rep.Dropped, wantDropped)
	}
	if rep.RowsIn != 11 || rep.RowsOut != 4 {
		t.Errorf("rows in/out %d/%d", rep.RowsIn, rep.RowsOut)
	}
	for fix, n := range map[string]int{fixMojibake: 1, fixSuffix: 1, fixZeroWidth: 2, fixPrefix: 1, fixEntities: 0} {
		if rep.Fixed[fix] != n {
			t.Errorf("fixed[%s] = %d, want %d", fix, rep.Fixed[fix], n)
		}
	}
	if ex := rep.Examples[dropDuplicate]; len(ex) != 1 || ex[0].Line != 9 || ex[0].Of != "in.csv:3" {
		t.Errorf("duplicate example %+v", ex)
	}

	// The same with the checks turned off.
	texts, rep, _, err = runKind(t, []string{writeCSV(t, csv)}, map[string]cty.Value{
		"min_words": cty.NumberIntVal(0), "drop_urls": cty.False, "case_insensitive_dedupe": cty.False,
		"drop_patterns": cty.ListValEmpty(cty.String), "suffixes": cty.ListValEmpty(cty.String),
		"prefixes": cty.ListValEmpty(cty.String),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RowsOut != 10 || rep.Dropped[dropEmpty] != 1 || len(texts) != 10 {
		t.Errorf("unfiltered: %d out, dropped %v", rep.RowsOut, rep.Dropped)
	}
}

func TestRunColumnsAndFiles(t *testing.T) {
	a := writeCSV(t, "title,body\nArea Man Wins,\"Big, Very Big\"\nOnly Title Here Today,\n")
	b := writeCSV(t, "TITLE,Body\nArea Man Wins,\"Big, Very Big\"\nSecond File Has New Row,Indeed\n")
	texts, rep, _, err := runKind(t, []string{a, b}, map[string]cty.Value{
		"columns": cty.ListVal([]cty.Value{cty.StringVal("title"), cty.StringVal("body")}),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Area Man Wins Big, Very Big", "Only Title Here Today", "Second File Has New Row Indeed"}
	if !reflect.DeepEqual(texts, want) {
		t.Fatalf("texts %q, want %q", texts, want)
	}
	if len(rep.Files) != 2 || rep.Files[1].RowsIn != 2 || rep.Files[1].RowsOut != 1 || rep.Files[1].Dropped[dropDuplicate] != 1 {
		t.Errorf("files %+v", rep.Files)
	}
	if !reflect.DeepEqual(rep.Files[1].Columns, []string{"TITLE", "Body"}) {
		t.Errorf("columns %v", rep.Files[1].Columns)
	}

	// column is shorthand for columns = [column].
	texts, _, _, err = runKind(t, []string{a}, map[string]cty.Value{"column": cty.StringVal("body"), "min_words": cty.NumberIntVal(1)})
	if err != nil || !reflect.DeepEqual(texts, []string{"Big, Very Big"}) {
		t.Errorf("column = body: %q, %v", texts, err)
	}
	_, _, _, err = runKind(t, []string{a}, map[string]cty.Value{"column": cty.StringVal("body"),
		"columns": cty.ListVal([]cty.Value{cty.StringVal("title"), cty.StringVal("body")})})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("column and columns: %v", err)
	}
}

func TestRunMinCapitalized(t *testing.T) {
	p := writeCSV(t, "title\nArea Man Accepts Burden Of Being Right\nam i doing this right\nMiracle Of Birth Occurs for 83 Billionth Time\n")
	texts, rep, _, err := runKind(t, []string{p}, map[string]cty.Value{"min_capitalized": cty.NumberFloatVal(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != 2 || rep.Dropped[dropNotCapital] != 1 {
		t.Errorf("texts %q, dropped %v", texts, rep.Dropped)
	}
}

func TestRunCP1252File(t *testing.T) {
	p := writeCSV(t, "title\nCaf\xe9 Owner Can\x92t Believe It Either\nControl\x01 Chars\x81 Are Gone Now\n")
	texts, rep, _, err := runKind(t, []string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Café Owner Can’t Believe It Either", "Control Chars Are Gone Now"}
	if !reflect.DeepEqual(texts, want) {
		t.Errorf("texts %q, want %q", texts, want)
	}
	if rep.Fixed[fixCP1252] != 2 || rep.Fixed[fixControl] != 1 || rep.Fixed[fixBrokenUTF8] != 1 {
		t.Errorf("fixed %v", rep.Fixed)
	}
}

func TestRunErrors(t *testing.T) {
	cases := []struct {
		name, csv string
		over      map[string]cty.Value
		want      []string
	}{
		{"missing column", "id,headline\n1,x\n", nil,
			[]string{"csv_clean.test: in.csv:1:", `no column "title"`, `"id", "headline"`}},
		{"empty file", "", nil, []string{"in.csv", "empty", "header"}},
		{"bare quote", "id,title\n1,ok\n2,Area \"Man\" Wins\n", nil,
			[]string{"in.csv:3:", "malformed CSV", "bare"}},
		{"unterminated quote", "id,title\n1,\"Area Man\n2,x\n", nil,
			[]string{"in.csv:", "malformed CSV", "started on line 2"}},
		{"field count", "id,title\n1,Area Man Wins Big\n2,Area,Man,Wins\n", nil,
			[]string{"in.csv:3:", "4 fields", "header has 2", "skip_malformed"}},
		{"ambiguous column", "title,Title\nx,y\n", map[string]cty.Value{"columns": cty.ListVal([]cty.Value{cty.StringVal("TITLE")})},
			[]string{"ambiguous"}},
		{"bad pattern", "title\nx\n", map[string]cty.Value{"drop_patterns": cty.ListVal([]cty.Value{cty.StringVal("(")})},
			[]string{`attribute "drop_patterns": element 0 ("("): error parsing regexp`}},
		{"bad min_words", "title\nx\n", map[string]cty.Value{"min_words": cty.NumberFloatVal(2.5)},
			[]string{"min_words", "whole number"}},
		{"bad min_capitalized", "title\nx\n", map[string]cty.Value{"min_capitalized": cty.NumberIntVal(2)},
			[]string{"min_capitalized"}},
		{"duplicate column", "title\nx\n", map[string]cty.Value{"columns": cty.ListVal([]cty.Value{cty.StringVal("title"), cty.StringVal("title")})},
			[]string{"listed twice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := runKind(t, []string{writeCSV(t, c.csv)}, c.over)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRunSkipMalformed(t *testing.T) {
	p := writeCSV(t, "id,title\n1,Area Man Wins Big Today\n2,Area,Man,Wins\n3,Another Fine Headline Here\n")
	texts, rep, _, err := runKind(t, []string{p}, map[string]cty.Value{"skip_malformed": cty.True})
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != 2 || rep.Dropped[dropMalformed] != 1 || rep.Examples[dropMalformed][0].Line != 3 {
		t.Errorf("texts %q, report %+v", texts, rep)
	}
}

func TestRunHeaderOnly(t *testing.T) {
	texts, rep, raw, err := runKind(t, []string{writeCSV(t, "title\n")}, nil)
	if err != nil || len(texts) != 0 || len(raw) != 0 || rep.RowsIn != 0 {
		t.Errorf("header only: %q %+v %v", texts, rep, err)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inv := &steps.Invocation{Step: "csv_clean.test", Config: defaultConfig(), OutDir: t.TempDir(),
		Inputs: map[string][]steps.InputFile{"source": {{Path: writeCSV(t, "title\nArea Man Wins Big Prize\n"), Name: "in.csv"}}}}
	err := (Kind{}).Run(ctx, inv)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

func TestRunDeterministic(t *testing.T) {
	var b strings.Builder
	b.WriteString("title\n")
	for i := 0; i < 3000; i++ {
		b.WriteString("Area Man Number ")
		b.WriteString(strings.Repeat("X", i%7))
		b.WriteString(" Wins &amp; Loses Again\n")
	}
	p := writeCSV(t, b.String())
	_, _, raw1, err1 := runKind(t, []string{p}, nil)
	_, _, raw2, err2 := runKind(t, []string{p}, nil)
	if err1 != nil || err2 != nil || !bytes.Equal(raw1, raw2) {
		t.Errorf("runs differ (%v, %v)", err1, err2)
	}
	if n := bytes.Count(raw1, []byte("\n")); n != 7 {
		t.Errorf("%d lines, want 7", n)
	}
}
