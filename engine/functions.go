package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the functions available in pipeline expressions. Paths
// given to file() and glob() are relative to the pipeline's directory.
// What file(), fileexists() and glob() find is recorded in reads (which
// may be nil).
func functions(baseDir string, reads *loadReads) map[string]function.Function {
	return map[string]function.Function{
		// files
		"file":       fileFunc(baseDir, reads),
		"fileexists": fileExistsFunc(baseDir, reads),
		"glob":       globFunc(baseDir, reads),
		// strings
		"upper": stdlib.UpperFunc, "lower": stdlib.LowerFunc, "title": stdlib.TitleFunc,
		"trimspace": stdlib.TrimSpaceFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc, "chomp": stdlib.ChompFunc, "indent": stdlib.IndentFunc,
		"join": stdlib.JoinFunc, "split": stdlib.SplitFunc, "replace": stdlib.ReplaceFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "regex_replace": stdlib.RegexReplaceFunc,
		"strlen": stdlib.StrlenFunc, "substr": stdlib.SubstrFunc, "strrev": stdlib.ReverseFunc,
		"format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		// collections
		"length": stdlib.LengthFunc, "element": stdlib.ElementFunc, "concat": stdlib.ConcatFunc,
		"flatten": stdlib.FlattenFunc, "distinct": stdlib.DistinctFunc, "contains": stdlib.ContainsFunc,
		"index": stdlib.IndexFunc, "keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc,
		"lookup": stdlib.LookupFunc, "merge": stdlib.MergeFunc, "reverse": stdlib.ReverseListFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "zipmap": stdlib.ZipmapFunc,
		"compact": stdlib.CompactFunc, "chunklist": stdlib.ChunklistFunc, "range": stdlib.RangeFunc,
		"coalesce": stdlib.CoalesceFunc, "coalescelist": stdlib.CoalesceListFunc,
		"setunion": stdlib.SetUnionFunc, "setintersection": stdlib.SetIntersectionFunc,
		// numbers
		"min": stdlib.MinFunc, "max": stdlib.MaxFunc, "abs": stdlib.AbsoluteFunc,
		"ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc, "pow": stdlib.PowFunc,
		"log": stdlib.LogFunc, "signum": stdlib.SignumFunc, "parseint": stdlib.ParseIntFunc,
		// encoding and conversion
		"jsonencode": stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc, "csvdecode": stdlib.CSVDecodeFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"try":   tryfunc.TryFunc, "can": tryfunc.CanFunc,
	}
}

func resolve(baseDir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

func fileFunc(baseDir string, reads *loadReads) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 text file (relative to the pipeline) into a string.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			abs := resolve(baseDir, p)
			reads.file(abs)
			b, err := os.ReadFile(abs)
			if err != nil {
				return cty.NilVal, fmt.Errorf("cannot read %s: %w", p, unwrapPathErr(err))
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("%s is not valid UTF-8 text", p)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func fileExistsFunc(baseDir string, reads *loadReads) function.Function {
	return function.New(&function.Spec{
		Description: "Reports whether a file exists (relative to the pipeline).",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			abs := resolve(baseDir, args[0].AsString())
			_, err := os.Stat(abs)
			reads.exists(abs, err == nil)
			return cty.BoolVal(err == nil), nil
		},
	})
}

func globFunc(baseDir string, reads *loadReads) function.Function {
	return function.New(&function.Spec{
		Description: "Lists the paths matching a pattern (relative to the pipeline), sorted.",
		Params:      []function.Parameter{{Name: "pattern", Type: cty.String}},
		Type:        function.StaticReturnType(cty.List(cty.String)),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			pat := args[0].AsString()
			matches, err := filepath.Glob(resolve(baseDir, pat))
			if err != nil {
				return cty.NilVal, fmt.Errorf("bad glob pattern %q: %w", pat, err)
			}
			sort.Strings(matches)
			reads.glob(resolve(baseDir, pat), matches)
			vals := make([]cty.Value, 0, len(matches))
			for _, m := range matches {
				if !filepath.IsAbs(pat) {
					if rel, err := filepath.Rel(baseDir, m); err == nil {
						m = filepath.ToSlash(rel)
					}
				}
				vals = append(vals, cty.StringVal(m))
			}
			if len(vals) == 0 {
				return cty.ListValEmpty(cty.String), nil
			}
			return cty.ListVal(vals), nil
		},
	})
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
