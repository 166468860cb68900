package nf4

import "testing"

func benchTensor(b *testing.B, rows, cols int) *Tensor {
	b.Helper()
	return Quantize(randomWeights(99, rows*cols), rows, cols)
}

// BenchmarkDequantizeRows dequantizes a 2048x2048 weight 64 rows at a time,
// as a layer would on the fly; SetBytes counts the float32 output.
func BenchmarkDequantizeRows(b *testing.B) {
	const rows, cols, step = 2048, 2048, 64
	tq := benchTensor(b, rows, cols)
	dst := make([]float32, step*cols)
	b.SetBytes(int64(4 * rows * cols))
	b.ResetTimer()
	for range b.N {
		for lo := 0; lo < rows; lo += step {
			tq.DequantizeRows(dst, lo, lo+step)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows*cols), "ns/param")
}

// BenchmarkDequantizeRowsOdd uses an odd row length, so rows start on low
// nibbles and cross block boundaries.
func BenchmarkDequantizeRowsOdd(b *testing.B) {
	const rows, cols = 2048, 2047
	tq := benchTensor(b, rows, cols)
	dst := make([]float32, cols)
	b.SetBytes(int64(4 * rows * cols))
	b.ResetTimer()
	for range b.N {
		for lo := range rows {
			tq.DequantizeRows(dst, lo, lo+1)
		}
	}
}

func BenchmarkQuantize(b *testing.B) {
	x := randomWeights(98, 1024*1024)
	b.SetBytes(int64(4 * len(x)))
	b.ResetTimer()
	for range b.N {
		Quantize(x, 1024, 1024)
	}
}
