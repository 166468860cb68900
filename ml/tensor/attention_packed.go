package tensor

import "math"

// The packed attention path for prompts and training (SeqQ > gemvMaxM). A
// unit of work (one sequence and kv head, and for the forward pass a chunk
// of queries) packs its keys and values once as GEMM operands and then runs
// every query block of every query head that shares them. The products are
// cut into MR×NR tiles and the depth of each tile's sum is trimmed to the
// keys (or queries) the causal / sliding-window mask lets through, so fully
// masked tiles cost nothing; the trimmed terms are exact zeros, and each
// tile's range depends only on the shapes, so results stay deterministic.

// attnChunkQ is the number of query rows of one forward unit.
const attnChunkQ = 4 * attnBlockQ

// kvPack is one kv head's keys or values of one sequence, keys [kb, ke)
// (kb a multiple of gemmNR), in the two packed layouts the products need.
type kvPack struct {
	kb, ke int
	// cols: key panels of gemmNR keys as columns, [panel][HeadDim][NR]
	// (for Q·Kᵀ and dO·Vᵀ).
	cols []float32
	// depth: head-dim panels with the keys as depth, [dpanel][ke-kb][NR]
	// (for P·V and dS·K).
	depth []float32
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// pack fills the layouts for x (keys or values) of sequence b, head kh.
func (kp *kvPack) pack(x []float32, p AttnParams, b, kh, kb, ke int, cols, depth bool) {
	d := p.HeadDim
	kw := p.KVHeads * d
	kp.kb, kp.ke = kb, ke
	n := ke - kb
	base := x[(b*p.KVStride+kb)*kw+kh*d:]
	if cols {
		np := ceilDiv(n, gemmNR)
		buf := grow(&kp.cols, np*d*gemmNR)
		src := f32Src(base, kw, true)
		for pnl := range np {
			packB(buf[pnl*d*gemmNR:(pnl+1)*d*gemmNR], src, 0, d, pnl*gemmNR, min(gemmNR, n-pnl*gemmNR))
		}
	}
	if depth {
		np := ceilDiv(d, gemmNR)
		buf := grow(&kp.depth, np*n*gemmNR)
		src := f32Src(base, kw, false)
		for pnl := range np {
			packB(buf[pnl*n*gemmNR:(pnl+1)*n*gemmNR], src, 0, n, pnl*gemmNR, min(gemmNR, d-pnl*gemmNR))
		}
	}
}

// tileMul sets (acc false) or adds to (acc true) the mr×nr block of c (rows
// ldc apart) Σ_p a[p,:]ᵀ b[p,:] over kc packed steps; kc <= 0 contributes
// nothing.
func (sc *attnScratch) tileMul(c []float32, ldc, mr, nr, kc int, a, b []float32, acc bool) {
	if kc <= 0 {
		if !acc {
			for i := range mr {
				clear(c[i*ldc : i*ldc+nr])
			}
		}
		return
	}
	if blockKernel != nil && mr == gemmMR && nr == gemmNR {
		blockKernel(kc, a, b, c, ldc, acc)
		return
	}
	microKernel(kc, a[:kc*gemmMR], b[:kc*gemmNR], &sc.tile)
	for i := range mr {
		cr := c[i*ldc : i*ldc+nr]
		tr := sc.tile[i*gemmNR : i*gemmNR+nr]
		if acc {
			for j := range cr {
				cr[j] += tr[j]
			}
		} else {
			copy(cr, tr)
		}
	}
}

// rowPanelKeys returns the keys [first, last) relative to ja that rows
// [i, i+mr) attend to, clipped to [0, nk) (first == last when none).
func (p AttnParams) rowPanelKeys(i, mr, ja, nk int) (first, last int) {
	first, _ = p.keyRange(i)
	_, last = p.keyRange(i + mr - 1)
	first = min(max(first-ja, 0), nk)
	return first, max(min(last-ja, nk), first)
}

// scoresPacked computes s[bq×nk] = A·Bᵀ for the query rows [i0, i0+bq)
// packed in a (depth d) against the key panels kc (columns [ja, ja+nk)),
// zero where a whole tile is masked.
func (sc *attnScratch) scoresPacked(s, a, kc []float32, p AttnParams, i0, bq, ja, nk int) {
	d := p.HeadDim
	np := ceilDiv(nk, gemmNR)
	for ir := 0; ir < bq; ir += gemmMR {
		mr := min(gemmMR, bq-ir)
		first, last := p.rowPanelKeys(i0+ir, mr, ja, nk)
		ap := a[ir*d : ir*d+gemmMR*d]
		for pnl := range np {
			c0 := pnl * gemmNR
			nr := min(gemmNR, nk-c0)
			kcn := d
			if c0 >= last || c0+nr <= first {
				kcn = 0
			}
			sc.tileMul(s[ir*nk+c0:], nk, mr, nr, kcn, ap, kc[pnl*d*gemmNR:], false)
		}
	}
}

// depthPacked writes c[bq×d] (rows ldc apart) = P·X for P [bq×nk] packed in
// a (depth nk) and X the depth layout of a kvPack, from key ja - kp.kb on;
// each row panel sums only over the keys it attends to.
func (sc *attnScratch) depthPacked(c []float32, ldc int, a []float32, kp *kvPack, p AttnParams, i0, bq, ja, nk int) {
	d := p.HeadDim
	stride := (kp.ke - kp.kb) * gemmNR
	off := ja - kp.kb
	for ir := 0; ir < bq; ir += gemmMR {
		mr := min(gemmMR, bq-ir)
		first, last := p.rowPanelKeys(i0+ir, mr, ja, nk)
		ap := a[ir*nk+first*gemmMR:]
		for dp := 0; dp < d; dp += gemmNR {
			bp := kp.depth[(dp/gemmNR)*stride+(off+first)*gemmNR:]
			sc.tileMul(c[ir*ldc+dp:], ldc, mr, min(gemmNR, d-dp), last-first, ap, bp, false)
		}
	}
}

// keyGradPacked adds Xᵀ·Y to acc rows [ja, ja+nk) (rows d apart) for X
// [bq×nk] (dS or P of the query rows [i0, i0+bq)) packed transposed in a
// (depth bq) and Y (Q or dO rows) packed in yb (depth bq): each key panel
// sums only over the queries that attend to it.
func (sc *attnScratch) keyGradPacked(acc, a, yb []float32, p AttnParams, i0, bq, ja, nk int) {
	d := p.HeadDim
	for kr := 0; kr < nk; kr += gemmMR {
		mr := min(gemmMR, nk-kr)
		// Queries attending keys [ja+kr, ja+kr+mr): end(i) > ja+kr and
		// start(i) < ja+kr+mr; both bounds are monotone in i.
		q0, q1 := 0, bq
		for q0 < bq {
			if _, e := p.keyRange(i0 + q0); e > ja+kr {
				break
			}
			q0++
		}
		for q1 > q0 {
			if s, _ := p.keyRange(i0 + q1 - 1); s < ja+kr+mr {
				break
			}
			q1--
		}
		if q1 <= q0 {
			continue
		}
		ap := a[kr*bq+q0*gemmMR:]
		for dp := 0; dp < d; dp += gemmNR {
			bp := yb[(dp/gemmNR)*bq*gemmNR+q0*gemmNR:]
			sc.tileMul(acc[(ja+kr)*d+dp:], d, mr, min(gemmNR, d-dp), q1-q0, ap, bp, true)
		}
	}
}

// packRows packs rows [0, bq) of x (rows ld apart, d wide) as an A operand
// (row panels, depth d).
func packRows(dst *[]float32, x []float32, ld, bq, d int) []float32 {
	buf := grow(dst, ceilDiv(bq, gemmMR)*gemmMR*d)
	packA(buf, f32Src(x, ld, false), 0, bq, 0, d)
	return buf
}

// packDepthRows packs rows [0, bq) of x (rows ld apart, d wide) as a B
// operand with the rows as depth: [dpanel][bq][NR].
func packDepthRows(dst *[]float32, x []float32, ld, bq, d int) []float32 {
	np := ceilDiv(d, gemmNR)
	buf := grow(dst, np*bq*gemmNR)
	src := f32Src(x, ld, false)
	for pnl := range np {
		packB(buf[pnl*bq*gemmNR:(pnl+1)*bq*gemmNR], src, 0, bq, pnl*gemmNR, min(gemmNR, d-pnl*gemmNR))
	}
	return buf
}

// attentionForwardUnit computes the outputs of the query rows [c0, c1) of
// sequence b for the query heads of kv head kh.
func attentionForwardUnit(sc *attnScratch, out, q, k, v []float32, p AttnParams, b, kh, c0, c1 int) {
	d := p.HeadDim
	qw := p.Heads * d
	group := p.Heads / p.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	jlo, jhi := p.blockKeys(c0, c1)
	if jhi > jlo {
		kb := jlo &^ (gemmNR - 1)
		sc.kp.pack(k, p, b, kh, kb, jhi, true, false)
		sc.vp.pack(v, p, b, kh, kb, jhi, false, true)
	}
	for h := kh * group; h < (kh+1)*group; h++ {
		for i0 := c0; i0 < c1; i0 += attnBlockQ {
			i1 := min(c1, i0+attnBlockQ)
			bq := i1 - i0
			q0 := (b*p.SeqQ+i0)*qw + h*d
			blo, bhi := p.blockKeys(i0, i1)
			if bhi <= blo {
				for r := range bq {
					clear(out[q0+r*qw : q0+r*qw+d])
				}
				continue
			}
			ja := blo &^ (gemmNR - 1)
			nk := bhi - ja
			qa := packRows(&sc.qa, q[q0:], qw, bq, d)
			s := grow(&sc.s, bq*nk)
			sc.scoresPacked(s, qa, sc.kp.cols[(ja-sc.kp.kb)*d:], p, i0, bq, ja, nk)
			softmaxBlock(s, nk, p, i0, bq, ja, scale)
			pa := grow(&sc.apack, ceilDiv(bq, gemmMR)*gemmMR*nk)
			packA(pa, f32Src(s, nk, false), 0, bq, 0, nk)
			sc.depthPacked(out[q0:], qw, pa, &sc.vp, p, i0, bq, ja, nk)
		}
	}
}

// attentionBackwardPacked writes the gradients of sequence b for kv head kh:
// dq for its query heads, dk and dv rows (all KVStride of them) for kh.
func attentionBackwardPacked(sc *attnScratch, dq, dk, dv, dout, q, k, v []float32, p AttnParams, b, kh int) {
	d := p.HeadDim
	qw, kw := p.Heads*d, p.KVHeads*d
	group := p.Heads / p.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	dkAcc := grow(&sc.dkAcc, p.SeqKV*d)
	dvAcc := grow(&sc.dvAcc, p.SeqKV*d)
	clear(dkAcc)
	clear(dvAcc)
	jlo, jhi := p.blockKeys(0, p.SeqQ)
	if jhi > jlo {
		kb := jlo &^ (gemmNR - 1)
		sc.kp.pack(k, p, b, kh, kb, jhi, true, true)
		sc.vp.pack(v, p, b, kh, kb, jhi, true, false)
	}
	for h := kh * group; h < (kh+1)*group; h++ {
		for i0 := 0; i0 < p.SeqQ; i0 += attnBlockQ {
			i1 := min(p.SeqQ, i0+attnBlockQ)
			bq := i1 - i0
			q0 := (b*p.SeqQ+i0)*qw + h*d
			blo, bhi := p.blockKeys(i0, i1)
			if bhi <= blo {
				for r := range bq {
					clear(dq[q0+r*qw : q0+r*qw+d])
				}
				continue
			}
			ja := blo &^ (gemmNR - 1)
			nk := bhi - ja
			qa := packRows(&sc.qa, q[q0:], qw, bq, d)
			s := grow(&sc.s, bq*nk)
			sc.scoresPacked(s, qa, sc.kp.cols[(ja-sc.kp.kb)*d:], p, i0, bq, ja, nk)
			softmaxBlock(s, nk, p, i0, bq, ja, scale)
			oa := packRows(&sc.qa, dout[q0:], qw, bq, d)
			dp := grow(&sc.dp, bq*nk)
			sc.scoresPacked(dp, oa, sc.vp.cols[(ja-sc.vp.kb)*d:], p, i0, bq, ja, nk)
			for r := range bq {
				pr, dr := s[r*nk:r*nk+nk], dp[r*nk:r*nk+nk]
				start, end := p.keyRange(i0 + r)
				start, end = max(start-ja, 0), end-ja
				var dsum float32
				if start < end {
					dsum = dotKernel(pr[start:end], dr[start:end])
				}
				// Masked keys have P = 0 and so dS = 0.
				dsoftmaxKernel(dr, pr, dsum, scale)
			}
			// dQ = dS·K
			pa := grow(&sc.apack, ceilDiv(bq, gemmMR)*gemmMR*nk)
			packA(pa, f32Src(dp, nk, false), 0, bq, 0, nk)
			sc.depthPacked(dq[q0:], qw, pa, &sc.kp, p, i0, bq, ja, nk)
			// dK += dSᵀ·Q; dV += Pᵀ·dO
			ta := grow(&sc.apack, ceilDiv(nk, gemmMR)*gemmMR*bq)
			packA(ta, f32Src(dp, nk, true), 0, nk, 0, bq)
			yb := packDepthRows(&sc.bpack, q[q0:], qw, bq, d)
			sc.keyGradPacked(dkAcc, ta, yb, p, i0, bq, ja, nk)
			packA(ta, f32Src(s, nk, true), 0, nk, 0, bq)
			yb = packDepthRows(&sc.bpack, dout[q0:], qw, bq, d)
			sc.keyGradPacked(dvAcc, ta, yb, p, i0, bq, ja, nk)
		}
	}
	for j := range p.KVStride {
		r := (b*p.KVStride+j)*kw + kh*d
		if j < p.SeqKV {
			copy(dk[r:r+d], dkAcc[j*d:j*d+d])
			copy(dv[r:r+d], dvAcc[j*d:j*d+d])
		} else {
			clear(dk[r : r+d])
			clear(dv[r : r+d])
		}
	}
}
