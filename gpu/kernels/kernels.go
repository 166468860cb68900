// Package kernels holds the PTX of mlbuild's CUDA kernels, compiled from
// the CUDA C sources beside it (gpu/kernels/*.cu) by `make kernels` and
// embedded in the binary, so that running on a GPU needs the driver alone
// (it JIT-compiles PTX for the device). The same PTX runs on the CPU in
// tests through the PTX interpreter (gpu/ptx).
//
//	for _, m := range kernels.Modules() {
//		mod, err := ctx.LoadModule(m.PTX)
//		...
//	}
//
// Each source's header comment says what its kernels compute and how they
// match the CPU backend; common.cuh gives the conventions they share.
package kernels

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.ptx
var files embed.FS

// Module is one compiled source: its name ("attention" for attention.cu)
// and its PTX text.
type Module struct {
	Name string
	PTX  []byte
}

// Modules returns every module, sorted by name.
func Modules() []Module {
	names, err := fs.Glob(files, "*.ptx")
	if err != nil {
		panic(err) // the pattern is valid
	}
	sort.Strings(names)
	out := make([]Module, 0, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			panic(err) // embedded
		}
		out = append(out, Module{Name: strings.TrimSuffix(n, ".ptx"), PTX: b})
	}
	return out
}
