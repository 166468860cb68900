package command_test

import (
	"path"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps/command"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// FuzzValidate validates configs built from fuzzed values of the scalar
// and list attributes (run, pass_env, network, sandbox, timeout): Validate
// must not panic and must return nil or a *steps.AttrError naming one of
// the schema's attributes.
func FuzzValidate(f *testing.F) {
	steptest.AddValidateSeeds(f, command.Kind{},
		map[string]cty.Value{"run": strs("python3", "count.py"), "timeout": cty.StringVal("2h"), "pass_env": strs("HF_TOKEN")},
		map[string]cty.Value{"run": strs("sh", "-c", "true"), "sandbox": cty.False, "network": cty.True})
	schema := command.Kind{}.Schema()
	f.Fuzz(func(t *testing.T, data []byte) {
		steptest.CheckValidate(t, command.Kind{}, steptest.FuzzOverrides(schema, data))
	})
}

// FuzzMaps builds the map-valued attributes (outputs, env, resources) from
// fuzzed text, "k=v" pairs separated by newlines: DeclareOutputs, Validate
// and Resources must not panic, and declared outputs must be clean,
// relative, distinct paths none of which holds another.
func FuzzMaps(f *testing.F) {
	f.Add("counts=counts.json\nmodel=model/", "LC_ALL=C\nPATH=/usr/bin", "cpus=2\nmemory=8GiB\ngpus=1")
	f.Add("a=../x\nb=/abs", "HOME=/root", "memory=lots")
	f.Add("a=m/\nb=m/x", "1=2", "cpu=1")
	f.Fuzz(func(t *testing.T, outputs, env, res string) {
		outs, err := command.Kind{}.DeclareOutputs(pairs(outputs))
		if err == nil {
			seen := map[string]bool{}
			for _, o := range outs {
				if o.Path == "" || path.IsAbs(o.Path) || path.Clean(o.Path) != o.Path || strings.HasPrefix(o.Path, "..") {
					t.Fatalf("declared an unclean output path %q", o.Path)
				}
				for p := range seen {
					if p == o.Path || strings.HasPrefix(o.Path, p+"/") || strings.HasPrefix(p, o.Path+"/") {
						t.Fatalf("overlapping outputs %q and %q", p, o.Path)
					}
				}
				seen[o.Path] = true
			}
		}
		over := map[string]cty.Value{"run": strs("true"), "env": pairs(env), "resources": pairs(res)}
		steptest.CheckValidate(t, command.Kind{}, over)
		_, _ = command.Kind{}.Resources(map[string]cty.Value{"resources": pairs(res)})
	})
}

// pairs turns "k=v" lines into an object of strings.
func pairs(s string) cty.Value {
	m := map[string]cty.Value{}
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[strings.ToValidUTF8(k, "?")] = cty.StringVal(strings.ToValidUTF8(v, "?"))
	}
	return cty.ObjectVal(m)
}
