// Package models owns mmablate's models: the Apple-foundation-model-style
// decoder (RMSNorm, RoPE, grouped-query attention with QK-norm, SwiGLU, tied
// embedding), the multimodal model that feeds ViT features through a
// connector into that decoder, the `model:` config and its validation,
// parameter and FLOP counts, one training step (forward, backward, gradient
// clipping, AdamW) and safetensors checkpoints. Numerics come from
// models/engine, the image side from models/vision and models/connector.
// MODEL-SPEC.md is the source of truth for the maths; README.md lists every
// tensor name and shape.
package models
