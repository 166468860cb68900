package tensor

import (
	"fmt"
	"math"
	"sync"
)

// Cache-blocked single-precision GEMM: Go blocking and packing around a
// 6×16 micro-kernel (AVX2/FMA assembly on amd64 CPUs that have it, portable
// Go elsewhere) and, on CPUs with AVX-512, a 12×32 one over the same
// packed panels that gives every element the same operations.
//
// C = alpha*op(A)*op(B) + beta*C is computed block by block: the N dimension
// is cut into gemmNC-wide blocks and the K dimension into slabs of equal
// depth, at most gemmKC (in ascending order), B's slab is packed into NR-wide column panels
// (widening bf16/fp16 on the fly), and tasks of up to gemmMC rows (and, for
// short products, a share of the panels) pack their slice of A into MR-high
// row panels and run the micro-kernel on each MR×NR tile, which writes its
// block of C itself. Every element of C is the sum of its slabs in ascending
// order, each slab summed from zero in ascending p by the kernel, and tiles
// sit at multiples of MR and NR whatever the task split: results do not
// depend on the number of workers.

const (
	gemmMR   = 6
	gemmNR   = 16
	gemmKC   = 256
	gemmNC   = 1024
	gemmMC   = 144 // at most this many rows of A per task (kc×mc floats stay in L2)
	gemmMCLo = 48  // fewest rows per task when splitting for workers
	gemvMaxM = 4
)

// microKernel computes tile = Σ_p a[p,0:MR]ᵀ b[p,0:NR] over kc steps of
// packed panels (a: kc×MR, b: kc×NR), each element summing p in ascending
// order. It is kernelGo, or an assembly kernel where the CPU has one
// (gemm_amd64.go). Attention uses it; the GEMM uses gemmBlock.
var microKernel = kernelGo

// gemmBlock is the GEMM's micro-kernel: acc = Σ_p a[p,0:MR]ᵀ b[p,0:NR] over
// kc packed steps (p ascending, from zero), then the MR×NR block of c (rows
// ldc apart) becomes alpha·acc (accum false: c is not read) or
// alpha·acc + beta·c (accum true). It is gemmBlockGo, or an assembly kernel
// where the CPU has one (gemm_amd64.go: there the accumulation is one fused
// multiply-add, fma(acc, alpha, beta·c)).
var gemmBlock = gemmBlockGo

// gemmBlockWide, where the CPU has one (gemm_amd64.go: AVX-512), computes
// the 2MR×2NR block of two row panels (a0 above a1) by two adjacent column
// panels (b0 left of b1) in one pass, each element exactly as gemmBlock
// computes it: which blocks it takes never changes a result. nil: gemm
// uses gemmBlock alone.
var gemmBlockWide func(kc int, a0, a1, b0, b1, c []float32, ldc int, alpha, beta float32, accum bool)

// gemmBlockWideCPU is the wide kernel this CPU has, whether or not gemm
// uses it (benchmarks compare), and gemmWideFaster measures whether it is
// worth using; chooseWideKernel sets gemmBlockWide from them once, at the
// first GEMM. gemmKernelName is what GEMMKernel reports.
var (
	gemmBlockWideCPU func(kc int, a0, a1, b0, b1, c []float32, ldc int, alpha, beta float32, accum bool)
	gemmWideFaster   func() bool
	gemmWideOnce     sync.Once
	gemmKernelName   = "go"
)

// chooseWideKernel decides, the first time it is called, whether gemm uses
// the wide kernel (tests that swap kernels call it first).
func chooseWideKernel() {
	gemmWideOnce.Do(func() {
		if gemmBlockWideCPU != nil && gemmWideFaster() {
			gemmBlockWide = gemmBlockWideCPU
			gemmKernelName = "avx512"
		}
	})
}

// GEMMKernel names the micro-kernel the CPU backend's GEMM runs on this
// machine: "avx512" (12×32 blocks, 6×16 AVX2 ones at the edges), "avx2"
// (6×16) or "go" (portable). Results are the same bits whichever it is.
func GEMMKernel() string {
	chooseWideKernel()
	return gemmKernelName
}

// dotKernel and dotBF16Kernel are the dot products gemv uses (y in float32
// or bfloat16): dot and dotBF16, or assembly versions.
var (
	dotKernel     = dot
	dotBF16Kernel = dotBF16
)

// matSrc is one operand of a GEMM: row-major data of rows×cols (before any
// transposition), in one of three storage types.
type matSrc struct {
	f32        []float32
	u16        []uint16
	dt         DType
	rows, cols int
	trans      bool
	// packed, for a transposed right operand that CPU.Prepack packed,
	// holds every slab's panels as gemm packs them.
	packed *packedB
}

// packedB is a rows×cols matrix packed once as gemm's transposed right
// operand (op(B) = Bᵀ: k = cols, n = rows): slab (jc/gemmNC, pc/kcb) holds
// what packB writes for that block, in gemm's layout.
type packedB struct {
	rows, cols int
	kcb        int
	slabs      [][]float32 // [jc/gemmNC * pcs + pc/kcb]
	pcs        int
}

// packSlab packs the slab of op(b) at rows [pc, pc+kc) and columns
// [jc, jc+nc) into dst, one NR-wide panel after another.
func packSlab(pool *workerPool, dst []float32, b *matSrc, jc, nc, pc, kc int) {
	pool.run(ceilDiv(nc, gemmNR), 8, func(lo, hi int) {
		for pnl := lo; pnl < hi; pnl++ {
			packB(dst[pnl*kc*gemmNR:(pnl+1)*kc*gemmNR], b, pc, kc, jc+pnl*gemmNR, min(gemmNR, nc-pnl*gemmNR))
		}
	})
}

// slabDepth is the depth of gemm's K slabs for k: at most gemmKC, all
// equal (576 is three of 192, not 256+256+64).
func slabDepth(k int) int { return ceilDiv(k, ceilDiv(k, gemmKC)) }

// packWhole packs b (transposed, n×k stored) into every slab gemm uses.
func packWhole(pool *workerPool, b *matSrc) *packedB {
	n, k := b.rows, b.cols
	kcb := slabDepth(k)
	p := &packedB{rows: n, cols: k, kcb: kcb, pcs: ceilDiv(k, kcb)}
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		panels := ceilDiv(nc, gemmNR)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			slab := make([]float32, panels*kc*gemmNR)
			packSlab(pool, slab, b, jc, nc, pc, kc)
			p.slabs = append(p.slabs, slab)
		}
	}
	return p
}

// at returns op(M)[i,j] widened to float32.
func (s *matSrc) at(i, j int) float32 {
	idx := i*s.cols + j
	if s.trans {
		idx = j*s.cols + i
	}
	switch s.dt {
	case F32:
		return s.f32[idx]
	case BF16:
		return BF16ToFloat32(s.u16[idx])
	default:
		return f16Table()[s.u16[idx]]
	}
}

// loadRow widens count consecutive stored elements starting at idx into dst.
func (s *matSrc) loadRow(dst []float32, idx int) {
	switch s.dt {
	case F32:
		copy(dst, s.f32[idx:idx+len(dst)])
	case BF16:
		src := s.u16[idx : idx+len(dst)]
		for i, h := range src {
			dst[i] = math.Float32frombits(uint32(h) << 16)
		}
	default:
		src, table := s.u16[idx:idx+len(dst)], f16Table()
		for i, h := range src {
			dst[i] = table[h]
		}
	}
}

// gemm computes c[M,N] = alpha*op(a)*op(b) + beta*c.
func gemm(pool *workerPool, c []float32, a, b *matSrc, m, n, k int, alpha, beta float32) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleC(c, m*n, beta)
		return
	}
	if m <= gemvMaxM {
		gemv(pool, c, a, b, m, n, k, alpha, beta)
		return
	}
	chooseWideKernel()
	// Slabs of equal depth (at most gemmKC): 576 is three of 192, not
	// 256+256+64. The depth depends on k alone.
	kcb := slabDepth(k)
	bp := getBuf(gemmKC * gemmNC)
	defer putBuf(bp)
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		panels := ceilDiv(nc, gemmNR)
		mb, mTasks, pp, nParts := gemmTasks(m, panels, pool.workers)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			var packed []float32
			if b.packed != nil {
				packed = b.packed.slabs[(jc/gemmNC)*b.packed.pcs+pc/kcb]
			} else {
				packed = (*bp)[:panels*kc*gemmNR]
				packSlab(pool, packed, b, jc, nc, pc, kc)
			}
			// The first slab applies beta (and does not read c when beta
			// is 0); later ones add to c.
			accum, bt := true, float32(1)
			if pc == 0 {
				accum, bt = beta != 0, beta
			}
			pool.run(mTasks*nParts, 1, func(lo, hi int) {
				ap := getBuf(mb * kc)
				defer putBuf(ap)
				edge := new([gemmMR * gemmNR]float32)
				for t := lo; t < hi; t++ {
					ic := (t / nParts) * mb
					mc := min(mb, m-ic)
					p0 := (t % nParts) * pp
					p1 := min(panels, p0+pp)
					packA(*ap, a, ic, mc, pc, kc)
					for pnl := p0; pnl < p1; {
						col0 := jc + pnl*gemmNR
						if gemmBlockWide != nil && pnl+1 < p1 && nc-(pnl+1)*gemmNR >= gemmNR {
							// Two full column panels at once, twelve rows at a time.
							b0 := packed[pnl*kc*gemmNR : (pnl+1)*kc*gemmNR]
							b1 := packed[(pnl+1)*kc*gemmNR : (pnl+2)*kc*gemmNR]
							ir := 0
							for ; ir+2*gemmMR <= mc; ir += 2 * gemmMR {
								gemmBlockWide(kc, (*ap)[ir*kc:(ir+gemmMR)*kc], (*ap)[(ir+gemmMR)*kc:(ir+2*gemmMR)*kc], b0, b1, c[(ic+ir)*n+col0:], n, alpha, bt, accum)
							}
							for ; ir < mc; ir += gemmMR {
								mr := min(gemmMR, mc-ir)
								apan := (*ap)[ir*kc : (ir+gemmMR)*kc]
								gemmTile(c[(ic+ir)*n+col0:], n, mr, gemmNR, kc, apan, b0, alpha, bt, accum, edge)
								gemmTile(c[(ic+ir)*n+col0+gemmNR:], n, mr, gemmNR, kc, apan, b1, alpha, bt, accum, edge)
							}
							pnl += 2
							continue
						}
						nr := min(gemmNR, nc-pnl*gemmNR)
						bpan := packed[pnl*kc*gemmNR : (pnl+1)*kc*gemmNR]
						for ir := 0; ir < mc; ir += gemmMR {
							mr := min(gemmMR, mc-ir)
							cb := c[(ic+ir)*n+col0:]
							gemmTile(cb, n, mr, nr, kc, (*ap)[ir*kc:(ir+gemmMR)*kc], bpan, alpha, bt, accum, edge)
						}
						pnl++
					}
				}
			})
		}
	}
}

// gemmTasks splits m rows and panels column panels into tasks: mTasks
// blocks of mb rows (a multiple of MR) times nParts shares of pp panels.
// Only the split, never a tile's position or summation, depends on workers.
func gemmTasks(m, panels, workers int) (mb, mTasks, pp, nParts int) {
	mTasks = ceilDiv(m, gemmMC)
	if workers > 1 {
		// A few tasks per worker balance the load on a busy machine.
		mTasks = max(mTasks, min(4*workers, ceilDiv(m, gemmMCLo)))
	}
	mb = ceilDiv(ceilDiv(m, mTasks), gemmMR) * gemmMR
	mTasks = ceilDiv(m, mb)
	nParts = 1
	if workers > 1 && mTasks < 4*workers {
		// Few rows: share the panels too (each share packs A again).
		nParts = min(panels, ceilDiv(4*workers, mTasks))
	}
	pp = ceilDiv(panels, nParts)
	nParts = ceilDiv(panels, pp)
	return mb, mTasks, pp, nParts
}

// gemmTile runs gemmBlock on the mr×nr block of c (rows ldc apart); a block
// smaller than MR×NR goes through edge, so that it gets the same arithmetic
// as a full one.
func gemmTile(c []float32, ldc, mr, nr, kc int, a, b []float32, alpha, beta float32, accum bool, edge *[gemmMR * gemmNR]float32) {
	if mr == gemmMR && nr == gemmNR {
		gemmBlock(kc, a, b, c, ldc, alpha, beta, accum)
		return
	}
	if accum {
		for i := range mr {
			copy(edge[i*gemmNR:i*gemmNR+nr], c[i*ldc:i*ldc+nr])
		}
	}
	gemmBlock(kc, a, b, edge[:], gemmNR, alpha, beta, accum)
	for i := range mr {
		copy(c[i*ldc:i*ldc+nr], edge[i*gemmNR:i*gemmNR+nr])
	}
}

// gemmBlockGo is the portable gemmBlock.
func gemmBlockGo(kc int, a, b, c []float32, ldc int, alpha, beta float32, accum bool) {
	var tile [gemmMR * gemmNR]float32
	kernelGo(kc, a, b, &tile)
	for i := range gemmMR {
		cr := c[i*ldc : i*ldc+gemmNR : i*ldc+gemmNR]
		tr := tile[i*gemmNR : i*gemmNR+gemmNR : i*gemmNR+gemmNR]
		if accum {
			for j := range cr {
				cr[j] = alpha*tr[j] + beta*cr[j]
			}
		} else {
			for j := range cr {
				cr[j] = alpha * tr[j]
			}
		}
	}
}

func scaleC(c []float32, n int, beta float32) {
	for i := range c[:n] {
		if beta == 0 {
			c[i] = 0
		} else {
			c[i] *= beta
		}
	}
}

// packA packs rows [ic, ic+mc) and columns [pc, pc+kc) of op(a) into MR-high
// panels: dst[panel*kc*MR + p*MR + i]. Rows past mc are zero.
func packA(dst []float32, a *matSrc, ic, mc, pc, kc int) {
	for ir := 0; ir < mc; ir += gemmMR {
		pan := dst[ir*kc : ir*kc+kc*gemmMR]
		mr := min(gemmMR, mc-ir)
		if !a.trans && a.dt == F32 && mr == gemmMR {
			// Full panel: read the six rows in one pass.
			base := (ic+ir)*a.cols + pc
			r0 := a.f32[base : base+kc]
			r1 := a.f32[base+a.cols : base+a.cols+kc]
			r2 := a.f32[base+2*a.cols : base+2*a.cols+kc]
			r3 := a.f32[base+3*a.cols : base+3*a.cols+kc]
			r4 := a.f32[base+4*a.cols : base+4*a.cols+kc]
			r5 := a.f32[base+5*a.cols : base+5*a.cols+kc]
			r1, r2, r3, r4, r5 = r1[:len(r0)], r2[:len(r0)], r3[:len(r0)], r4[:len(r0)], r5[:len(r0)]
			pan = pan[:kc*gemmMR]
			for p, v := range r0 {
				d := pan[p*gemmMR : p*gemmMR+gemmMR : p*gemmMR+gemmMR]
				d[0], d[1], d[2], d[3], d[4], d[5] = v, r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		if !a.trans && a.dt == F32 {
			for i := range gemmMR {
				if i >= mr {
					for p := range kc {
						pan[p*gemmMR+i] = 0
					}
					continue
				}
				src := a.f32[(ic+ir+i)*a.cols+pc : (ic+ir+i)*a.cols+pc+kc]
				for p, v := range src {
					pan[p*gemmMR+i] = v
				}
			}
			continue
		}
		if a.trans && a.dt == F32 {
			// op(a)[i,p] = a[p,i]: rows of storage are contiguous in i.
			if mr == gemmMR {
				for p := range kc {
					off := (pc+p)*a.cols + ic + ir
					d := pan[p*gemmMR : p*gemmMR+gemmMR : p*gemmMR+gemmMR]
					r := a.f32[off : off+gemmMR : off+gemmMR]
					d[0], d[1], d[2], d[3], d[4], d[5] = r[0], r[1], r[2], r[3], r[4], r[5]
				}
				continue
			}
			for p := range kc {
				row := a.f32[(pc+p)*a.cols+ic+ir : (pc+p)*a.cols+ic+ir+mr]
				d := pan[p*gemmMR : p*gemmMR+gemmMR]
				copy(d, row)
				for i := mr; i < gemmMR; i++ {
					d[i] = 0
				}
			}
			continue
		}
		for p := range kc {
			for i := range gemmMR {
				if i < mr {
					pan[p*gemmMR+i] = a.at(ic+ir+i, pc+p)
				} else {
					pan[p*gemmMR+i] = 0
				}
			}
		}
	}
}

// packB packs op(b)[pc:pc+kc, j0:j0+nr] into dst[p*NR + j] (zero beyond nr).
func packB(dst []float32, b *matSrc, pc, kc, j0, nr int) {
	dst = dst[:kc*gemmNR]
	if b.trans && b.dt == F32 && nr == gemmNR {
		// op(b)[p,j] = b[j,p]: sixteen stored rows, read side by side so
		// that each step writes one contiguous row of the panel.
		var rs [gemmNR][]float32
		for j := range rs {
			off := (j0+j)*b.cols + pc
			rs[j] = b.f32[off : off+kc : off+kc]
		}
		r0, r1, r2, r3, r4, r5, r6, r7 := rs[0][:kc], rs[1][:kc], rs[2][:kc], rs[3][:kc], rs[4][:kc], rs[5][:kc], rs[6][:kc], rs[7][:kc]
		r8, r9, r10, r11, r12, r13, r14, r15 := rs[8][:kc], rs[9][:kc], rs[10][:kc], rs[11][:kc], rs[12][:kc], rs[13][:kc], rs[14][:kc], rs[15][:kc]
		for p := range kc {
			d := dst[p*gemmNR : p*gemmNR+gemmNR : p*gemmNR+gemmNR]
			d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p], r6[p], r7[p]
			d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = r8[p], r9[p], r10[p], r11[p], r12[p], r13[p], r14[p], r15[p]
		}
		return
	}
	if b.trans {
		// op(b)[p,j] = b[j,p]: each column j is a contiguous stored row.
		var col [gemmKC]float32
		for j := range gemmNR {
			if j >= nr {
				for p := range kc {
					dst[p*gemmNR+j] = 0
				}
				continue
			}
			var cs []float32
			if b.dt == F32 {
				cs = b.f32[(j0+j)*b.cols+pc : (j0+j)*b.cols+pc+kc]
			} else {
				cs = col[:kc]
				b.loadRow(cs, (j0+j)*b.cols+pc)
			}
			for p, v := range cs {
				dst[p*gemmNR+j] = v
			}
		}
		return
	}
	if b.dt == F32 && nr == gemmNR {
		for p := range kc {
			off := (pc+p)*b.cols + j0
			copy(dst[p*gemmNR:p*gemmNR+gemmNR], b.f32[off:off+gemmNR])
		}
		return
	}
	var row [gemmNR]float32
	for p := range kc {
		d := dst[p*gemmNR : p*gemmNR+gemmNR]
		r := row[:nr]
		b.loadRow(r, (pc+p)*b.cols+j0)
		copy(d, r)
		for j := nr; j < gemmNR; j++ {
			d[j] = 0
		}
	}
}

// kernelGo is the portable micro-kernel.
func kernelGo(kc int, a, b []float32, tile *[gemmMR * gemmNR]float32) {
	*tile = [gemmMR * gemmNR]float32{}
	a = a[:kc*gemmMR]
	b = b[:kc*gemmNR]
	for p := range kc {
		ap := a[p*gemmMR : p*gemmMR+gemmMR : p*gemmMR+gemmMR]
		bp := b[p*gemmNR : p*gemmNR+gemmNR : p*gemmNR+gemmNR]
		for i, av := range ap {
			t := tile[i*gemmNR : i*gemmNR+gemmNR : i*gemmNR+gemmNR]
			for j, bv := range bp {
				t[j] += av * bv
			}
		}
	}
}

// Prepack packs w, a 2-D weight used as the transposed right operand of
// MatMul (x·wᵀ), once, the way every GEMM with more than RowStableRows
// rows would pack it, and keeps that beside w: such products then skip
// their packing (the same bits). It costs 4 bytes an element; w must not
// change afterwards.
func (c *CPU) Prepack(w *Tensor) {
	if len(w.shape) != 2 || w.packed != nil {
		return
	}
	w.packed = packWhole(c.pool, c.src("Prepack", w, w.shape[0], w.shape[1], true))
}

// RowStableRows is gemvMaxM: up to that many rows MatMul takes the GEMV
// path, in which every row's dot products are the same whatever the
// number of rows (tested), so the CPU backend is RowStable.
func (c *CPU) RowStableRows() int { return gemvMaxM }

// gemv handles small M (token-by-token decoding): each task owns a fixed
// range of output columns.
func gemv(pool *workerPool, c []float32, a, b *matSrc, m, n, k int, alpha, beta float32) {
	// Materialise op(a) rows as contiguous float32.
	arows := make([][]float32, m)
	for i := range m {
		r := make([]float32, k)
		for p := range k {
			r[p] = a.at(i, p)
		}
		arows[i] = r
	}
	const chunk = 64
	tasks := (n + chunk - 1) / chunk
	pool.run(tasks, 1, func(lo, hi int) {
		buf := getBuf(max(k, chunk))
		defer putBuf(buf)
		w := (*buf)[:k]
		for t := lo; t < hi; t++ {
			j0 := t * chunk
			j1 := min(n, j0+chunk)
			if b.trans {
				for j := j0; j < j1; j++ {
					// F32 and BF16 rows are read in place; F16 is widened.
					var bf []uint16
					row := w
					switch b.dt {
					case F32:
						row = b.f32[j*b.cols : j*b.cols+k]
					case BF16:
						bf = b.u16[j*b.cols : j*b.cols+k]
					default:
						b.loadRow(w, j*b.cols)
					}
					for i := range m {
						var s float32
						if bf != nil {
							s = dotBF16Kernel(arows[i], bf)
						} else {
							s = dotKernel(arows[i], row)
						}
						ci := &c[i*n+j]
						if beta == 0 {
							*ci = alpha * s
						} else {
							*ci = beta**ci + alpha*s
						}
					}
				}
				continue
			}
			// c[i, j0:j1] = Σ_p a[i,p] * b[p, j0:j1]
			acc := (*buf)[:j1-j0]
			for i := range m {
				for j := range acc {
					acc[j] = 0
				}
				var row [chunk]float32
				r := row[:j1-j0]
				for p := range k {
					b.loadRow(r, p*b.cols+j0)
					av := arows[i][p]
					for j, v := range r {
						acc[j] += av * v
					}
				}
				cr := c[i*n+j0 : i*n+j1]
				for j := range cr {
					if beta == 0 {
						cr[j] = alpha * acc[j]
					} else {
						cr[j] = beta*cr[j] + alpha*acc[j]
					}
				}
			}
		}
	})
}

// dot is a float32 dot product with four independent accumulators (fixed
// order, so deterministic).
func dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xx := x[i : i+4 : i+4]
		yy := y[i : i+4 : i+4]
		s0 += xx[0] * yy[0]
		s1 += xx[1] * yy[1]
		s2 += xx[2] * yy[2]
		s3 += xx[3] * yy[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotBF16 is dot with y in bfloat16.
func dotBF16(x []float32, y []uint16) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xx := x[i : i+4 : i+4]
		yy := y[i : i+4 : i+4]
		s0 += xx[0] * BF16ToFloat32(yy[0])
		s1 += xx[1] * BF16ToFloat32(yy[1])
		s2 += xx[2] * BF16ToFloat32(yy[2])
		s3 += xx[3] * BF16ToFloat32(yy[3])
	}
	for ; i < len(x); i++ {
		s0 += x[i] * BF16ToFloat32(y[i])
	}
	return (s0 + s1) + (s2 + s3)
}

var bufPool sync.Pool

func getBuf(n int) *[]float32 {
	if v, ok := bufPool.Get().(*[]float32); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]float32, n)
	return &s
}

func putBuf(b *[]float32) { bufPool.Put(b) }

// gemmArgs validates shapes for MatMul and returns m, n, k.
func gemmShape(op string, aRows, aCols, bRows, bCols, cRows, cCols int, transA, transB bool) (m, n, k int) {
	m, k = aRows, aCols
	if transA {
		m, k = aCols, aRows
	}
	kb, nb := bRows, bCols
	if transB {
		kb, nb = bCols, bRows
	}
	if k != kb || cRows != m || cCols != nb {
		panic(fmt.Sprintf("tensor: %s shape mismatch: op(a)=[%d %d] op(b)=[%d %d] c=[%d %d]", op, m, k, kb, nb, cRows, cCols))
	}
	return m, nb, k
}
