package cuda

import (
	"errors"
	"fmt"
	"math"
)

// The connectors of models/connector on the GPU, each with the host
// engine's definition (see that package's files for the maths). Every one
// reads ip.grid [K·h·w, Dv] and writes ip.tokens [K·N, D]; backward reads
// ip.dtokens and, with dgrid, adds the grid's gradient into ip.dgrid.

// side is √N, the pooled grid side of avgpool and cabstractor (validated by
// models.Config).
func (ip *imagePath) side() int { return int(math.Round(math.Sqrt(float64(ip.N)))) }

// avgPool: adaptive average pooling to n×n, then proj.
type avgPool struct {
	ip              *imagePath
	projW, projB    int
	pooled, dpooled Buf // [maxK·N, Dv]
}

func newAvgPool(ip *imagePath, o *offsets) deviceConnector {
	c := &avgPool{ip: ip}
	c.projW, c.projB = o.linear("connector.proj")
	k := ip.maxK * ip.N * ip.dv
	c.pooled, c.dpooled = ip.take(k), ip.take(k)
	return c
}

func (c *avgPool) forward(K int) error {
	ip, n := c.ip, c.ip.side()
	return errors.Join(ip.d.avgPool(c.pooled, ip.grid, K, ip.g, ip.g, ip.dv, n, n),
		ip.affine(ip.tokens, c.pooled, c.projW, c.projB, K*ip.N, ip.dv, ip.D))
}

func (c *avgPool) backward(K int, dgrid bool) error {
	ip, n := c.ip, c.ip.side()
	if !dgrid {
		return ip.affineBack(Buf{}, 0, ip.dtokens, c.pooled, c.projW, c.projB, K*ip.N, ip.dv, ip.D)
	}
	return errors.Join(ip.affineBack(c.dpooled, 0, ip.dtokens, c.pooled, c.projW, c.projB, K*ip.N, ip.dv, ip.D),
		ip.d.avgPoolBackward(ip.dgrid, c.dpooled, K, ip.g, ip.g, ip.dv, n, n))
}

// mlpConnector: per patch fc1 (Dv → D), GELU, fc2 (D → D); N = h·w.
type mlpConnector struct {
	ip                     *imagePath
	fc1W, fc1B, fc2W, fc2B int
	hid, act, dact         Buf // [maxK·N, D]
}

func newMLPConnector(ip *imagePath, o *offsets) deviceConnector {
	c := &mlpConnector{ip: ip}
	c.fc1W, c.fc1B = o.linear("connector.fc1")
	c.fc2W, c.fc2B = o.linear("connector.fc2")
	k := ip.maxK * ip.N * ip.D
	c.hid, c.act, c.dact = ip.take(k), ip.take(k), ip.take(k)
	return c
}

func (c *mlpConnector) forward(K int) error {
	ip, rows := c.ip, K*c.ip.N
	return errors.Join(ip.affine(c.hid, ip.grid, c.fc1W, c.fc1B, rows, ip.dv, ip.D),
		ip.d.gelu(c.act, c.hid, rows*ip.D),
		ip.affine(ip.tokens, c.act, c.fc2W, c.fc2B, rows, ip.D, ip.D))
}

func (c *mlpConnector) backward(K int, dgrid bool) error {
	ip, rows := c.ip, K*c.ip.N
	dx := Buf{}
	if dgrid {
		dx = ip.dgrid
	}
	return errors.Join(ip.affineBack(c.dact, 0, ip.dtokens, c.act, c.fc2W, c.fc2B, rows, ip.D, ip.D),
		ip.d.geluBackward(c.dact, c.hid, rows*ip.D),
		ip.affineBack(dx, 1, c.dact, ip.grid, c.fc1W, c.fc1B, rows, ip.dv, ip.D))
}

// attnPool: N learned queries cross-attend to the LayerNorm-ed patches,
// then wo and proj. The projected queries q1 [N, Dv] are shared by every
// image: the q pointer arrays all point into q1, and their gradient is the
// sum of the images' dq.
type attnPool struct {
	ip                                     *imagePath
	queries, normW, normB                  int
	wqW, wqB, wkW, wkB, wvW, wvB, woW, woB int
	projW, projB                           int
	a, mean, rstd, k, v                    Buf // [maxK·P, Dv], [maxK·P]
	q1, dq1                                Buf // [N, Dv]
	o, y, dy, do, dq                       Buf // [maxK·N, Dv]
	dk, dv, da                             Buf // [maxK·P, Dv]
	probs, dp                              Buf // [maxK·H, N, P]
	fwd, bwd                               attnArrays
}

func newAttnPool(ip *imagePath, o *offsets) deviceConnector {
	c := &attnPool{ip: ip, queries: o.get("connector.queries")}
	c.normW, c.normB = o.linear("connector.norm")
	c.wqW, c.wqB = o.linear("connector.attn.wq")
	c.wkW, c.wkB = o.linear("connector.attn.wk")
	c.wvW, c.wvB = o.linear("connector.attn.wv")
	c.woW, c.woB = o.linear("connector.attn.wo")
	c.projW, c.projB = o.linear("connector.proj")
	K, P, N, dv := ip.maxK, ip.np, ip.N, ip.dv
	c.a, c.mean, c.rstd, c.k, c.v = ip.take(K*P*dv), ip.take(K*P), ip.take(K*P), ip.take(K*P*dv), ip.take(K*P*dv)
	c.q1, c.dq1 = ip.take(N*dv), ip.take(N*dv)
	c.o, c.y, c.dy, c.do, c.dq = ip.take(K*N*dv), ip.take(K*N*dv), ip.take(K*N*dv), ip.take(K*N*dv), ip.take(K*N*dv)
	c.dk, c.dv, c.da = ip.take(K*P*dv), ip.take(K*P*dv), ip.take(K*P*dv)
	c.probs, c.dp = ip.take(K*ip.H*N*P), ip.take(K*ip.H*N*P)
	c.fwd = ip.arrays(c.q1, dv, c.k, c.v, dv, c.probs, c.o, dv, N, P, true)
	c.bwd = ip.arrays(c.dq, dv, c.dk, c.dv, dv, c.dp, c.do, dv, N, P, false)
	return c
}

func (c *attnPool) forward(K int) error {
	ip, d, w := c.ip, c.ip.d, c.ip.tr.w
	P, N, dv, rowsP, rowsN := ip.np, ip.N, ip.dv, K*ip.np, K*ip.N
	return errors.Join(
		d.layerNorm(c.a, c.mean, c.rstd, ip.grid, w.Off(c.normW), w.Off(c.normB), rowsP, dv, normEps),
		ip.affine(c.k, c.a, c.wkW, c.wkB, rowsP, dv, dv),
		ip.affine(c.v, c.a, c.wvW, c.wvB, rowsP, dv, dv),
		ip.affine(c.q1, w.Off(c.queries), c.wqW, c.wqB, N, dv, dv),
		ip.attention(c.fwd, c.probs, K, N, P, dv, dv, dv),
		ip.affine(c.y, c.o, c.woW, c.woB, rowsN, dv, dv),
		ip.affine(ip.tokens, c.y, c.projW, c.projB, rowsN, dv, ip.D))
}

func (c *attnPool) backward(K int, dgrid bool) error {
	ip, d, tr := c.ip, c.ip.d, c.ip.tr
	P, N, dv, rowsP, rowsN := ip.np, ip.N, ip.dv, K*ip.np, K*ip.N
	dx := Buf{}
	if dgrid {
		dx = ip.dgrid
	}
	return errors.Join(
		ip.affineBack(c.dy, 0, ip.dtokens, c.y, c.projW, c.projB, rowsN, dv, ip.D),
		ip.affineBack(c.do, 0, c.dy, c.o, c.woW, c.woB, rowsN, dv, dv),
		ip.attentionBack(c.fwd, c.bwd, c.probs, c.dp, K, N, P, dv, dv, dv),
		// Every image used the same projected queries.
		d.zero(c.dq1),
		d.colsumAdd(c.dq1, c.dq, K, N*dv),
		ip.affineBack(tr.g.Off(c.queries), 1, c.dq1, tr.w.Off(c.queries), c.wqW, c.wqB, N, dv, dv),
		ip.affineBack(c.da, 0, c.dk, c.a, c.wkW, c.wkB, rowsP, dv, dv),
		ip.affineBack(c.da, 1, c.dv, c.a, c.wvW, c.wvB, rowsP, dv, dv),
		d.layerNormBackward(dx, tr.g.Off(c.normW), tr.g.Off(c.normB), c.da, ip.grid, tr.w.Off(c.normW), c.mean, c.rstd, rowsP, dv))
}

// cAbstractor: Depth pre-activation ResNet blocks on the h×w grid,
// adaptive average pooling to n×n, Depth blocks on the n×n grid, proj.
// ResBlock(x) = x + Conv2(SiLU(LN2(Conv1(SiLU(LN1(x)))))), 3×3
// convolutions Dv → Dv with padding 1 as im2col + one product.
type cAbstractor struct {
	ip           *imagePath
	depth        int
	blocks       []resBlock
	projW, projB int
	acts         []resActs
	pooled       Buf // [maxK·N, Dv]
	dPre, dPost  Buf // residual-stream gradients [maxK·h·w, Dv], [maxK·N, Dv]
	g1, g2       Buf // branch-gradient scratch [maxK·h·w, Dv]
	dcols        Buf // [maxK·h·w, 9Dv]
	// bf16 (imagePath.bf16): the convolutions' products read bf16 operands,
	// so cols1, cols2 and dcols are bf16 (im2col and col2im convert), and
	// doutH [maxK·h·w, Dv] holds each product's output gradient in bf16.
	bf16  bool
	doutH Buf
}

// resBlock is one ResNet block's arena offsets.
type resBlock struct{ n1W, n1B, c1W, c1B, n2W, n2B, c2W, c2B int }

// resActs is one block's saved activations for maxK grids.
type resActs struct{ a1, mean1, rstd1, s1, cols1, c1, a2, mean2, rstd2, s2, cols2, out Buf }

func newCAbstractor(ip *imagePath, o *offsets, depth int) deviceConnector {
	c := &cAbstractor{ip: ip, depth: depth, bf16: ip.bf16}
	dv := ip.dv
	cols := ip.take
	if c.bf16 {
		cols = ip.take16
	}
	for i := range 2 * depth {
		pre := fmt.Sprintf("connector.blocks.%d.", i)
		var b resBlock
		b.n1W, b.n1B = o.linear(pre + "norm1")
		b.c1W, b.c1B = o.linear(pre + "conv1")
		b.n2W, b.n2B = o.linear(pre + "norm2")
		b.c2W, b.c2B = o.linear(pre + "conv2")
		c.blocks = append(c.blocks, b)
		h, w := c.stage(i)
		rows := ip.maxK * h * w
		c.acts = append(c.acts, resActs{a1: ip.take(rows * dv), mean1: ip.take(rows), rstd1: ip.take(rows),
			s1: ip.take(rows * dv), cols1: cols(rows * 9 * dv), c1: ip.take(rows * dv),
			a2: ip.take(rows * dv), mean2: ip.take(rows), rstd2: ip.take(rows),
			s2: ip.take(rows * dv), cols2: cols(rows * 9 * dv), out: ip.take(rows * dv)})
	}
	c.projW, c.projB = o.linear("connector.proj")
	pre, post := ip.maxK*ip.np*dv, ip.maxK*ip.N*dv
	c.pooled, c.dPre, c.dPost = ip.take(post), ip.take(pre), ip.take(post)
	c.g1, c.g2, c.dcols = ip.take(pre), ip.take(pre), cols(9*pre)
	if c.bf16 {
		c.doutH = ip.take16(pre)
	}
	return c
}

// stage is the grid block i runs on.
func (c *cAbstractor) stage(i int) (h, w int) {
	if i < c.depth {
		return c.ip.g, c.ip.g
	}
	n := c.ip.side()
	return n, n
}

// input is block i's input: the grid, the pooled grid or the previous
// block's output.
func (c *cAbstractor) input(i int) Buf {
	switch i {
	case 0:
		return c.ip.grid
	case c.depth:
		return c.pooled
	}
	return c.acts[i-1].out
}

func (c *cAbstractor) forward(K int) error {
	ip, n := c.ip, c.ip.side()
	for i, b := range c.blocks {
		if i == c.depth {
			if err := ip.d.avgPool(c.pooled, c.acts[i-1].out, K, ip.g, ip.g, ip.dv, n, n); err != nil {
				return err
			}
		}
		if err := c.blockForward(b, &c.acts[i], c.input(i), K, i); err != nil {
			return fmt.Errorf("connector.blocks.%d: %w", i, err)
		}
	}
	return ip.affine(ip.tokens, c.acts[len(c.blocks)-1].out, c.projW, c.projB, K*ip.N, ip.dv, ip.D)
}

func (c *cAbstractor) geometry(K, i int) conv {
	h, w := c.stage(i)
	return conv{B: K, H: h, W: w, C: c.ip.dv, K: 3, stride: 1, pad: 1, Ho: h, Wo: w}
}

func (c *cAbstractor) blockForward(b resBlock, s *resActs, x Buf, K, i int) error {
	ip, d, w := c.ip, c.ip.d, c.ip.tr.w
	g := c.geometry(K, i)
	dv, rows := ip.dv, K*g.H*g.W
	im2col, conv := d.im2colFwd, ip.affine // bf16: the columns and the products' operands in bf16
	if c.bf16 {
		im2col, conv = d.im2colH, ip.affineH
	}
	return errors.Join(
		d.layerNorm(s.a1, s.mean1, s.rstd1, x, w.Off(b.n1W), w.Off(b.n1B), rows, dv, normEps),
		d.silu(s.s1, s.a1, rows*dv),
		im2col(s.cols1, s.s1, g),
		conv(s.c1, s.cols1, b.c1W, b.c1B, rows, 9*dv, dv),
		d.layerNorm(s.a2, s.mean2, s.rstd2, s.c1, w.Off(b.n2W), w.Off(b.n2B), rows, dv, normEps),
		d.silu(s.s2, s.a2, rows*dv),
		im2col(s.cols2, s.s2, g),
		conv(s.out, s.cols2, b.c2W, b.c2B, rows, 9*dv, dv),
		d.addInto(s.out, s.out, x, rows*dv))
}

func (c *cAbstractor) backward(K int, dgrid bool) error {
	ip, d, n := c.ip, c.ip.d, c.ip.side()
	if err := ip.affineBack(c.dPost, 0, ip.dtokens, c.acts[len(c.blocks)-1].out, c.projW, c.projB, K*ip.N, ip.dv, ip.D); err != nil {
		return fmt.Errorf("connector.proj: %w", err)
	}
	for i := len(c.blocks) - 1; i >= 0; i-- {
		dx := c.dPost
		if i < c.depth {
			dx = c.dPre
		}
		if i == c.depth-1 {
			pre := Buf{P: c.dPre.P, N: K * ip.np * ip.dv}
			if err := errors.Join(d.zero(pre), d.avgPoolBackward(c.dPre, c.dPost, K, ip.g, ip.g, ip.dv, n, n)); err != nil {
				return err
			}
		}
		if err := c.blockBackward(c.blocks[i], &c.acts[i], dx, c.input(i), K, i); err != nil {
			return fmt.Errorf("connector.blocks.%d: %w", i, err)
		}
	}
	if !dgrid {
		return nil
	}
	return d.addInto(ip.dgrid, ip.dgrid, c.dPre, K*ip.np*ip.dv)
}

// blockBackward turns dx, the gradient of the block's output, into that of
// its input x in place (the residual passes dx through, the branch adds its
// part) and adds the block's parameter gradients.
func (c *cAbstractor) blockBackward(b resBlock, s *resActs, dx, x Buf, K, i int) error {
	ip, d, tr := c.ip, c.ip.d, c.ip.tr
	g := c.geometry(K, i)
	dv, rows := ip.dv, K*g.H*g.W
	g1, g2 := Buf{P: c.g1.P, N: rows * dv}, Buf{P: c.g2.P, N: rows * dv}
	if c.bf16 {
		return errors.Join(
			ip.affineBackH(c.dcols, dx, c.doutH, s.cols2, b.c2W, b.c2B, rows, 9*dv, dv),
			d.zero(g1),
			d.col2imAddH(g1, c.dcols, g),
			d.siluBackward(g2, g1, s.a2, rows*dv),
			d.zero(g1),
			d.layerNormBackwardH(g1, Buf{}, tr.g.Off(b.n2W), tr.g.Off(b.n2B), g2, Buf{}, s.c1, tr.w.Off(b.n2W), s.mean2, s.rstd2, rows, dv),
			ip.affineBackH(c.dcols, g1, c.doutH, s.cols1, b.c1W, b.c1B, rows, 9*dv, dv),
			d.zero(g2),
			d.col2imAddH(g2, c.dcols, g),
			d.siluBackward(g1, g2, s.a1, rows*dv),
			d.layerNormBackwardH(dx, Buf{}, tr.g.Off(b.n1W), tr.g.Off(b.n1B), g1, Buf{}, x, tr.w.Off(b.n1W), s.mean1, s.rstd1, rows, dv))
	}
	return errors.Join(
		// d s2: dcols = dx·W2, dW2 += dxᵀ·cols2, then col2im into g1.
		ip.affineBack(c.dcols, 0, dx, s.cols2, b.c2W, b.c2B, rows, 9*dv, dv),
		d.zero(g1),
		d.col2imAdd(g1, c.dcols, g),
		d.siluBackward(g2, g1, s.a2, rows*dv), // d a2
		d.zero(g1),
		d.layerNormBackward(g1, tr.g.Off(b.n2W), tr.g.Off(b.n2B), g2, s.c1, tr.w.Off(b.n2W), s.mean2, s.rstd2, rows, dv), // d c1
		ip.affineBack(c.dcols, 0, g1, s.cols1, b.c1W, b.c1B, rows, 9*dv, dv),
		d.zero(g2),
		d.col2imAdd(g2, c.dcols, g),           // d s1
		d.siluBackward(g1, g2, s.a1, rows*dv), // d a1
		d.layerNormBackward(dx, tr.g.Off(b.n1W), tr.g.Off(b.n1B), g1, x, tr.w.Off(b.n1W), s.mean1, s.rstd1, rows, dv))
}
