package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// varDecl is a declared variable and the value it has so far.
type varDecl struct {
	name  string
	typ   cty.Type
	value cty.Value // cty.NilVal while unset
	rng   hcl.Range
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}},
}

func decodeVariable(b *hcl.Block) (*varDecl, hcl.Diagnostics) {
	name := b.Labels[0]
	if !validName(name) || strings.Contains(name, "-") {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid variable name",
			Detail:  fmt.Sprintf("Variable name %q must start with a letter and contain only letters, digits and '_'.", name),
			Subject: b.LabelRanges[0].Ptr()}}
	}
	content, diags := b.Body.Content(variableSchema)
	d := &varDecl{name: name, typ: cty.DynamicPseudoType, rng: b.DefRange}
	if a, ok := content.Attributes["type"]; ok {
		t, td := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, td...)
		if !td.HasErrors() {
			d.typ = t
		}
	}
	if a, ok := content.Attributes["default"]; ok {
		v, vd := a.Expr.Value(nil)
		diags = append(diags, vd...)
		if !vd.HasErrors() {
			cv, err := convert.Convert(v, d.typ)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid default value",
					Detail:  fmt.Sprintf("The default of variable %q is not a valid %s: %s.", name, typeexpr.TypeString(d.typ), err),
					Subject: a.Expr.Range().Ptr()})
			} else {
				d.value = cv
			}
		}
	}
	return d, diags
}

// setRaw sets the variable from a command-line or environment string:
// taken literally for string variables, parsed as an HCL expression
// (a number, bool, list or object) otherwise.
func (d *varDecl) setRaw(raw, origin string) hcl.Diagnostics {
	var v cty.Value
	if d.typ == cty.String {
		v = cty.StringVal(raw)
	} else {
		expr, diags := hclsyntax.ParseExpression([]byte(raw), origin, hcl.InitialPos)
		if diags.HasErrors() {
			if d.typ == cty.DynamicPseudoType {
				v = cty.StringVal(raw)
			} else {
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid variable value",
					Detail: fmt.Sprintf("%s: %q is not a valid %s value.", origin, raw, typeexpr.TypeString(d.typ))}}
			}
		} else {
			val, vd := expr.Value(nil)
			if vd.HasErrors() {
				if d.typ != cty.DynamicPseudoType {
					return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid variable value",
						Detail: fmt.Sprintf("%s: %q is not a valid %s value (quote strings; no references or functions).", origin, raw, typeexpr.TypeString(d.typ))}}
				}
				val = cty.StringVal(raw)
			}
			v = val
		}
	}
	return d.set(v, origin, nil)
}

func (d *varDecl) set(v cty.Value, origin string, rng *hcl.Range) hcl.Diagnostics {
	cv, err := convert.Convert(v, d.typ)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid variable value",
			Detail:  fmt.Sprintf("%s: variable %q must be %s: %s.", origin, d.name, typeexpr.TypeString(d.typ), err),
			Subject: rng}}
	}
	d.value = cv
	return nil
}

// applyVarFile reads NAME = VALUE attributes from an HCL file.
func (l *loader) applyVarFile(path string, decls map[string]*varDecl) hcl.Diagnostics {
	if abs, err := filepath.Abs(path); err == nil {
		l.reads.file(abs)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read variable file",
			Detail: fmt.Sprintf("-var-file %s: %s.", path, unwrapPathErr(err))}}
	}
	f, diags := l.parser.ParseHCL(src, path)
	if diags.HasErrors() {
		return diags
	}
	attrs, ad := f.Body.JustAttributes()
	diags = append(diags, ad...)
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	known := make([]string, 0, len(decls))
	for n := range decls {
		known = append(known, n)
	}
	sort.Strings(known)
	for _, n := range names {
		a := attrs[n]
		d, ok := decls[n]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown variable",
				Detail:  fmt.Sprintf("The pipeline declares no variable %q.%s", n, suggest(n, known)),
				Subject: a.NameRange.Ptr()})
			continue
		}
		v, vd := a.Expr.Value(nil)
		diags = append(diags, vd...)
		if vd.HasErrors() {
			continue
		}
		diags = append(diags, d.set(v, "-var-file "+path, a.Expr.Range().Ptr())...)
	}
	return diags
}

// DiagError carries HCL diagnostics; its message renders each with its
// file:line:column and a snippet of the source.
type DiagError struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

// Unwrap returns the errors behind the diagnostics (those a kind's
// Validate returned, such as a *steps.AttrError), for errors.Is and
// errors.As.
func (e *DiagError) Unwrap() []error {
	var errs []error
	for _, d := range e.Diags {
		if err, ok := d.Extra.(error); ok {
			errs = append(errs, err)
		}
	}
	return errs
}

func (e *DiagError) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteString("\n")
		}
		writeDiagnostic(&b, d, e.Files)
	}
	return strings.TrimRight(b.String(), "\n")
}

// writeDiagnostic renders one diagnostic compiler-style:
//
//	pipeline.hcl:3:10: error: Unknown variable
//	   3 |   seed = var.sed
//	     |          ^^^^^^^
//	There is no variable "sed"; ...
func writeDiagnostic(b *strings.Builder, d *hcl.Diagnostic, files map[string]*hcl.File) {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	if d.Subject == nil {
		fmt.Fprintf(b, "%s: %s\n", sev, d.Summary)
	} else {
		r := *d.Subject
		fmt.Fprintf(b, "%s:%d:%d: %s: %s\n", r.Filename, r.Start.Line, r.Start.Column, sev, d.Summary)
		if f, ok := files[r.Filename]; ok && f != nil {
			lines := bytes.Split(f.Bytes, []byte("\n"))
			if n := r.Start.Line; n >= 1 && n <= len(lines) {
				line := strings.ReplaceAll(string(bytes.TrimRight(lines[n-1], "\r")), "\t", " ")
				gutter := fmt.Sprintf("%4d | ", n)
				fmt.Fprintf(b, "%s%s\n", gutter, line)
				width := r.End.Column - r.Start.Column
				if r.End.Line != r.Start.Line || width < 1 {
					width = 1
				}
				if r.Start.Column-1+width > len(line)+1 {
					width = max(1, len(line)+1-(r.Start.Column-1))
				}
				fmt.Fprintf(b, "%s| %s%s\n", strings.Repeat(" ", len(gutter)-2), strings.Repeat(" ", max(0, r.Start.Column-1)), strings.Repeat("^", width))
			}
		}
	}
	if d.Detail != "" {
		b.WriteString(d.Detail + "\n")
	}
}

// suggest returns " Did you mean X?" for the closest candidate, if close.
func suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(given, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}
