package experiments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/shapes"
	"github.com/mmablate/mmablate/data/shards"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/safetensors"
	"github.com/mmablate/mmablate/models/vision"
)

// Encoder pretraining: the miniature of MM1's starting point (a CLIP ViT
// pretrained before any LLM sees it). A ViT of the run config's
// model.vision shape learns, with supervision, to name what a shapes-world
// image shows: its background colour and its largest object's colour,
// shape, size and position. The result is a weights file holding only the
// vit.* tensors, which model.vision.init (models.Model.LoadEncoder) loads.

// Defaults of `mmablate encoder pretrain`, measured on the demo world
// (ablations/examples/base.yaml, patch 4, width 64, depth 1; seeds 0–2):
// at 64 px one encoder costs about 22–24 CPU-seconds and names the
// object's colour on 0.83–0.92 of held-out images (chance 0.10); at 32 px
// about 4 CPU-seconds and 0.68–0.75. The peak rate is high for AdamW
// because the model is tiny and the gradient is clipped (train.clip); at
// 3e-3 colour stayed at chance for some seeds.
const (
	DefaultEncoderSteps = 500
	DefaultEncoderBatch = 8
	DefaultEncoderLR    = 3e-2
)

// EncoderOptions are the settings of PretrainEncoder that are not in the
// run config. Zero Steps, Batch and LR take the defaults above.
type EncoderOptions struct {
	Steps int
	Batch int
	LR    float64
	Seed  uint64
	// Log receives progress (a line every tenth of the run) and the
	// data paths; nil means slog.Default().
	Log *slog.Logger
}

// AttributeResult is the held-out accuracy of one attribute's head.
type AttributeResult struct {
	Name     string  `json:"name"`
	Classes  int     `json:"classes"`
	Accuracy float64 `json:"accuracy"`
	// Chance is the held-out accuracy of always answering the class most
	// frequent among the training rows: what a blind head achieves.
	Chance float64 `json:"chance"`
}

// EncoderResult says what PretrainEncoder trained on and how well.
type EncoderResult struct {
	World      string            `json:"world"`   // the training rows' dataset directory
	HeldOut    string            `json:"heldout"` // the evaluation rows' dataset directory
	Train      int               `json:"train_rows"`
	Eval       int               `json:"heldout_rows"`
	Steps      int               `json:"steps"`
	Batch      int               `json:"batch"`
	LR         float64           `json:"lr"`
	Seed       uint64            `json:"seed"`
	Loss       float64           `json:"final_loss"` // mean summed loss of the last tenth of the steps
	Attributes []AttributeResult `json:"attributes"`
}

// Metadata keys of an encoder file beyond those every weights file has.
const (
	EncoderVisionKey = "vision"  // the model.vision config JSON
	EncoderResultKey = "encoder" // EncoderResult JSON
	// EncoderWorldKey is the sha256 of the training rows' manifest.json,
	// which lists every shard's sha256: the world the encoder learnt,
	// where EncoderResult.World is only its path. Absent when the rows
	// have no manifest (a plain Parquet directory or file).
	EncoderWorldKey = "world_manifest_sha256"
)

// The random streams of an encoder seed, apart so that the batch order
// does not shift when the model's size changes how many initial draws it
// takes.
const (
	encoderInitStream = 0x656e63 // "enc": the ViT's and the heads' initial weights
	encoderDataStream = 0x646174 // "dat": the order of the training rows
)

// attribute is one supervised head: a class vocabulary and how a scene
// names its class.
type attribute struct {
	name    string
	classes []string
	of      func(s *shapes.SceneJSON, o *shapes.ObjectJSON) string
}

// vocab lists the names of an enum of data/shapes from first to last, so
// class ids follow the generator's own order and stay stable.
func vocab[E interface {
	~uint8
	String() string
}](first, last E) []string {
	var out []string
	for e := first; e <= last; e++ {
		out = append(out, e.String())
	}
	return out
}

// encoderAttributes are the heads, in the order of the loss sum and of
// every table.
var encoderAttributes = []attribute{
	{"background", vocab(shapes.White, shapes.PaleGreen), func(s *shapes.SceneJSON, _ *shapes.ObjectJSON) string { return s.Background }},
	{"color", vocab(shapes.Red, shapes.Black), func(_ *shapes.SceneJSON, o *shapes.ObjectJSON) string { return o.Color }},
	{"shape", vocab(shapes.Circle, shapes.Hexagon), func(_ *shapes.SceneJSON, o *shapes.ObjectJSON) string { return o.Shape }},
	{"size", vocab(shapes.Tiny, shapes.Large), func(_ *shapes.SceneJSON, o *shapes.ObjectJSON) string { return o.Size }},
	{"position", vocab(shapes.TopLeft, shapes.BottomRight), func(_ *shapes.SceneJSON, o *shapes.ObjectJSON) string { return o.Position }},
}

// labelledImage is one row: its encoded image and a class id per attribute.
type labelledImage struct {
	image  []byte
	labels []int32 // [len(encoderAttributes)]
	where  string  // "file: row N", for a decoding error
}

// sceneLabels returns the class id of every attribute for the scene in a
// row's meta. The object described is the largest (greatest radius); of
// equally large ones, the first in reading order, which the image shows as
// plainly as the scene does. A scene with no object, or a name outside the
// vocabulary, is an error naming the meta key.
func sceneLabels(meta string) ([]int32, error) {
	var m struct {
		Scene *shapes.SceneJSON `json:"scene"`
	}
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	if m.Scene == nil {
		return nil, errors.New(`meta "scene": missing (not a shapes-world row?)`)
	}
	if len(m.Scene.Objects) == 0 {
		return nil, errors.New(`meta "scene": no objects, so no largest object to label`)
	}
	largest := &m.Scene.Objects[0]
	for i := range m.Scene.Objects {
		if m.Scene.Objects[i].R > largest.R {
			largest = &m.Scene.Objects[i]
		}
	}
	labels := make([]int32, len(encoderAttributes))
	for a, at := range encoderAttributes {
		name := at.of(m.Scene, largest)
		id := -1
		for c, cn := range at.classes {
			if cn == name {
				id = c
			}
		}
		if id < 0 {
			return nil, fmt.Errorf(`meta "scene": %s %q is not one of %s`, at.name, name, strings.Join(at.classes, ", "))
		}
		labels[a] = int32(id)
	}
	return labels, nil
}

// readLabelled reads every row of the dataset at dir: its one image and
// its scene's labels. Errors name the file and row.
func readLabelled(ctx context.Context, dir string) ([]labelledImage, error) {
	files, err := layouts.ListFiles(dir)
	if err != nil {
		return nil, err
	}
	var out []labelledImage
	for _, path := range files {
		f, err := layouts.Open(path, layouts.Options{})
		if err != nil {
			return nil, err
		}
		for rg := range f.NumRowGroups() {
			err = f.ReadRowGroup(ctx, rg, func(row int64, rec *data.Record, rerr error) error {
				if rerr != nil {
					return rerr
				}
				ex := labelledImage{where: fmt.Sprintf("%s: row %d", path, row)}
				for _, im := range rec.Images {
					if im != nil {
						if ex.image != nil {
							return &data.RowError{File: path, RowGroup: rg, Row: row, Column: "images", Err: fmt.Errorf("id %q: more than one image", rec.ID)}
						}
						ex.image = im.Bytes
					}
				}
				if ex.image == nil {
					return &data.RowError{File: path, RowGroup: rg, Row: row, Column: "images", Err: fmt.Errorf("id %q: no image", rec.ID)}
				}
				labels, lerr := sceneLabels(rec.Meta)
				if lerr != nil {
					return &data.RowError{File: path, RowGroup: rg, Row: row, Column: "meta", Err: fmt.Errorf("id %q: %w", rec.ID, lerr)}
				}
				ex.labels = labels
				out = append(out, ex)
				return nil
			})
			if err != nil {
				break
			}
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rows", dir)
	}
	return out, nil
}

// encoderRows returns the caption rows an encoder of cfg trains on: the
// caption source's first path, else shapes.dir/captions.
func encoderRows(cfg Config) (string, error) {
	if src, ok := cfg.Data.Sources["caption"]; ok && len(src.Paths) > 0 {
		return src.Paths[0], nil
	}
	if cfg.Shapes.Dir != "" {
		return filepath.Join(cfg.Shapes.Dir, "captions"), nil
	}
	return "", errors.New("encoder pretraining needs caption rows: set data.sources.caption.paths or shapes.dir")
}

// encoderPaths returns the training and held-out datasets of cfg: the
// caption rows of encoderRows and the caption benchmark's query split
// (eval.caption/query, else shapes.dir/eval/caption/query).
func encoderPaths(cfg Config) (train, heldOut string, err error) {
	if train, err = encoderRows(cfg); err != nil {
		return "", "", err
	}
	switch {
	case cfg.Eval.Caption != "":
		heldOut = filepath.Join(cfg.Eval.Caption, "query")
	case cfg.Shapes.Dir != "":
		heldOut = filepath.Join(cfg.Shapes.Dir, "eval", "caption", "query")
	default:
		return "", "", errors.New("encoder pretraining needs held-out rows: set eval.caption or shapes.dir")
	}
	for _, p := range []struct{ key, path string }{{"caption rows", train}, {"held-out rows", heldOut}} {
		if _, err := os.Stat(p.path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", "", fmt.Errorf("%s: %s does not exist (generate the shapes world: set shapes.dir, or run `mmablate train` once)", p.key, p.path)
			}
			return "", "", fmt.Errorf("%s: %w", p.key, err)
		}
	}
	return train, heldOut, nil
}

// encoderNet is the ViT with one linear head per attribute on its pooled
// patch grid (forward says how it pools).
// Generic so that the gradient check runs it in float64; training is float32.
type encoderNet[T engine.Float] struct {
	ps    *engine.Params[T]
	vit   *vision.ViT[T]
	heads []*engine.Linear[T]
	opt   *engine.AdamW[T]
	res   int

	maxB           int
	pix            []T     // [B, 3, R, R]
	grid, dgrid    []T     // [B, Np, Dv]
	pooled, dpool  []T     // [B, Dv]
	logits, dlogit [][]T   // per head [B, K]
	stats          []T     // [2B]
	targets        []int32 // [B]
	ones           []T     // [B]
}

func newEncoderNet[T engine.Float](vc vision.Config, maxB int, seed uint64, pool *engine.Pool, adam engine.AdamWConfig) (*encoderNet[T], error) {
	ps := engine.NewParams[T]()
	ps.Pool = pool
	vit, err := vision.New(ps, vc, pool)
	if err != nil {
		return nil, err
	}
	n := &encoderNet[T]{ps: ps, vit: vit, res: vc.Resolution, maxB: maxB}
	for _, at := range encoderAttributes {
		n.heads = append(n.heads, engine.NewLinear(ps, "head."+at.name, vc.Width, len(at.classes), true))
	}
	rng := rand.New(rand.NewPCG(seed, encoderInitStream))
	vit.Init(rng)
	for _, h := range n.heads {
		h.Init(rng, 0.02)
	}
	a := engine.NewArena[T]()
	vit.Build(a, maxB)
	d, np := vc.Width, vc.NumPatches()
	n.pix = a.Take(maxB * vision.Channels * vc.Resolution * vc.Resolution)
	n.grid, n.dgrid = a.Take(maxB*np*d), a.Take(maxB*np*d)
	n.pooled, n.dpool = a.Take(maxB*d), a.Take(maxB*d)
	for _, at := range encoderAttributes {
		n.logits = append(n.logits, a.Take(maxB*len(at.classes)))
		n.dlogit = append(n.dlogit, a.Take(maxB*len(at.classes)))
	}
	n.stats, n.targets, n.ones = a.Take(2*maxB), make([]int32, maxB), a.Take(maxB)
	for i := range n.ones {
		n.ones[i] = 1
	}
	n.opt = engine.NewAdamW(ps, adam)
	return n, nil
}

// forward encodes the first B images of pix and fills every head's
// logits [B, K] from the pooled patch grid: its sum over Np divided by √Np,
// the mean scaled by √Np. With the plain mean, an object covering a few of
// the Np patches moves the pooled vector by O(1/Np), and the heads and the
// ViT took a seed-dependent 300–1000+ steps to read colours at all (held-out
// colour at chance for seed 0 of the demo at 32 px after 500 steps); with
// √Np it is read within the default 500 steps at 32 and 64 px.
func (n *encoderNet[T]) forward(B int) {
	c := n.vit.Cfg
	d, np := c.Width, c.NumPatches()
	grid := n.grid[:B*np*d]
	n.vit.Forward(grid, n.pix[:B*vision.Channels*c.Resolution*c.Resolution])
	pooled := n.pooled[:B*d]
	clear(pooled)
	inv := T(1 / math.Sqrt(float64(np)))
	for b := range B {
		dst := pooled[b*d : (b+1)*d]
		for p := range np {
			engine.AddTo(dst, grid[(b*np+p)*d:(b*np+p+1)*d])
		}
		engine.Scale(dst, inv)
	}
	for h, head := range n.heads {
		head.Forward(n.logits[h][:B*head.Out], pooled)
	}
}

// step trains on the first B images of pix with labels[b][attribute] and
// returns the summed loss.
func (n *encoderNet[T]) step(B int, labels [][]int32, lr, clip float64) (float64, error) {
	loss, err := n.lossGrad(B, labels)
	if err != nil {
		return loss, err
	}
	if clip > 0 {
		n.ps.ClipGradNorm(clip)
	}
	if err := n.ps.CheckGrads(); err != nil {
		return loss, err
	}
	n.opt.Step(lr)
	return loss, nil
}

// lossGrad sets every parameter's gradient to that of the summed loss on
// the first B images of pix and returns the loss.
func (n *encoderNet[T]) lossGrad(B int, labels [][]int32) (float64, error) {
	n.ps.ZeroGrad()
	n.forward(B)
	c := n.vit.Cfg
	d, np := c.Width, c.NumPatches()
	pooled, dpool := n.pooled[:B*d], n.dpool[:B*d]
	clear(dpool)
	var loss float64
	for h, head := range n.heads {
		for b := range B {
			n.targets[b] = labels[b][h]
		}
		k := head.Out
		logits, dlogits := n.logits[h][:B*k], n.dlogit[h][:B*k]
		loss += engine.CrossEntropyForward(n.stats[:2*B], logits, n.targets[:B], n.ones[:B], k)
		clear(dlogits)
		engine.CrossEntropyBackward(dlogits, logits, n.stats[:2*B], n.targets[:B], n.ones[:B], k, 1)
		head.Backward(dpool, dlogits, pooled)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, fmt.Errorf("non-finite loss %v: %w", loss, n.vit.FirstNonFinite(n.grid[:B*np*d]))
	}
	// The pool spreads each image's gradient evenly over its patches.
	dgrid := n.dgrid[:B*np*d]
	inv := T(1 / math.Sqrt(float64(np)))
	for b := range B {
		src := dpool[b*d : (b+1)*d]
		for p := range np {
			dst := dgrid[(b*np+p)*d : (b*np+p+1)*d]
			copy(dst, src)
			engine.Scale(dst, inv)
		}
	}
	n.vit.Backward(dgrid)
	return loss, nil
}

// PretrainEncoder trains a ViT of cfg.Model.Vision's shape to name each
// shapes-world image's background colour and its largest object's colour,
// shape, size and position (a linear head per attribute on the pooled
// patch grid, softmax cross-entropy summed over the heads), then writes
// the vit.* tensors to out atomically as a weights file that
// model.vision.init accepts, with the vision config, the returned result
// (held-out accuracy per attribute) and the training rows' manifest sha256
// (EncoderWorldKey) in its metadata, which a run checks before loading it
// (checkEncoder). The shapes world is generated first when shapes.dir is
// set, as Train does. The same config, options and train.threads give the
// same file bytes.
func PretrainEncoder(ctx context.Context, cfg Config, out string, opts EncoderOptions) (*EncoderResult, error) {
	opts, vc, err := encoderSetup(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := prepareShapes(ctx, cfg, opts.Log); err != nil {
		return nil, err
	}
	return pretrainEncoder(ctx, cfg, out, opts, vc)
}

// encoderSetup fills opts' defaults (Log included) and checks them and
// cfg's vision config, before any world is generated.
func encoderSetup(cfg Config, opts EncoderOptions) (EncoderOptions, vision.Config, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Steps == 0 {
		opts.Steps = DefaultEncoderSteps
	}
	if opts.Batch == 0 {
		opts.Batch = DefaultEncoderBatch
	}
	if opts.LR == 0 {
		opts.LR = DefaultEncoderLR
	}
	if opts.Steps < 0 || opts.Batch < 0 || !(opts.LR > 0) {
		return opts, vision.Config{}, fmt.Errorf("encoder pretraining: steps %d, batch %d and lr %v must be positive", opts.Steps, opts.Batch, opts.LR)
	}
	mv := cfg.Model.Vision
	if mv == nil {
		return opts, vision.Config{}, errors.New("model.vision: the run config has no image encoder to pretrain")
	}
	vc := vision.Config{Resolution: mv.Resolution, Patch: mv.Patch, Width: mv.Width, Depth: mv.Depth, Heads: mv.Heads}
	return opts, vc, vc.Validate()
}

// pretrainEncoder is PretrainEncoder on a world its caller has prepared
// (Train generates it once, before prepareEncoder), with opts and vc from
// encoderSetup.
func pretrainEncoder(ctx context.Context, cfg Config, out string, opts EncoderOptions, vc vision.Config) (*EncoderResult, error) {
	log := opts.Log
	trainDir, heldDir, err := encoderPaths(cfg)
	if err != nil {
		return nil, err
	}
	trainRows, err := readLabelled(ctx, trainDir)
	if err != nil {
		return nil, fmt.Errorf("caption rows: %w", err)
	}
	heldRows, err := readLabelled(ctx, heldDir)
	if err != nil {
		return nil, fmt.Errorf("held-out rows: %w", err)
	}
	log.Info("encoder pretraining", "train", trainDir, "rows", len(trainRows), "heldout", heldDir, "heldout_rows", len(heldRows),
		"resolution", vc.Resolution, "patch", vc.Patch, "steps", opts.Steps, "batch", opts.Batch)

	t := cfg.Train
	engine.SetBLASThreads(t.Threads.BLAS)
	pool := engine.NewPool(t.Threads.Workers)
	defer pool.Close()
	net, err := newEncoderNet[float32](vc, opts.Batch, opts.Seed, pool,
		engine.AdamWConfig{Beta1: t.Beta1, Beta2: t.Beta2, Eps: t.Eps, WeightDecay: t.WeightDecay})
	if err != nil {
		return nil, err
	}
	// Each image is decoded when its batch is drawn, as training decodes
	// it (images.DefaultOptions at the model's resolution, what
	// mixer.OpenStreams uses): a 64 px shapes image decodes in tens of
	// microseconds, and keeping every decoded image would hold rows × 3·R²
	// floats (150 MB for the demo world at 64 px, gigabytes at 224 px).
	per := vision.Channels * vc.Resolution * vc.Resolution
	imgOpts := images.DefaultOptions(vc.Resolution)
	// A warm-up of a tenth of the run, then a cosine to a tenth of the peak:
	// the run config's schedule shape at this run's length.
	sched := TrainConfig{Steps: opts.Steps, LR: opts.LR, MinLR: opts.LR / 10, Warmup: max(1, opts.Steps/10)}
	rng := rand.New(rand.NewPCG(opts.Seed, encoderDataStream))
	var order []int
	labels := make([][]int32, opts.Batch)
	logEvery := max(1, opts.Steps/10)
	var window, tail float64
	t0 := time.Now()
	for step := range opts.Steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("encoder pretraining interrupted at step %d: %w", step, err)
		}
		for b := range opts.Batch {
			if len(order) == 0 { // a fresh permutation every epoch
				order = rng.Perm(len(trainRows))
			}
			i := order[0]
			order = order[1:]
			if err := images.DecodeInto(net.pix[b*per:(b+1)*per], trainRows[i].image, imgOpts); err != nil {
				return nil, fmt.Errorf("caption rows: %s: %w", trainRows[i].where, err)
			}
			labels[b] = trainRows[i].labels
		}
		loss, err := net.step(opts.Batch, labels, sched.RateAt(step), t.Clip)
		if err != nil {
			return nil, fmt.Errorf("encoder pretraining step %d: %w", step, err)
		}
		window += loss
		if step >= opts.Steps-logEvery {
			tail += loss
		}
		if done := step + 1; done%logEvery == 0 || done == opts.Steps {
			n := done % logEvery
			if n == 0 {
				n = logEvery
			}
			log.Info("encoder", "step", done, "of", opts.Steps, "loss", fmt.Sprintf("%.4f", window/float64(n)),
				"images_per_s", fmt.Sprintf("%.0f", float64(done*opts.Batch)/time.Since(t0).Seconds()))
			window = 0
		}
	}
	res := &EncoderResult{World: trainDir, HeldOut: heldDir, Train: len(trainRows), Eval: len(heldRows),
		Steps: opts.Steps, Batch: opts.Batch, LR: opts.LR, Seed: opts.Seed,
		Loss: tail / float64(min(logEvery, opts.Steps))}
	if res.Attributes, err = evaluateEncoder(net, heldRows, trainRows, imgOpts); err != nil {
		return nil, fmt.Errorf("held-out rows: %w", err)
	}
	world, err := worldSHA256(trainDir)
	if err != nil {
		return nil, fmt.Errorf("caption rows: %w", err)
	}
	if err := saveEncoder(net, out, *cfg.Model.Vision, res, world); err != nil {
		return nil, err
	}
	return res, nil
}

// worldSHA256 identifies the rows at path by the sha256 of their
// manifest.json (as sweep.json's datasets do); "" when there is none.
func worldSHA256(path string) (string, error) {
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return "", err
	}
	sum, err := fileSHA256(filepath.Join(path, shards.ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return sum, err
}

// checkEncoder fails, naming path and the metadata key, when the encoder
// file at path was pretrained (it has EncoderVisionKey) for a ViT of
// another patch, width, depth or heads than cfg's model.vision:
// LoadEncoder would take a ViT of other heads silently. Another
// resolution is allowed: LoadEncoder interpolates the position
// embeddings. When cfg has an encoder: section, the file stands for the
// encoder that section makes on cfg's caption rows, so one pretrained on
// another world (EncoderWorldKey against encoderRows' manifest) is an
// error too, a stale file; without one, the file is the user's choice of
// encoder and another world only warrants a warning (an encoder
// pretrained on the shapes world, fine-tuned on one's own captions, say).
// A run's weights file (no EncoderVisionKey) is left to LoadEncoder's
// tensor checks; an encoder file written before the world was recorded
// loads with a warning. Only the file's header is read.
func checkEncoder(path string, cfg Config, log *slog.Logger) error {
	meta, err := safetensors.ReadMetadataFile(path)
	if err != nil {
		return fmt.Errorf("model.vision.init: %w", err)
	}
	vj, ok := meta[EncoderVisionKey]
	if !ok {
		return nil
	}
	var got models.VisionConfig
	if err := json.Unmarshal([]byte(vj), &got); err != nil {
		return fmt.Errorf("model.vision.init %s: metadata %q: %w", path, EncoderVisionKey, err)
	}
	want := cfg.Model.Vision
	for _, k := range []struct {
		key       string
		got, want int
	}{{"patch", got.Patch, want.Patch}, {"width", got.Width, want.Width}, {"depth", got.Depth, want.Depth}, {"heads", got.Heads, want.Heads}} {
		if k.got != k.want {
			return fmt.Errorf("model.vision.init %s: metadata %q: pretrained with %s %d, the config has model.vision.%s %d (pretrain an encoder of this shape: another model.vision.init)",
				path, EncoderVisionKey, k.key, k.got, k.key, k.want)
		}
	}
	if got.Resolution != want.Resolution {
		log.Info("encoder pretrained at another resolution: position embeddings interpolated", "file", path, "from", got.Resolution, "to", want.Resolution)
	}
	sum, ok := meta[EncoderWorldKey]
	if !ok {
		log.Warn("encoder file records no world (written before "+EncoderWorldKey+" was): not checked against the run's caption rows", "file", path, "world", meta["world"])
		return nil
	}
	rows, rowsErr := encoderRows(cfg)
	var have string
	if rowsErr == nil {
		have, rowsErr = worldSHA256(rows)
	}
	switch {
	case rowsErr != nil || have == "":
		log.Warn("the run's caption rows have no manifest: the encoder's world not checked", "file", path, "rows", rows, "err", rowsErr)
	case sum != have && cfg.Encoder != nil:
		return fmt.Errorf("model.vision.init %s: metadata %q is %s (pretrained on %s), this run's caption rows %s have %s: an encoder of another world, not the one the config's encoder: section makes (pretrain one for this world: another model.vision.init, or remove the file)",
			path, EncoderWorldKey, sum, meta["world"], rows, have)
	case sum != have:
		log.Warn("encoder pretrained on another world than the run's caption rows (no encoder: section: used as given)", "file", path, "pretrained_on", meta["world"], "rows", rows)
	}
	return nil
}

// evaluateEncoder returns each head's accuracy on held and the chance level: the
// share of held rows whose class is the most frequent one in train.
func evaluateEncoder(n *encoderNet[float32], held, train []labelledImage, imgOpts images.Options) ([]AttributeResult, error) {
	per := vision.Channels * n.res * n.res
	correct := make([]int, len(encoderAttributes))
	for lo := 0; lo < len(held); lo += n.maxB {
		B := min(n.maxB, len(held)-lo)
		for b := range B {
			if err := images.DecodeInto(n.pix[b*per:(b+1)*per], held[lo+b].image, imgOpts); err != nil {
				return nil, fmt.Errorf("%s: %w", held[lo+b].where, err)
			}
		}
		n.forward(B)
		for h, head := range n.heads {
			k := head.Out
			for b := range B {
				row := n.logits[h][b*k : (b+1)*k]
				best := 0
				for c, v := range row {
					if v > row[best] {
						best = c
					}
				}
				if int32(best) == held[lo+b].labels[h] {
					correct[h]++
				}
			}
		}
	}
	out := make([]AttributeResult, len(encoderAttributes))
	for h, at := range encoderAttributes {
		freq := make([]int, len(at.classes))
		for _, r := range train {
			freq[r.labels[h]]++
		}
		mode := 0
		for c := range freq {
			if freq[c] > freq[mode] {
				mode = c
			}
		}
		hits := 0
		for _, r := range held {
			if r.labels[h] == int32(mode) {
				hits++
			}
		}
		out[h] = AttributeResult{Name: at.name, Classes: len(at.classes),
			Accuracy: float64(correct[h]) / float64(len(held)), Chance: float64(hits) / float64(len(held))}
	}
	return out, nil
}

// saveEncoder writes the vit.* tensors (the heads are dropped: the LLM's
// connector replaces them) with the vision config, res and the world's
// sha256 (worldSHA256 of res.World; "" leaves it out) in the metadata.
func saveEncoder(n *encoderNet[float32], path string, mv models.VisionConfig, res *EncoderResult, world string) error {
	mv.Init, mv.Freeze = "", false // where it came from and how it is used are the loader's business
	vj, err := json.Marshal(mv)
	if err != nil {
		return err
	}
	rj, err := json.Marshal(res)
	if err != nil {
		return err
	}
	tensors := map[string]safetensors.Tensor{}
	for _, p := range n.ps.All() {
		if strings.HasPrefix(p.Name, vision.Prefix+".") {
			tensors[p.Name] = safetensors.Tensor{Shape: p.Shape, Data: p.Data()}
		}
	}
	meta := map[string]string{models.FormatKey: models.WeightsFormat, EncoderVisionKey: string(vj), EncoderResultKey: string(rj),
		"steps": strconv.Itoa(res.Steps), "seed": strconv.FormatUint(res.Seed, 10), "world": res.World}
	if world != "" {
		meta[EncoderWorldKey] = world
	}
	if err := safetensors.WriteFile(path, tensors, meta); err != nil {
		return fmt.Errorf("encoder file: %w", err)
	}
	return nil
}
