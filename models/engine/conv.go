package engine

// Conv2d is a 2-D convolution on channels-last (NHWC) activations with
// PyTorch's weight layout [Out, In, K, K], computed as im2col + one GEMM:
// every output position's receptive field becomes a row of cols in
// (channel, ky, kx) order, matching a weight row, so out = cols·Wᵀ + b.
type Conv2d[T Float] struct {
	In, Out, K, Stride, Pad int
	W                       *Param[T] // [Out, In, K, K]
	B                       *Param[T] // [Out]; nil without bias
	lin                     Linear[T]

	c    convCall[T] // the running im2col, for the pool task
	task func(int)
}

type convCall[T Float] struct {
	cols, x []T
	H, W    int
	back    bool
}

// NewConv2d registers name.weight [out, in, k, k] and, with bias, name.bias.
func NewConv2d[T Float](ps *Params[T], name string, in, out, k, stride, pad int, bias bool) *Conv2d[T] {
	if k <= 0 || stride <= 0 || pad < 0 {
		panic("engine: Conv2d " + name + ": bad kernel/stride/padding")
	}
	c := &Conv2d[T]{In: in, Out: out, K: k, Stride: stride, Pad: pad, W: ps.Add(name+".weight", out, in, k, k)}
	if bias {
		c.B = ps.Add(name+".bias", out)
	}
	c.lin = Linear[T]{In: in * k * k, Out: out, W: c.W, B: c.B}
	c.task = c.image
	return c
}

// OutSize is the output grid for an h×w input.
func (c *Conv2d[T]) OutSize(h, w int) (ho, wo int) {
	return (h+2*c.Pad-c.K)/c.Stride + 1, (w+2*c.Pad-c.K)/c.Stride + 1
}

// ColsLen is the length of the im2col buffer for a batch of B h×w inputs.
func (c *Conv2d[T]) ColsLen(B, h, w int) int {
	ho, wo := c.OutSize(h, w)
	return B * ho * wo * c.In * c.K * c.K
}

// Forward convolves x [B, H, W, In] into out [B, Ho, Wo, Out]; cols
// [B·Ho·Wo, In·K·K] is saved for Backward.
func (c *Conv2d[T]) Forward(out, cols, x []T, B, H, W int) {
	ho, wo := c.OutSize(H, W)
	checkLen("Conv2d.Forward x", x, B*H*W*c.In)
	checkLen("Conv2d.Forward cols", cols, c.ColsLen(B, H, W))
	checkLen("Conv2d.Forward out", out, B*ho*wo*c.Out)
	c.im2col(cols, x, B, H, W, false)
	c.lin.Forward(out, cols)
}

// Backward adds dx (may be nil), dW and db from dout [B, Ho, Wo, Out]; dcols
// is scratch of len(cols).
func (c *Conv2d[T]) Backward(dx, dout, cols, dcols []T, B, H, W int) {
	checkLen("Conv2d.Backward cols", cols, c.ColsLen(B, H, W))
	if dx == nil {
		c.lin.Backward(nil, dout, cols)
		return
	}
	checkLen("Conv2d.Backward dx", dx, B*H*W*c.In)
	checkLen("Conv2d.Backward dcols", dcols, len(cols))
	// dcols = dout·W overwrites the scratch (beta 0) instead of clearing it
	// and accumulating: one pass over B·Ho·Wo·In·K·K elements fewer.
	n := len(cols) / c.lin.In
	ParallelGemm(c.W.arena.Pool, false, false, n, c.lin.In, c.Out, 1, dout, c.Out, c.W.Data(), c.lin.In, 0, dcols, c.lin.In)
	c.lin.Backward(nil, dout, cols)
	c.im2col(dcols, dx, B, H, W, true)
}

// im2col gathers x into cols, or (back) scatter-adds cols into x, one image
// per pool task (images touch disjoint parts of x and cols).
func (c *Conv2d[T]) im2col(cols, x []T, B, H, W int, back bool) {
	c.c = convCall[T]{cols: cols, x: x, H: H, W: W, back: back}
	c.W.arena.Pool.For(B, c.task)
	c.c = convCall[T]{}
}

func (c *Conv2d[T]) image(b int) {
	cols, x, H, W, back := c.c.cols, c.c.x, c.c.H, c.c.W, c.c.back
	ho, wo := c.OutSize(H, W)
	k, cin := c.K, c.In
	row := cin * k * k
	for oy := range ho {
		for ox := range wo {
			r := cols[((b*ho+oy)*wo+ox)*row:][:row]
			for ky := range k {
				y := oy*c.Stride - c.Pad + ky
				for kx := range k {
					xx := ox*c.Stride - c.Pad + kx
					col := r[ky*k+kx:] // channel ch at col[ch·k·k]
					kk := k * k
					if y < 0 || y >= H || xx < 0 || xx >= W { // padding
						if !back {
							for ch := range cin {
								col[ch*kk] = 0
							}
						}
						continue
					}
					px := x[((b*H+y)*W+xx)*cin:][:cin]
					if back {
						for ch := range px {
							px[ch] += col[ch*kk]
						}
					} else {
						for ch, v := range px {
							col[ch*kk] = v
						}
					}
				}
			}
		}
	}
}

// Patchify cuts NCHW images img [B, C, R, R] into non-overlapping P×P
// patches: out [B·g·g, C·P·P] with g = R/P, patches in row-major grid order,
// each flattened in (c, py, px) order (a stride-P convolution's receptive
// fields, so a Linear on out is the ViT patch embedding). Images are model
// inputs, so there is no backward.
func Patchify[T Float](out, img []T, B, C, R, P int) {
	if P <= 0 || R%P != 0 {
		panic("engine: Patchify: image size " + itoa(R) + " is not a multiple of patch " + itoa(P))
	}
	g := R / P
	checkLen("Patchify img", img, B*C*R*R)
	checkLen("Patchify out", out, B*g*g*C*P*P)
	i := 0
	for b := range B {
		for gy := range g {
			for gx := range g {
				for ch := range C {
					for py := range P {
						src := img[((b*C+ch)*R+gy*P+py)*R+gx*P:][:P]
						i += copy(out[i:i+P], src)
					}
				}
			}
		}
	}
}

// AdaptiveAvgPool2d averages x [B, H, W, C] (NHWC) into out [B, oh, ow, C]
// with PyTorch's adaptive_avg_pool2d cells: output row i spans input rows
// [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉), likewise for columns.
func AdaptiveAvgPool2d[T Float](out, x []T, B, H, W, C, oh, ow int) {
	checkLen("AdaptiveAvgPool2d x", x, B*H*W*C)
	checkLen("AdaptiveAvgPool2d out", out, B*oh*ow*C)
	clear(out)
	poolCells(B, H, W, C, oh, ow, func(o, in int, w T) {
		AddScaled(out[o:o+C], x[in:in+C], w)
	})
}

// AdaptiveAvgPool2dBackward adds dx [B, H, W, C] from dout [B, oh, ow, C].
func AdaptiveAvgPool2dBackward[T Float](dx, dout []T, B, H, W, C, oh, ow int) {
	checkLen("AdaptiveAvgPool2dBackward dx", dx, B*H*W*C)
	checkLen("AdaptiveAvgPool2dBackward dout", dout, B*oh*ow*C)
	poolCells(B, H, W, C, oh, ow, func(o, in int, w T) {
		AddScaled(dx[in:in+C], dout[o:o+C], w)
	})
}

// poolCells calls f(outOffset, inOffset, 1/cellArea) for every input
// position of every output cell.
func poolCells[T Float](B, H, W, C, oh, ow int, f func(o, in int, w T)) {
	for b := range B {
		for i := range oh {
			y0, y1 := i*H/oh, ((i+1)*H+oh-1)/oh
			for j := range ow {
				x0, x1 := j*W/ow, ((j+1)*W+ow-1)/ow
				w := 1 / T((y1-y0)*(x1-x0))
				o := ((b*oh+i)*ow + j) * C
				for y := y0; y < y1; y++ {
					for x := x0; x < x1; x++ {
						f(o, ((b*H+y)*W+x)*C, w)
					}
				}
			}
		}
	}
}
