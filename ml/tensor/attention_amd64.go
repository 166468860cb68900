package tensor

func init() {
	if hasAVX2FMA {
		maxKernel = maxAVX2
		expSubKernel = expSubAVX2
		scaleKernel = scaleAVX2
		dsoftmaxKernel = dsoftmaxAVX2
		blockKernel = blockAVX2
		axpyKernel = axpyAVX2
	}
}

// axpy8 sets y[i] += a*x[i] (fused multiply-add) over n (a multiple of 8)
// elements.
//
//go:noescape
func axpy8(y, x *float32, n int, a float32)

func axpyAVX2(y, x []float32, a float32) {
	x = x[:len(y)]
	n := len(y) &^ 7
	if n > 0 {
		axpy8(&y[0], &x[0], n, a)
	}
	axpy(y[n:], x[n:], a)
}

// kern6x16c is kern6x16 writing (acc false) or adding into (acc true) a
// 6×16 block of c with rows ldc apart.
//
//go:noescape
func kern6x16c(kc int, a, b, c *float32, ldc int, acc bool)

// blockAVX2 is blockKernel for kc >= 1.
func blockAVX2(kc int, a, b, c []float32, ldc int, acc bool) {
	_ = a[kc*gemmMR-1]
	_ = b[kc*gemmNR-1]
	_ = c[(gemmMR-1)*ldc+gemmNR-1]
	kern6x16c(kc, &a[0], &b[0], &c[0], ldc, acc)
}

// expSub8 sets x[i] = exp((x[i]-m)·scale) over n (a multiple of 8)
// elements, x[i] <= m, and returns their sum (in float64).
//
//go:noescape
func expSub8(x *float32, n int, m, scale float32) float64

// max8 returns the largest of n (a positive multiple of 8) elements.
//
//go:noescape
func max8(x *float32, n int) float32

// scale8 multiplies n (a multiple of 8) elements by s.
//
//go:noescape
func scale8(x *float32, n int, s float32)

// dsoftmax8 sets d[i] = s*(p[i]*(d[i]-c)) over n (a multiple of 8) elements.
//
//go:noescape
func dsoftmax8(d, p *float32, n int, c, s float32)

func maxAVX2(x []float32) float32 {
	n := len(x) &^ 7
	if n == 0 {
		return maxGo(x)
	}
	m := max8(&x[0], n)
	for _, v := range x[n:] {
		m = max(m, v)
	}
	return m
}

func expSubAVX2(x []float32, m, scale float32) float64 {
	n := len(x) &^ 7
	var s float64
	if n > 0 {
		s = expSub8(&x[0], n, m, scale)
	}
	return s + expSubGo(x[n:], m, scale)
}

func scaleAVX2(x []float32, s float32) {
	n := len(x) &^ 7
	if n > 0 {
		scale8(&x[0], n, s)
	}
	scaleGo(x[n:], s)
}

func dsoftmaxAVX2(d, p []float32, c, s float32) {
	p = p[:len(d)]
	n := len(d) &^ 7
	if n > 0 {
		dsoftmax8(&d[0], &p[0], n, c, s)
	}
	dsoftmaxGo(d[n:], p[n:], c, s)
}
