package engine

import (
	"bytes"
	"runtime"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// parallelParseMin is the size from which a pipeline file is parsed in
// pieces on several cores: below it the goroutines cost more than they
// save. (A variable for tests.)
var parallelParseMin = 256 << 10

// parseFile parses one pipeline file's source into p (the parser whose
// files render diagnostics). A large file is cut at top-level block
// boundaries into one piece per core, each parsed with its true start
// position, and the pieces' bodies joined into the one a whole-file parse
// makes (joinPieces): hclsyntax's lexer, most of the time of loading a
// pipeline of thousands of steps, then runs on every core. The cut is
// found by a scan that does not understand all of HCL (heredocs,
// comments, templates); a cut in the wrong place leaves the piece before
// it unterminated, which fails to parse, and then the whole file is
// parsed at once, so the result and any diagnostics are exactly those of
// a whole-file parse.
func parseFile(p *hclparse.Parser, src []byte, name string) (*hcl.File, hcl.Diagnostics) {
	n := runtime.GOMAXPROCS(0)
	if len(src) < parallelParseMin || n < 2 {
		return p.ParseHCL(src, name)
	}
	cuts := blockCuts(src, n)
	if len(cuts) < 2 {
		return p.ParseHCL(src, name)
	}
	files := make([]*hcl.File, len(cuts))
	ok := make([]bool, len(cuts))
	var wg sync.WaitGroup
	for i := range cuts {
		wg.Go(func() {
			end := len(src)
			if i+1 < len(cuts) {
				end = cuts[i+1].Byte
			}
			f, diags := hclsyntax.ParseConfig(src[cuts[i].Byte:end], name, cuts[i])
			files[i], ok[i] = f, !diags.HasErrors()
		})
	}
	wg.Wait()
	for _, good := range ok {
		if !good {
			return p.ParseHCL(src, name)
		}
	}
	file, joined := joinPieces(files, src)
	if !joined {
		return p.ParseHCL(src, name)
	}
	p.AddFile(name, file)
	return file, nil
}

// joinPieces makes the file of a whole-file parse from its pieces' (in
// order): the first piece's file, whose body takes the others' blocks and
// attributes and extends to the end of the last, so that the AST is the
// one a whole-file parse makes (the same nodes and ranges: a piece starts
// at a top-level block and is parsed with its true start position) and
// the file's Nav (hcled's context strings) sees every block. It reports
// false when two pieces define the same top-level attribute, which a
// whole-file parse reports as an error.
func joinPieces(files []*hcl.File, src []byte) (*hcl.File, bool) {
	bodies := make([]*hclsyntax.Body, len(files))
	n := 0
	for i, f := range files {
		b, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return nil, false
		}
		bodies[i] = b
		n += len(b.Blocks)
	}
	root, last := bodies[0], bodies[len(bodies)-1]
	blocks := make(hclsyntax.Blocks, 0, n)
	for _, b := range bodies {
		blocks = append(blocks, b.Blocks...)
		if b == root {
			continue
		}
		for name, a := range b.Attributes {
			if _, dup := root.Attributes[name]; dup {
				return nil, false
			}
			root.Attributes[name] = a
		}
	}
	root.Blocks = blocks
	root.SrcRange.End = last.SrcRange.End
	root.EndRange = last.EndRange
	file := files[0]
	file.Bytes = src
	return file, true
}

// blockCuts returns where to cut src into about n pieces of similar size:
// the start of piece 0, then positions at the start of a line that opens a
// top-level block (a letter at column 1) after a line that closes one
// ("}" alone; blank lines may come between). Positions carry line, column
// and byte offset, as a parse starting there needs.
func blockCuts(src []byte, n int) []hcl.Pos {
	cuts := []hcl.Pos{hcl.InitialPos}
	want := len(src) / n
	afterClose := false
	for line, off := 1, 0; off < len(src) && len(cuts) < n; line++ {
		end := len(src)
		if nl := bytes.IndexByte(src[off:], '\n'); nl >= 0 {
			end = off + nl + 1
		}
		text := bytes.TrimRight(src[off:end], " \t\r\n")
		switch {
		case len(text) == 0:
			// A blank line keeps afterClose.
		case afterClose && opensBlock(text) && off-cuts[len(cuts)-1].Byte >= want:
			cuts = append(cuts, hcl.Pos{Line: line, Column: 1, Byte: off})
			afterClose = false
		default:
			afterClose = bytes.Equal(text, []byte("}"))
		}
		off = end
	}
	return cuts
}

// opensBlock reports whether a line starts with a top-level block
// header's first word: a letter at column 1.
func opensBlock(line []byte) bool {
	c := line[0]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
