// Package vision owns mmablate's image encoder: a ViT (patch embedding,
// learned position embedding, pre-norm transformer blocks, final LayerNorm)
// that turns normalised images [B, 3, R, R] into a patch grid [B, g, g, Dv]
// (g = R/P, channels-last) for a connector (models/connector). The maths is
// MODEL-SPEC.md's "ViT encoder"; numerics come from models/engine, so the
// same code runs in float32 for training and float64 for gradient checks.
//
// Use:
//
//	cfg := vision.Config{Resolution: 128, Patch: 16, Width: 256, Depth: 2, Heads: 4}
//	vit, err := vision.New(ps, cfg, pool) // validates cfg, registers vit.* in ps
//	vit.Init(rng)                         // or load a checkpoint (SetPosEmbed resizes pos_embed)
//	vit.Build(arena, maxImages)           // activations, once
//	vit.Forward(grid, images)             // images [B,3,R,R] → grid [B,g,g,Dv], B ≤ maxImages
//	vit.Backward(dgrid)                   // parameter gradients (added); nothing for the images
//
// A frozen encoder (Config.Freeze) marks its tensors frozen (no gradient, no
// AdamW update), takes no gradient buffers, and its Backward does nothing;
// the connector then gets a nil grid gradient. The engine's Params and AdamW
// still reserve gradient and moment slots for frozen tensors, so a caller
// that wants none at all registers a frozen encoder in a Params of its own,
// which no AdamW is given.
//
// # Tensors (safetensors names; D = Width, F = 4·Width, Np = (R/P)²)
//
//	vit.patch_embed.weight          [D, 3·P·P]  patch flattened in (c, py, px) order
//	vit.patch_embed.bias            [D]
//	vit.pos_embed                   [Np, D]     row-major over the g×g grid
//	vit.blocks.{i}.ln1.weight/.bias [D]
//	vit.blocks.{i}.attn.qkv.weight  [3D, D]     q, k, v stacked in that order
//	vit.blocks.{i}.attn.qkv.bias    [3D]
//	vit.blocks.{i}.attn.proj.weight [D, D]
//	vit.blocks.{i}.attn.proj.bias   [D]
//	vit.blocks.{i}.ln2.weight/.bias [D]
//	vit.blocks.{i}.mlp.fc1.weight   [F, D]
//	vit.blocks.{i}.mlp.fc1.bias     [F]
//	vit.blocks.{i}.mlp.fc2.weight   [D, F]
//	vit.blocks.{i}.mlp.fc2.bias     [D]
//	vit.norm.weight/.bias           [D]
//
// # Counting
//
// Config.NumParams is the number of scalars registered. Config.FLOPs counts
// matrix products only, 2·m·n·k forward and twice that backward (input and
// weight gradients), and 0 backward when frozen; see its doc.
package vision
