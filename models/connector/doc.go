// Package connector owns mmablate's vision-language connectors: the
// Connector interface that maps an image encoder's patch grid
// [B, h, w, Dv] (channels-last, models/vision's output) to N image tokens
// [B, N, D] of the decoder's width, and its four implementations from MM1
// §3.2, exactly as MODEL-SPEC.md defines them:
//
//   - avgpool: adaptive average pooling to √N×√N, then Linear(Dv→D);
//   - attnpool: N learned queries cross-attending to the LayerNorm-ed patches;
//   - cabstractor: Honeybee's C-Abstractor (pre-activation ResBlocks, adaptive
//     average pooling, ResBlocks, Linear) with a configurable depth;
//   - mlp: LLaVA's two-layer GELU MLP on every patch (N = h·w).
//
// Numerics come from models/engine, so the same code runs in float32 for
// training and in float64 for the gradient checks.
//
// # Use
//
//	cfg := connector.Config{Tokens: 64, Depth: 1, GridH: 8, GridW: 8, InDim: 256, OutDim: 256, Heads: 4}
//	conn, err := connector.New("cabstractor", ps, cfg, pool) // validates, registers connector.*
//	conn.Init(rng)
//	conn.Build(arena, maxImages)
//	conn.Forward(tokens, grid)          // grid [B,h,w,Dv] → tokens [B,N,D], B ≤ maxImages
//	conn.Backward(dgrid, dtokens, grid) // adds dgrid (nil when the encoder is frozen) and parameter grads
//
// connector.Validate, connector.NumParams and connector.FLOPs answer for a
// type and config without building anything (config validation, reports).
// Validation errors name the config key: a non-square model.connector.tokens
// for avgpool/cabstractor, N larger than the patch grid, N ≠ h·w for mlp,
// a non-positive model.connector.depth, model.vision.heads not dividing
// model.vision.width for attnpool, an unknown model.connector.type.
//
// # Adding a connector
//
// Write one file holding a kind (validate, numParams, flops for a Config), a
// generic constructor newX[T](ps, cfg, pool) Connector[T] whose type embeds
// base, and its tensor table in the file's doc; then add one line to
// registry in connector.go:
//
//	"x": {xKind{}, newX[float32], newX[float64]},
//
// fifth_test.go does exactly that for a toy connector (the first N patches
// through a Linear) and runs validation, counting and the gradient check on
// it with nothing else changed.
//
// # Tensors (safetensors names; Dv = encoder width, D = decoder width)
//
//	type         name                                  shape
//	avgpool      connector.proj.weight                 [D, Dv]
//	             connector.proj.bias                   [D]
//	attnpool     connector.queries                     [N, Dv]
//	             connector.norm.weight, .bias          [Dv]
//	             connector.attn.wq.weight              [Dv, Dv]
//	             connector.attn.wq.bias                [Dv]
//	             connector.attn.wk.weight, .bias       [Dv, Dv], [Dv]
//	             connector.attn.wv.weight, .bias       [Dv, Dv], [Dv]
//	             connector.attn.wo.weight, .bias       [Dv, Dv], [Dv]
//	             connector.proj.weight                 [D, Dv]
//	             connector.proj.bias                   [D]
//	cabstractor  connector.blocks.{i}.norm1.weight, .bias  [Dv]   i = 0 … 2·depth−1;
//	             connector.blocks.{i}.conv1.weight     [Dv, Dv, 3, 3]  blocks 0 … depth−1 run
//	             connector.blocks.{i}.conv1.bias       [Dv]            before pooling, the rest after
//	             connector.blocks.{i}.norm2.weight, .bias  [Dv]
//	             connector.blocks.{i}.conv2.weight     [Dv, Dv, 3, 3]
//	             connector.blocks.{i}.conv2.bias       [Dv]
//	             connector.proj.weight                 [D, Dv]
//	             connector.proj.bias                   [D]
//	mlp          connector.fc1.weight                  [D, Dv]
//	             connector.fc1.bias                    [D]
//	             connector.fc2.weight                  [D, D]
//	             connector.fc2.bias                    [D]
//
// The same table in Markdown, for models/README.md:
//
//	| connector   | tensor                                   | shape          |
//	|-------------|------------------------------------------|----------------|
//	| avgpool     | connector.proj.weight / .bias            | [D, Dv] / [D]  |
//	| attnpool    | connector.queries                        | [N, Dv]        |
//	| attnpool    | connector.norm.weight / .bias            | [Dv] / [Dv]    |
//	| attnpool    | connector.attn.{wq,wk,wv,wo}.weight      | [Dv, Dv]       |
//	| attnpool    | connector.attn.{wq,wk,wv,wo}.bias        | [Dv]           |
//	| attnpool    | connector.proj.weight / .bias            | [D, Dv] / [D]  |
//	| cabstractor | connector.blocks.{i}.norm{1,2}.weight / .bias | [Dv] / [Dv] |
//	| cabstractor | connector.blocks.{i}.conv{1,2}.weight    | [Dv, Dv, 3, 3] |
//	| cabstractor | connector.blocks.{i}.conv{1,2}.bias      | [Dv]           |
//	| cabstractor | connector.proj.weight / .bias            | [D, Dv] / [D]  |
//	| mlp         | connector.fc1.weight / .bias             | [D, Dv] / [D]  |
//	| mlp         | connector.fc2.weight / .bias             | [D, D] / [D]   |
//
// cabstractor's i runs over 0 … 2·depth−1: blocks 0 … depth−1 on the h×w
// grid, depth … 2·depth−1 on the pooled √N×√N grid. Convolution weights keep
// PyTorch's [out, in, kh, kw] layout; activations are channels-last inside.
//
// # Initialisation
//
// normal(0, 0.02) for linears, convolutions and attnpool's queries; zero
// biases; unit norm weights. Only cabstractor's conv2, the output of a
// residual branch, is scaled, by 1/sqrt(2·blocks) (blocks = 2·depth), as the
// ViT and the decoder scale theirs; the connectors' other projections (proj,
// wo, fc2) feed no residual stream and keep 0.02.
//
// # Counting
//
// NumParams is the number of scalars registered. FLOPs counts matrix
// products only (linears, attention's q·kᵀ and p·v, convolutions as their
// im2col product), 2·m·n·k forward and twice that backward (input and weight
// gradients); pooling, norms, activations and softmax are left out.
// attnpool projects its queries once per batch, not per image.
package connector
