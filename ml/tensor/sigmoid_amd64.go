package tensor

//go:noescape
func swiglu8asm(y, gate, up *float32, n int)

//go:noescape
func swigluBackward8asm(dgate, dup, dy, gate, up *float32, n int)

//go:noescape
func expSum8asm(x *float32, n int, mx float32, out *float32, lanes *[8]float64)

func init() {
	if !hasAVX2FMA {
		return
	}
	expSum8 = func(x []float32, mx float32, out []float32, lanes *[8]float64) {
		n := len(x)
		var o *float32
		if out != nil {
			_ = out[n-1]
			o = &out[0]
		}
		expSum8asm(&x[0], n, mx, o, lanes)
	}
	swiglu8 = func(y, gate, up []float32) {
		n := len(y)
		_, _ = gate[n-1], up[n-1]
		swiglu8asm(&y[0], &gate[0], &up[0], n)
	}
	swigluBackward8 = func(dgate, dup, dy, gate, up []float32) {
		n := len(dy)
		_, _, _, _ = dgate[n-1], dup[n-1], gate[n-1], up[n-1]
		swigluBackward8asm(&dgate[0], &dup[0], &dy[0], &gate[0], &up[0], n)
	}
}
