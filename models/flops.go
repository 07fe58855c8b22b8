package models

// FLOPs counts one training step's floating-point operations for a batch of
// the model's B×T shape holding the given number of images, by the
// convention of README.md: matrix products only (every Linear, q·kᵀ and p·v
// over the full T×T square the engine computes, the tied logits,
// convolutions as their im2col products), 2·m·n·k each in forward and twice
// that in backward (input and weight gradients); a frozen ViT runs no
// backward. Norms, activations, softmax, cross-entropy and AdamW are O(n·d)
// and left out.
func (m *Model) FLOPs(images int) (forward, backward int64) {
	f := m.Config.decoderFLOPs(m.B, m.T)
	forward, backward = f, 2*f
	if m.img == nil || images == 0 {
		return forward, backward
	}
	vf, vb := m.img.vit.Cfg.FLOPs(images)
	cf, cb := m.img.conn.FLOPs(images)
	return forward + vf + cf, backward + vb + cb
}

func (c Config) decoderFLOPs(B, T int) int64 {
	d := c.Decoder
	n, D, hd := int64(B*T), int64(d.Width), int64(d.HeadDim())
	qd, kvd, F := int64(d.Heads)*hd, int64(d.KVHeads)*hd, int64(d.FFNHidden)
	layer := 2*n*D*qd + 2*2*n*D*kvd + 2*n*qd*D + // wq, wk, wv, wo
		2*2*int64(B)*int64(d.Heads)*int64(T)*int64(T)*hd + // q·kᵀ and p·v
		3*2*n*D*F // w1, w3, w2
	return int64(d.Layers)*layer + 2*n*D*int64(d.Vocab)
}
