//go:build !mlbuild_nogpu

package main

// The cuda device (package gpu registers it with tensor.OpenDevice). It
// loads libcuda.so.1 at run time through purego, without cgo, which makes
// even a CGO_ENABLED=0 binary dynamically linked against the C library
// (the dynamic loader is what opens libcuda). Build with
// -tags mlbuild_nogpu for a static binary with the CPU backend only.
import _ "github.com/mlbuild/mlbuild/gpu"
