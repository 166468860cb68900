// Package cuda is mlbuild's binding of the CUDA driver API and cuBLASLt,
// loaded at run time without cgo (through github.com/ebitengine/purego),
// so that one mlbuild binary, built with CGO_ENABLED=0, starts on every
// machine and uses an NVIDIA GPU where libcuda.so.1 is present.
//
// The binding is low level on purpose: device memory is a DevicePtr, and
// streams, modules, functions and events are opaque handles. The CUDA
// tensor backend (package gpu) is built on it; nothing in ml/ imports it.
//
// Usage:
//
//	drv, err := cuda.Load() // libcuda.so.1, then cuInit
//	if err != nil {
//		return err // e.g. "cuda: libcuda.so.1 not found: no NVIDIA driver on this machine"
//	}
//	ctx, err := drv.NewContext(0)
//	if err != nil {
//		return err
//	}
//	defer ctx.Close()
//	p, err := ctx.Alloc(4 * n)
//	...
//	mod, err := ctx.LoadModule(ptx) // PTX text, JIT-compiled by the driver
//	fn, err := ctx.Function(mod, "scale_f32")
//	err = ctx.Launch(0, fn, cuda.Dim3{X: blocks}, cuda.Dim3{X: 256}, 0, p, int32(n), float32(2))
//	err = ctx.Synchronize(0)
//
// Driver is an interface so that a second implementation, a PTX
// interpreter that runs the same kernels on the CPU for tests, can stand
// in for the real driver. Every call that reaches CUDA returns an *Error
// that names the call and CUDA's error name (CUDA_ERROR_OUT_OF_MEMORY, ...);
// errors.Is matches it against the sentinels (ErrOutOfMemory, ...).
//
// What is tested where: the no-driver path, the error mapping and the
// marshalling of kernel arguments are tested on any machine; the real
// driver and cuBLASLt calls are exercised only by gpu/check.sh on a
// machine with an NVIDIA GPU.
//
// A CUDA context is current per OS thread, and goroutines move between
// threads: every Context method locks its goroutine to its thread and
// makes the context current before it calls the driver.
package cuda
