package models

// GPUReferenceImageTokens is the GPU reference's image tokens per image:
// the C-Abstractor pools ViT-B/16's 14×14 patch grid to 12×12.
const GPUReferenceImageTokens = 144

// GPUReferenceConfig is the GPU-sized reference model that `mmablate bench
// train --device cuda` and the cuda package's benchmarks time: a decoder of
// width 1024, 12 layers, 16 heads (4 kv heads), SwiGLU 2816, vocab 32768,
// sequence seq; with images, also a ViT-B/16 at 224 px (width 768, 12
// blocks, 12 heads, patch 16: 196 patches), trained, and MM1's base
// connector, the C-Abstractor (one ResBlock before and after pooling), with
// GPUReferenceImageTokens tokens. One definition, so that the CLI's figures
// and the benchmarks' are of the same model.
func GPUReferenceConfig(seq int, images bool) Config {
	d := DefaultDecoderConfig()
	d.Vocab, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.MaxSeq = 32768, 1024, 12, 16, 4, 2816, seq
	cfg := Config{Decoder: d}
	if images {
		cfg.Vision = &VisionConfig{Resolution: 224, Patch: 16, Width: 768, Depth: 12, Heads: 12}
		cfg.Connector = &ConnectorConfig{Type: ConnCAbstractor, Tokens: GPUReferenceImageTokens, Depth: 1}
	}
	return cfg
}
