package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestJinjaTemplate checks the twainbot template's Jinja text, and that
// every built-in template either converts or is refused with a reason.
// testdata/jinja_golden.json holds what Python's jinja2 rendered from the
// converted templates (testdata/jinja_ref.py); Render must agree.
func TestJinjaTemplate(t *testing.T) {
	tpl, err := Lookup(TwainBotName)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Jinja()
	if err != nil {
		t.Fatal(err)
	}
	want := `{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}` +
		`{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + '\n' }}` +
		`{% elif message['role'] == 'tool' %}{{ '<|tool|>\n' + message['content'] + '\n' }}` +
		`{% else %}{{ '<|user|>\n' + message['content'] + '\n' }}{% endif %}{% endfor %}` +
		`{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ '<|end|>' }}{% endif %}`
	if got != want {
		t.Errorf("twainbot:\n%s\nwant\n%s", got, want)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "jinja_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Conversations [][]Message `json:"conversations"`
		Templates     []struct {
			Name     string   `json:"name"`
			Template string   `json:"template"`
			Rendered []string `json:"rendered"` // per conversation: without, then with the generation prompt
		} `json:"templates"`
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Templates) < 3 {
		t.Fatalf("%d templates in the golden file", len(golden.Templates))
	}
	for _, g := range golden.Templates {
		tpl, err := Lookup(g.Name)
		if err != nil {
			t.Fatal(err)
		}
		j, err := tpl.Jinja()
		if err != nil || j != g.Template {
			t.Errorf("%s: the template changed since the golden file was written (rerun testdata/jinja_ref.py): %v", g.Name, err)
			continue
		}
		for i, msgs := range golden.Conversations {
			for k, gen := range []bool{false, true} {
				if r := tpl.Render(msgs, gen); r != g.Rendered[2*i+k] {
					t.Errorf("%s conversation %d gen=%v: Render\n%q\njinja2\n%q", g.Name, i, gen, r, g.Rendered[2*i+k])
				}
			}
		}
	}
	for _, name := range Names() {
		tpl, _ := Lookup(name)
		if _, err := tpl.Jinja(); err != nil && !tpl.SystemInFirstUser {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWriteTemplates writes the converted templates as JSON to the file
// named by MLBUILD_WRITE_TEMPLATES, for testdata/jinja_ref.py; without it
// the test does nothing.
func TestWriteTemplates(t *testing.T) {
	path := os.Getenv("MLBUILD_WRITE_TEMPLATES")
	if path == "" {
		t.Skip("MLBUILD_WRITE_TEMPLATES is not set (testdata/jinja_ref.py sets it)")
	}
	var list []map[string]string
	for _, name := range Names() {
		tpl, _ := Lookup(name)
		if j, err := tpl.Jinja(); err == nil {
			list = append(list, map[string]string{"name": name, "template": j})
		}
	}
	b, _ := json.MarshalIndent(list, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
