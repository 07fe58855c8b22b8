package models

import (
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/connector"
	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/vision"
)

// imagePath is the image side of the model: ViT, then the connector, from
// images [K, 3, R, R] to image tokens [K, N, D].
type imagePath struct {
	vit   *vision.ViT[float32]
	conn  connector.Connector[float32]
	grid  []float32 // [maxImages, g, g, Dv]
	dgrid []float32 // its gradient; nil when the ViT is frozen
	per   int       // values of one image's grid
}

func (c Config) visionConfig() vision.Config {
	v := c.Vision
	return vision.Config{Resolution: v.Resolution, Patch: v.Patch, Width: v.Width, Depth: v.Depth, Heads: v.Heads, Freeze: v.Freeze}
}

func (c Config) connectorConfig() connector.Config {
	g := c.Vision.Resolution / c.Vision.Patch
	return connector.Config{Tokens: c.Connector.Tokens, Depth: c.Connector.Depth, GridH: g, GridW: g,
		InDim: c.Vision.Width, OutDim: c.Decoder.Width, Heads: c.Vision.Heads}
}

func newImagePath(ps *engine.Params[float32], a *engine.Arena[float32], cfg Config, maxImages int, pool *engine.Pool, rng *rand.Rand) (*imagePath, error) {
	vit, err := vision.New(ps, cfg.visionConfig(), pool)
	if err != nil {
		return nil, err
	}
	conn, err := connector.New(cfg.Connector.Type, ps, cfg.connectorConfig(), pool)
	if err != nil {
		return nil, err
	}
	vit.Init(rng)
	conn.Init(rng)
	vit.Build(a, maxImages)
	conn.Build(a, maxImages)
	p := &imagePath{vit: vit, conn: conn, per: cfg.visionConfig().NumPatches() * cfg.Vision.Width}
	p.grid = a.Take(maxImages * p.per)
	if !vit.Frozen() {
		p.dgrid = a.Take(maxImages * p.per)
	}
	return p, nil
}

// forward writes the k images' tokens into out [k·N, D].
func (p *imagePath) forward(out, images []float32, k int) {
	grid := p.grid[:k*p.per]
	p.vit.Forward(grid, images)
	p.conn.Forward(out, grid)
}

// firstNonFinite names the first place on the image side, in forward
// order, where the last forward's k images met a NaN or Inf: the images
// themselves, a ViT layer, or the connector's output tokens [k·N, D].
func (p *imagePath) firstNonFinite(images, tokens []float32, k int) error {
	if err := engine.CheckFinite("batch Images", images); err != nil {
		return err
	}
	if err := p.vit.FirstNonFinite(p.grid[:k*p.per]); err != nil {
		return err
	}
	return engine.CheckFinite("connector ("+p.conn.Kind()+") output", tokens)
}

// backward adds the connector's and (unless frozen) the ViT's gradients
// from dout [k·N, D], the gradient of the last forward's tokens.
func (p *imagePath) backward(dout []float32, k int) {
	grid := p.grid[:k*p.per]
	if p.dgrid == nil {
		p.conn.Backward(nil, dout, grid)
		return
	}
	dgrid := p.dgrid[:k*p.per]
	clear(dgrid)
	p.conn.Backward(dgrid, dout, grid)
	p.vit.Backward(dgrid)
}
