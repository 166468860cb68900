package ptx

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// launch is one kernel launch: everything its workers share.
type launch struct {
	k        *kernel
	code     []inst
	tmpl     []uint64
	params   []byte
	allocs   [][]byte // the context's allocations; nil where freed
	grid     cuda.Dim3
	block    cuda.Dim3
	nthreads int
	shared   int // shared bytes per block, static and dynamic
	poison   bool

	unlimited bool
	budget    atomic.Int64 // instructions left
	limit     int64
	next      atomic.Int64 // next block to run
	stop      atomic.Bool
	executed  atomic.Int64
}

const budgetChunk = 1 << 16

// Thread states.
const (
	stRun uint8 = iota
	stWait
	stDone
)

// Results of worker.run.
const (
	retExit = iota
	retBar
	retErr
)

// worker runs blocks, one at a time, its threads one after another.
type worker struct {
	l      *launch
	nr     int
	regs   []uint64 // nthreads × nr
	pcs    []int32
	state  []uint8
	shared []byte
	local  []byte // nthreads × lsize
	lsize  int
	left   int64
	taken  int64
	ctaid  [3]uint32
	err    error
}

// run executes the launch on up to workers goroutines and returns the
// error of the first failing block (in block order).
func (l *launch) run(workers int) error {
	nblocks := int(l.grid.X) * int(l.grid.Y) * int(l.grid.Z)
	if workers > nblocks {
		workers = nblocks
	}
	if workers < 1 {
		workers = 1
	}
	var (
		mu       sync.Mutex
		firstBad = -1
		firstErr error
		wg       sync.WaitGroup
	)
	body := func() {
		w := l.newWorker()
		for !l.stop.Load() {
			b := int(l.next.Add(1) - 1)
			if b >= nblocks {
				break
			}
			if err := w.block(b); err != nil {
				mu.Lock()
				if firstBad < 0 || b < firstBad {
					firstBad, firstErr = b, err
				}
				mu.Unlock()
				l.stop.Store(true)
			}
		}
		l.executed.Add(w.taken - w.left)
	}
	if workers == 1 {
		body()
		return firstErr
	}
	wg.Add(workers)
	for i := 0; i < workers; i++ {
		go func() {
			defer wg.Done()
			body()
		}()
	}
	wg.Wait()
	return firstErr
}

func (l *launch) newWorker() *worker {
	n := l.nthreads
	nr := len(l.tmpl)
	return &worker{
		l:      l,
		nr:     nr,
		regs:   make([]uint64, n*nr),
		pcs:    make([]int32, n),
		state:  make([]uint8, n),
		shared: make([]byte, l.shared),
		local:  make([]byte, n*l.k.local),
		lsize:  l.k.local,
	}
}

// refill takes instructions from the launch's budget.
func (w *worker) refill() bool {
	if w.l.unlimited {
		w.left += 1 << 62
		w.taken += 1 << 62
		return true
	}
	after := w.l.budget.Add(-budgetChunk)
	got := int64(budgetChunk)
	if after < 0 {
		got += after
		if got <= 0 {
			return false
		}
	}
	w.left += got
	w.taken += got
	return true
}

// block runs block b to completion.
func (w *worker) block(b int) error {
	l := w.l
	g, bd := l.grid, l.block
	w.ctaid = [3]uint32{uint32(b % int(g.X)), uint32(b / int(g.X) % int(g.Y)), uint32(b / int(g.X) / int(g.Y))}
	n, nr := l.nthreads, w.nr
	for t := 0; t < n; t++ {
		r := w.regs[t*nr : (t+1)*nr]
		copy(r, l.tmpl)
		tid := [3]uint32{uint32(t % int(bd.X)), uint32(t / int(bd.X) % int(bd.Y)), uint32(t / int(bd.X) / int(bd.Y))}
		for _, sp := range l.k.specials {
			var v uint32
			switch sp.id {
			case spTidX, spTidY, spTidZ:
				v = tid[sp.id-spTidX]
			case spNtidX:
				v = bd.X
			case spNtidY:
				v = bd.Y
			case spNtidZ:
				v = bd.Z
			case spCtaidX, spCtaidY, spCtaidZ:
				v = w.ctaid[sp.id-spCtaidX]
			case spNctaidX:
				v = g.X
			case spNctaidY:
				v = g.Y
			case spNctaidZ:
				v = g.Z
			case spLaneid:
				v = uint32(t % 32)
			case spWarpid:
				v = uint32(t / 32)
			case spNwarpid:
				v = uint32((n + 31) / 32)
			}
			r[sp.slot] = uint64(v)
		}
		w.pcs[t] = 0
		w.state[t] = stRun
	}
	fill := byte(0)
	if l.poison {
		fill = 0xff
	}
	for i := range w.shared {
		w.shared[i] = fill
	}
	for i := range w.local {
		w.local[i] = fill
	}
	live := n
	for {
		for t := 0; t < n; t++ {
			if w.state[t] != stRun {
				continue
			}
			switch w.run(t) {
			case retExit:
				w.state[t] = stDone
				live--
			case retBar:
				w.state[t] = stWait
			case retErr:
				return w.err
			}
		}
		if live == 0 {
			return nil
		}
		if err := w.release(); err != nil {
			return err
		}
	}
}

// release lets the threads waiting at a barrier go on, after checking
// that they wait at the same one and computing bar.red's reduction.
func (w *worker) release() error {
	l := w.l
	first := -1
	var id uint64
	var kind uint8
	var acc uint64
	counted := false
	for t := 0; t < l.nthreads; t++ {
		if w.state[t] != stWait {
			continue
		}
		r := w.regs[t*w.nr : (t+1)*w.nr]
		in := &l.code[w.pcs[t]-1]
		tid, tk := r[in.s[0]], in.sub
		if in.vec != 0 {
			counted = true
		}
		if first < 0 {
			first, id, kind = t, tid, tk
			if kind == barAnd {
				acc = 1
			}
		} else if (tid != id && !counted) || tk != kind {
			return w.errorf(t, int(w.pcs[t]-1), cuda.ErrLaunchFailed,
				"deadlock: this thread waits at barrier %d while thread %s waits at barrier %d (line %d); on a GPU neither would go on",
				tid, w.tidString(first), id, l.k.lines[w.pcs[first]-1])
		}
		p := r[in.s[2]]
		if in.flags&flNegC != 0 {
			p ^= 1
		}
		switch kind {
		case barPopc:
			acc += p
		case barAnd:
			acc &= p
		case barOr:
			acc |= p
		}
	}
	for t := 0; t < l.nthreads; t++ {
		if w.state[t] != stWait {
			continue
		}
		if kind != barSync {
			in := &l.code[w.pcs[t]-1]
			w.regs[t*w.nr+int(in.d[0])] = acc
		}
		w.state[t] = stRun
	}
	return nil
}

func (w *worker) tid(t int) cuda.Dim3 {
	bd := w.l.block
	return cuda.Dim3{X: uint32(t % int(bd.X)), Y: uint32(t / int(bd.X) % int(bd.Y)), Z: uint32(t / int(bd.X) / int(bd.Y))}
}

func (w *worker) tidString(t int) string {
	d := w.tid(t)
	return fmt.Sprintf("(%d,%d,%d)", d.X, d.Y, d.Z)
}

// errorf makes the error of thread t at instruction pc.
func (w *worker) errorf(t, pc int, code *cuda.Error, format string, args ...any) error {
	k := w.l.k
	e := &Error{Call: "cuLaunchKernel", Kernel: k.name, InThread: true,
		Block:  cuda.Dim3{X: w.ctaid[0], Y: w.ctaid[1], Z: w.ctaid[2]},
		Thread: w.tid(t), Msg: fmt.Sprintf(format, args...), Err: withCall(code, "cuLaunchKernel")}
	if pc >= 0 && pc < len(k.lines) {
		e.Line, e.Instr = int(k.lines[pc]), k.texts[pc]
	}
	return e
}

// fault describes a memory access that failed.
func (w *worker) fault(t, pc int, addr, n uint64, space uint8, local []byte) error {
	misaligned := addr&(n-1) != 0
	var msg string
	where := func(m []byte, what string, base, off uint64) string {
		if off < uint64(len(m)) && n <= uint64(len(m))-off {
			if misaligned {
				return fmt.Sprintf("%d-byte access at 0x%x is misaligned", n, addr)
			}
			return fmt.Sprintf("%d-byte access at 0x%x failed", n, addr)
		}
		if base != 0 {
			return fmt.Sprintf("%d-byte access at 0x%x is out of bounds of %s at 0x%x (%d bytes)", n, addr, what, base, len(m))
		}
		return fmt.Sprintf("%d-byte access at 0x%x is out of bounds of %s (%d bytes)", n, addr, what, len(m))
	}
	global := func() string {
		a := addr - globalBase
		k := a >> 32
		switch {
		case addr < globalBase || k >= uint64(len(w.l.allocs)):
			if addr < 1<<16 {
				return fmt.Sprintf("%d-byte access at 0x%x: not a device address (a null pointer?)", n, addr)
			}
			return fmt.Sprintf("%d-byte access at 0x%x: not in any allocation", n, addr)
		case w.l.allocs[k] == nil:
			return fmt.Sprintf("%d-byte access at 0x%x: allocation 0x%x was freed", n, addr, globalBase+k<<32)
		}
		return where(w.l.allocs[k], "allocation", globalBase+k<<32, a&(windowSize-1))
	}
	switch space {
	case spGlobal:
		msg = global()
	case spShared:
		msg = where(w.shared, "the block's shared memory", 0, addr)
	case spLocal:
		msg = where(local, "the thread's local memory", 0, addr)
	case spParam:
		msg = where(w.l.params, "the kernel's parameters", 0, addr)
	default:
		switch {
		case addr >= globalBase:
			msg = global()
		case addr-sharedWindow < windowSize:
			msg = where(w.shared, "the block's shared memory", sharedWindow, addr-sharedWindow)
		case addr-localWindow < windowSize:
			msg = where(local, "the thread's local memory", localWindow, addr-localWindow)
		case addr < 1<<16:
			msg = fmt.Sprintf("%d-byte access at 0x%x: not a device address (a null pointer?)", n, addr)
		default:
			msg = fmt.Sprintf("%d-byte access at 0x%x: not a device address", n, addr)
		}
	}
	return w.errorf(t, pc, cuda.ErrIllegalAddress, "%s", msg)
}

// spaceSlice is m[off:off+n] if in bounds and aligned, else nil.
func spaceSlice(m []byte, off, n uint64) []byte {
	if off < uint64(len(m)) && n <= uint64(len(m))-off && off&(n-1) == 0 {
		return m[off : off+n : off+n]
	}
	return nil
}

func globalSlice(allocs [][]byte, addr, n uint64) []byte {
	a := addr - globalBase
	if k := a >> 32; k < uint64(len(allocs)) {
		return spaceSlice(allocs[k], a&(windowSize-1), n)
	}
	return nil
}

func (w *worker) generic(addr, n uint64, local []byte) []byte {
	switch {
	case addr >= globalBase:
		return globalSlice(w.l.allocs, addr, n)
	case addr-sharedWindow < windowSize:
		return spaceSlice(w.shared, addr-sharedWindow, n)
	case addr-localWindow < windowSize:
		return spaceSlice(local, addr-localWindow, n)
	}
	return nil
}

func rd(b []byte, size uint8) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func wr(b []byte, size uint8, v uint64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

func load(r []uint64, in *inst, b []byte) {
	sz := in.size
	for e := 0; e < int(in.vec); e++ {
		v := rd(b[e*int(sz):], sz)
		if in.flags&flSigned != 0 {
			v = sext(v, int(in.bits)) & in.mask
		}
		r[in.d[e]] = v
	}
}

func store(r []uint64, in *inst, b []byte) {
	sz := in.size
	for e := 0; e < int(in.vec); e++ {
		wr(b[e*int(sz):], sz, r[in.d[e]])
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// run executes thread t until it exits, reaches a barrier or fails.
func (w *worker) run(t int) int {
	l := w.l
	nr := w.nr
	r := w.regs[t*nr : t*nr+nr : t*nr+nr]
	local := w.local[t*w.lsize : (t+1)*w.lsize : (t+1)*w.lsize]
	code := l.code
	allocs := l.allocs
	shared := w.shared
	pc := int(w.pcs[t])
	left := w.left
	for {
		in := &code[pc]
		pc++
		left--
		if left < 0 {
			w.left = 0
			if !w.refill() {
				w.err = w.errorf(t, pc-1, ErrLaunchTimeout, "the launch ran more than %d instructions (Options.MaxInstructions): does the kernel loop forever?", l.limit)
				return retErr
			}
			left = w.left - 1
		}
		if r[in.guard] == uint64(in.skip) {
			continue
		}
		switch in.op {
		case opNop:
		case opExit:
			w.left = left
			return retExit
		case opBra:
			pc = int(in.off)
		case opBar:
			w.pcs[t] = int32(pc)
			w.left = left
			return retBar
		case opTrap:
			w.left = left
			w.err = w.errorf(t, pc-1, cuda.ErrLaunchFailed, "trap")
			return retErr

		case opMov:
			r[in.d[0]] = r[in.s[0]] & in.mask
		case opPack:
			var v uint64
			for e := int(in.vec) - 1; e >= 0; e-- {
				v = v<<in.bits | r[in.s[e]]&in.mask
			}
			r[in.d[0]] = v
		case opUnpack:
			v := r[in.s[0]]
			for e := 0; e < int(in.vec); e++ {
				r[in.d[e]] = v & in.mask
				v >>= in.bits
			}

		case opAdd:
			r[in.d[0]] = (r[in.s[0]] + r[in.s[1]]) & in.mask
		case opSub:
			r[in.d[0]] = (r[in.s[0]] - r[in.s[1]]) & in.mask
		case opMul:
			r[in.d[0]] = r[in.s[0]] * r[in.s[1]] & in.mask
		case opMad:
			r[in.d[0]] = (r[in.s[0]]*r[in.s[1]] + r[in.s[2]]) & in.mask
		case opAnd:
			r[in.d[0]] = r[in.s[0]] & r[in.s[1]] & in.mask
		case opOr:
			r[in.d[0]] = (r[in.s[0]] | r[in.s[1]]) & in.mask
		case opXor:
			r[in.d[0]] = (r[in.s[0]] ^ r[in.s[1]]) & in.mask
		case opNot:
			r[in.d[0]] = ^r[in.s[0]] & in.mask
		case opCnot:
			r[in.d[0]] = b2u(r[in.s[0]]&in.mask == 0)
		case opNeg:
			r[in.d[0]] = -r[in.s[0]] & in.mask
		case opShl:
			n := r[in.s[1]] & 0xffffffff
			if n >= uint64(in.bits) {
				r[in.d[0]] = 0
			} else {
				r[in.d[0]] = r[in.s[0]] << n & in.mask
			}
		case opShrU:
			n := r[in.s[1]] & 0xffffffff
			if n >= uint64(in.bits) {
				r[in.d[0]] = 0
			} else {
				r[in.d[0]] = (r[in.s[0]] & in.mask) >> n
			}
		case opShrS:
			n := r[in.s[1]] & 0xffffffff
			if n >= uint64(in.bits) {
				n = uint64(in.bits) - 1
			}
			r[in.d[0]] = uint64(int64(sext(r[in.s[0]], int(in.bits)))>>n) & in.mask
		case opAddCC, opSubCC:
			a, b := r[in.s[0]]&in.mask, r[in.s[1]]&in.mask
			var cin uint64
			if in.sub == 1 {
				cin = r[in.s[2]] & 1
			}
			var v, cout uint64
			switch {
			case in.op == opAddCC && in.bits == 64:
				v, cout = bits.Add64(a, b, cin)
			case in.op == opAddCC:
				v = a + b + cin
				cout = v >> 32
			case in.bits == 64:
				v, cout = bits.Sub64(a, b, cin)
			default:
				v, _ = bits.Sub64(a, b, cin)
				cout = v >> 63 // borrow out of 32 bits
			}
			r[in.d[0]] = v & in.mask
			if in.flags&flCC != 0 {
				r[in.d[1]] = cout & 1
			}
		case opAddSat:
			a, b := int64(int32(r[in.s[0]])), int64(int32(r[in.s[1]]))
			v := a + b
			if in.sub == 1 {
				v = a - b
			}
			v = max(math.MinInt32, min(math.MaxInt32, v))
			r[in.d[0]] = uint64(v) & 0xffffffff

		case opMulHiU, opMadHiU:
			var v uint64
			if in.bits == 64 {
				v, _ = bits.Mul64(r[in.s[0]], r[in.s[1]])
			} else {
				v = (r[in.s[0]] & in.mask) * (r[in.s[1]] & in.mask) >> in.bits
			}
			if in.op == opMadHiU {
				v += r[in.s[2]]
			}
			r[in.d[0]] = v & in.mask
		case opMulHiS, opMadHiS:
			var v uint64
			a, b := r[in.s[0]], r[in.s[1]]
			if in.bits == 64 {
				v, _ = bits.Mul64(a, b)
				if int64(a) < 0 {
					v -= b
				}
				if int64(b) < 0 {
					v -= a
				}
			} else {
				v = uint64(int64(sext(a, int(in.bits))) * int64(sext(b, int(in.bits))) >> in.bits)
			}
			if in.op == opMadHiS {
				v += r[in.s[2]]
			}
			r[in.d[0]] = v & in.mask
		case opMulWideU, opMadWideU:
			m := mask(int(in.bits))
			v := (r[in.s[0]] & m) * (r[in.s[1]] & m)
			if in.op == opMadWideU {
				v += r[in.s[2]]
			}
			r[in.d[0]] = v & in.mask
		case opMulWideS, opMadWideS:
			v := uint64(int64(sext(r[in.s[0]], int(in.bits))) * int64(sext(r[in.s[1]], int(in.bits))))
			if in.op == opMadWideS {
				v += r[in.s[2]]
			}
			r[in.d[0]] = v & in.mask
		case opDivU:
			a, b := r[in.s[0]]&in.mask, r[in.s[1]]&in.mask
			if b == 0 {
				r[in.d[0]] = in.mask
			} else {
				r[in.d[0]] = a / b
			}
		case opRemU:
			a, b := r[in.s[0]]&in.mask, r[in.s[1]]&in.mask
			if b == 0 {
				r[in.d[0]] = a
			} else {
				r[in.d[0]] = a % b
			}
		case opDivS:
			a, b := int64(sext(r[in.s[0]], int(in.bits))), int64(sext(r[in.s[1]], int(in.bits)))
			if b == 0 {
				r[in.d[0]] = in.mask
			} else {
				r[in.d[0]] = uint64(a/b) & in.mask
			}
		case opRemS:
			a, b := int64(sext(r[in.s[0]], int(in.bits))), int64(sext(r[in.s[1]], int(in.bits)))
			if b == 0 {
				r[in.d[0]] = uint64(a) & in.mask
			} else {
				r[in.d[0]] = uint64(a%b) & in.mask
			}
		case opMinU:
			r[in.d[0]] = min(r[in.s[0]]&in.mask, r[in.s[1]]&in.mask)
		case opMaxU:
			r[in.d[0]] = max(r[in.s[0]]&in.mask, r[in.s[1]]&in.mask)
		case opMinS:
			r[in.d[0]] = uint64(min(int64(sext(r[in.s[0]], int(in.bits))), int64(sext(r[in.s[1]], int(in.bits))))) & in.mask
		case opMaxS:
			r[in.d[0]] = uint64(max(int64(sext(r[in.s[0]], int(in.bits))), int64(sext(r[in.s[1]], int(in.bits))))) & in.mask
		case opAbs:
			a := int64(sext(r[in.s[0]], int(in.bits)))
			if a < 0 {
				a = -a
			}
			r[in.d[0]] = uint64(a) & in.mask
		case opPopc:
			r[in.d[0]] = uint64(bits.OnesCount64(r[in.s[0]] & in.mask))
		case opClz:
			r[in.d[0]] = uint64(bits.LeadingZeros64(r[in.s[0]]&in.mask) - (64 - int(in.bits)))
		case opBrev:
			r[in.d[0]] = bits.Reverse64(r[in.s[0]]&in.mask) >> (64 - in.bits)
		case opBfind:
			r[in.d[0]] = bfind(r[in.s[0]], int(in.bits), in.flags&flSigned != 0, in.sub == 1)
		case opBfe:
			r[in.d[0]] = bfe(r[in.s[0]], r[in.s[1]], r[in.s[2]], int(in.bits), in.flags&flSigned != 0)
		case opBfi:
			r[in.d[0]] = bfi(r[in.s[0]], r[in.s[1]], r[in.s[2]], r[in.s[3]], int(in.bits))
		case opPrmt:
			r[in.d[0]] = uint64(prmt(uint32(r[in.s[0]]), uint32(r[in.s[1]]), uint32(r[in.s[2]]), in.sub))
		case opShf:
			r[in.d[0]] = uint64(shf(uint32(r[in.s[0]]), uint32(r[in.s[1]]), uint32(r[in.s[2]]), in.sub))

		case opSetpU, opSetpS, opSetpF:
			var res bool
			switch in.op {
			case opSetpU:
				res = cmpU(in.sub, r[in.s[0]]&in.mask, r[in.s[1]]&in.mask)
			case opSetpS:
				res = cmpS(in.sub, int64(sext(r[in.s[0]], int(in.bits))), int64(sext(r[in.s[1]], int(in.bits))))
			default:
				x, y := floatVal(r[in.s[0]], in.bits, in.flags), floatVal(r[in.s[1]], in.bits, in.flags)
				res = cmpF(in.sub, x, y)
			}
			c := r[in.s[2]]
			if in.flags&flNegC != 0 {
				c ^= 1
			}
			p, q := b2u(res), b2u(!res)
			switch in.rnd {
			case bAnd:
				p, q = p&c, q&c
			case bOr:
				p, q = p|c, q|c
			case bXor:
				p, q = p^c, q^c
			}
			r[in.d[0]] = p
			r[in.d[1]] = q
		case opSelp:
			if r[in.s[2]] != 0 {
				r[in.d[0]] = r[in.s[0]]
			} else {
				r[in.d[0]] = r[in.s[1]]
			}
		case opTestp:
			r[in.d[0]] = b2u(testp(in.sub, floatVal(r[in.s[0]], in.bits, 0), in.bits))

		case opZext:
			r[in.d[0]] = r[in.s[0]] & in.mask
		case opSext:
			r[in.d[0]] = sext(r[in.s[0]], int(in.bits)) & in.mask
		case opCvt:
			r[in.d[0]] = cvt(in, r[in.s[0]], r[in.s[1]])

		case opAddF32:
			r[in.d[0]] = res32(f32(r[in.s[0]]) + f32(r[in.s[1]]))
		case opSubF32:
			r[in.d[0]] = res32(f32(r[in.s[0]]) - f32(r[in.s[1]]))
		case opMulF32:
			r[in.d[0]] = res32(f32(r[in.s[0]]) * f32(r[in.s[1]]))
		case opFmaF32:
			r[in.d[0]] = res32(fma32(f32(r[in.s[0]]), f32(r[in.s[1]]), f32(r[in.s[2]])))
		case opDivF32:
			r[in.d[0]] = res32(f32(r[in.s[0]]) / f32(r[in.s[1]]))
		case opSqrtF32:
			r[in.d[0]] = res32(float32(math.Sqrt(float64(f32(r[in.s[0]])))))
		case opMinF32:
			r[in.d[0]] = res32(float32(minF(float64(f32(r[in.s[0]])), float64(f32(r[in.s[1]])))))
		case opMaxF32:
			r[in.d[0]] = res32(float32(maxF(float64(f32(r[in.s[0]])), float64(f32(r[in.s[1]])))))
		case opAddF64:
			r[in.d[0]] = res64(f64(r[in.s[0]]) + f64(r[in.s[1]]))
		case opSubF64:
			r[in.d[0]] = res64(f64(r[in.s[0]]) - f64(r[in.s[1]]))
		case opMulF64:
			r[in.d[0]] = res64(f64(r[in.s[0]]) * f64(r[in.s[1]]))
		case opFmaF64:
			r[in.d[0]] = res64(math.FMA(f64(r[in.s[0]]), f64(r[in.s[1]]), f64(r[in.s[2]])))
		case opDivF64:
			r[in.d[0]] = res64(f64(r[in.s[0]]) / f64(r[in.s[1]]))
		case opSqrtF64:
			r[in.d[0]] = res64(math.Sqrt(f64(r[in.s[0]])))
		case opMinF64:
			r[in.d[0]] = res64(minF(f64(r[in.s[0]]), f64(r[in.s[1]])))
		case opMaxF64:
			r[in.d[0]] = res64(maxF(f64(r[in.s[0]]), f64(r[in.s[1]])))
		case opNegF:
			r[in.d[0]] = (r[in.s[0]] ^ in.off) & in.mask
		case opAbsF:
			r[in.d[0]] = r[in.s[0]] &^ in.off & in.mask
		case opCopysign:
			r[in.d[0]] = (r[in.s[1]]&^in.off | r[in.s[0]]&in.off) & in.mask
		case opFloat:
			r[in.d[0]] = floatOp(in.sub, in.rnd, in.flags, in.bits == 64, r[in.s[0]], r[in.s[1]], r[in.s[2]])

		case opLdGlobal:
			addr := r[in.s[0]] + in.off
			b := globalSlice(allocs, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spGlobal, local)
				return retErr
			}
			load(r, in, b)
		case opLdShared:
			addr := r[in.s[0]] + in.off
			b := spaceSlice(shared, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spShared, local)
				return retErr
			}
			load(r, in, b)
		case opLdLocal:
			addr := r[in.s[0]] + in.off
			b := spaceSlice(local, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spLocal, local)
				return retErr
			}
			load(r, in, b)
		case opLdParam:
			addr := r[in.s[0]] + in.off
			b := spaceSlice(l.params, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spParam, local)
				return retErr
			}
			load(r, in, b)
		case opLdGeneric:
			addr := r[in.s[0]] + in.off
			b := w.generic(addr, uint64(in.size)*uint64(in.vec), local)
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spGeneric, local)
				return retErr
			}
			load(r, in, b)
		case opStGlobal:
			addr := r[in.s[0]] + in.off
			b := globalSlice(allocs, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spGlobal, local)
				return retErr
			}
			store(r, in, b)
		case opStShared:
			addr := r[in.s[0]] + in.off
			b := spaceSlice(shared, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spShared, local)
				return retErr
			}
			store(r, in, b)
		case opStLocal:
			addr := r[in.s[0]] + in.off
			b := spaceSlice(local, addr, uint64(in.size)*uint64(in.vec))
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spLocal, local)
				return retErr
			}
			store(r, in, b)
		case opStGeneric:
			addr := r[in.s[0]] + in.off
			b := w.generic(addr, uint64(in.size)*uint64(in.vec), local)
			if b == nil {
				w.left = left
				w.err = w.fault(t, pc-1, addr, uint64(in.size)*uint64(in.vec), spGeneric, local)
				return retErr
			}
			store(r, in, b)
		default:
			w.left = left
			w.err = w.errorf(t, pc-1, cuda.ErrLaunchFailed, "internal error: opcode %d", in.op)
			return retErr
		}
	}
}

func cmpU(c uint8, x, y uint64) bool {
	switch c {
	case cEq:
		return x == y
	case cNe:
		return x != y
	case cLt:
		return x < y
	case cLe:
		return x <= y
	case cGt:
		return x > y
	}
	return x >= y
}

func cmpS(c uint8, x, y int64) bool {
	switch c {
	case cEq:
		return x == y
	case cNe:
		return x != y
	case cLt:
		return x < y
	case cLe:
		return x <= y
	case cGt:
		return x > y
	}
	return x >= y
}

func cmpF(c uint8, x, y float64) bool {
	nan := x != x || y != y
	switch c {
	case cEq:
		return !nan && x == y
	case cNe:
		return !nan && x != y
	case cLt:
		return x < y
	case cLe:
		return x <= y
	case cGt:
		return x > y
	case cGe:
		return x >= y
	case cEqu:
		return nan || x == y
	case cNeu:
		return nan || x != y
	case cLtu:
		return nan || x < y
	case cLeu:
		return nan || x <= y
	case cGtu:
		return nan || x > y
	case cGeu:
		return nan || x >= y
	case cNum:
		return !nan
	}
	return nan
}

// floatVal reads an f32 (bits 32) or f64 register as float64, flushing
// f32 subnormals for .ftz.
func floatVal(v uint64, bitsW uint8, flags uint8) float64 {
	if bitsW == 64 {
		return f64(v)
	}
	x := f32(v)
	if flags&flFtz != 0 {
		x = ftz32(x)
	}
	return float64(x)
}

func testp(op uint8, x float64, bitsW uint8) bool {
	nan := x != x
	inf := math.IsInf(x, 0)
	tiny := 0x1p-1022 // smallest normal
	if bitsW == 32 {
		tiny = 0x1p-126
	}
	switch op {
	case tFinite:
		return !nan && !inf
	case tInfinite:
		return inf
	case tNumber:
		return !nan
	case tNotANumber:
		return nan
	case tNormal:
		return !nan && !inf && math.Abs(x) >= tiny
	}
	return x != 0 && math.Abs(x) < tiny
}

func bfind(a uint64, w int, signed, shiftamt bool) uint64 {
	a &= mask(w)
	if signed && a>>(w-1)&1 == 1 {
		a = ^a & mask(w)
	}
	if a == 0 {
		return 0xffffffff
	}
	d := uint64(63 - bits.LeadingZeros64(a))
	if shiftamt {
		d = uint64(w-1) - d
	}
	return d
}

func bfe(a, pos, ln uint64, w int, signed bool) uint64 {
	pos &= 0xff
	ln &= 0xff
	msb := uint64(w - 1)
	a &= mask(w)
	if ln == 0 {
		return 0
	}
	var sbit uint64
	if signed {
		sbit = a >> min(pos+ln-1, msb) & 1
	}
	var cnt uint64
	if pos <= msb {
		cnt = min(ln, msb+1-pos)
	}
	var f uint64
	if cnt > 0 {
		f = a >> pos & mask(int(cnt))
	}
	if sbit == 1 {
		f |= ^mask(int(cnt))
	}
	return f & mask(w)
}

func bfi(a, b, pos, ln uint64, w int) uint64 {
	pos &= 0xff
	ln &= 0xff
	f := b & mask(w)
	if pos >= uint64(w) {
		return f
	}
	m := mask(int(min(ln, uint64(w)-pos))) << pos
	return f&^m | a<<pos&m
}

// prmtTable gives, for each mode other than the default and each
// selector c[1:0], the source bytes of d.b0..d.b3.
var prmtTable = [7][4][4]uint8{
	1: {{0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}}, // f4e
	2: {{0, 7, 6, 5}, {1, 0, 7, 6}, {2, 1, 0, 7}, {3, 2, 1, 0}}, // b4e
	3: {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}}, // rc8
	4: {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}}, // ecl
	5: {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}}, // ecr
	6: {{0, 1, 0, 1}, {2, 3, 2, 3}, {0, 1, 0, 1}, {2, 3, 2, 3}}, // rc16
}

func prmt(a, b, c uint32, mode uint8) uint32 {
	tmp := uint64(b)<<32 | uint64(a)
	var d uint32
	for i := 0; i < 4; i++ {
		var v uint32
		if mode == 0 {
			sel := c >> (4 * i) & 0xf
			v = uint32(tmp>>(8*(sel&7))) & 0xff
			if sel&8 != 0 {
				if v&0x80 != 0 {
					v = 0xff
				} else {
					v = 0
				}
			}
		} else {
			v = uint32(tmp>>(8*prmtTable[mode][c&3][i])) & 0xff
		}
		d |= v << (8 * i)
	}
	return d
}

// shf is the funnel shift; sub bit 0: right, bit 1: clamp.
func shf(a, b, c uint32, sub uint8) uint32 {
	n := c
	if sub&2 != 0 {
		n = min(n, 32)
	} else {
		n &= 31
	}
	v := uint64(b)<<32 | uint64(a)
	if sub&1 != 0 {
		return uint32(v >> n)
	}
	return uint32(v << n >> 32)
}

// cvtFloat reads a float register of kind k as float64.
func cvtFloat(v uint64, k kind, ftz bool) float64 {
	switch k {
	case kF32:
		x := f32(v)
		if ftz {
			x = ftz32(x)
		}
		return float64(x)
	case kF64:
		return f64(v)
	}
	return toFloat64(v&0xffff, fmtOf(k))
}

// cvt is opCvt: every conversion but plain integer extension.
func cvt(in *inst, v, v2 uint64) uint64 {
	dk, sk := in.dk, in.sk
	ftz := in.flags&flFtz != 0
	switch in.sub {
	case cvtII:
		sb, db := sk.bits(), dk.bits()
		var res uint64
		if sk.signed() {
			x := int64(sext(v, sb))
			lo, hi := int64(0), int64(mask(db))
			if dk.signed() {
				lo, hi = -int64(1)<<(db-1), int64(mask(db-1))
			} else if db == 64 {
				hi = math.MaxInt64
			}
			switch {
			case x < lo:
				x = lo
			case x > hi && !(db == 64 && !dk.signed()):
				x = hi
			}
			res = uint64(x)
		} else {
			x := v & mask(sb)
			hi := mask(db)
			if dk.signed() {
				hi = mask(db - 1)
			}
			res = min(x, hi)
		}
		if dk.signed() {
			return sext(res, db) & in.mask
		}
		return res & mask(db)
	case cvtIF:
		x := v & mask(sk.bits())
		if sk.signed() {
			x = sext(x, sk.bits())
		}
		res := intToFloat(x, sk.signed(), fmtOf(dk), in.rnd)
		return finishFloat(in, res)
	case cvtFI:
		x := cvtFloat(v, sk, ftz)
		res := floatToInt(x, in.rnd, dk.bits(), dk.signed())
		if dk.signed() {
			return sext(res, dk.bits()) & in.mask
		}
		return res
	case cvtPack:
		f := fmtOf(dk)
		hi := fromFloat64(cvtFloat(v, sk, ftz), f, in.rnd, in.flags&flSatFin != 0)
		lo := fromFloat64(cvtFloat(v2, sk, ftz), f, in.rnd, in.flags&flSatFin != 0)
		return relu16(in, hi)<<16 | relu16(in, lo)
	}
	// cvtFF
	x := cvtFloat(v, sk, ftz)
	if in.flags&flIntRnd != 0 {
		x = roundInt(x, in.rnd)
	}
	rnd := in.rnd
	if rnd == rNone || in.flags&flIntRnd != 0 {
		rnd = rRN // exact here
	}
	res := fromFloat64(x, fmtOf(dk), rnd, in.flags&flSatFin != 0)
	return finishFloat(in, res)
}

// relu16 applies .relu to an f16/bf16 result.
func relu16(in *inst, h uint64) uint64 {
	if in.flags&flRelu != 0 && h&0x8000 != 0 && toFloat64(h, fmtOf(in.dk)) == toFloat64(h, fmtOf(in.dk)) {
		return 0
	}
	return h
}

// finishFloat applies .ftz, .sat and .relu to a float cvt result.
func finishFloat(in *inst, res uint64) uint64 {
	dk := in.dk
	switch dk {
	case kF32:
		x := f32(res)
		if in.flags&flFtz != 0 {
			x = ftz32(x)
		}
		if in.flags&flSat != 0 {
			x = sat32(x)
		}
		return res32(x)
	case kF64:
		x := f64(res)
		if in.flags&flSat != 0 {
			x = sat64(x)
		}
		return res64(x)
	}
	if in.flags&flSat != 0 {
		x := sat64(toFloat64(res, fmtOf(dk)))
		res = fromFloat64(x, fmtOf(dk), rRN, false)
	}
	return relu16(in, res)
}
