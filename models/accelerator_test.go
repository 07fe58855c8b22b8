package models

import (
	"slices"
	"strings"
	"testing"
)

// TestImagePathForAccelerator: ImageForward and ImageBackward, the image
// path an Accelerator leaves on the host, give exactly the image tokens
// and image-path gradients of the host engine's Forward and Backward, and
// ImageParams spans exactly the ViT's and connector's parameters.
func TestImagePathForAccelerator(t *testing.T) {
	cfg := Config{Decoder: DefaultDecoderConfig(),
		Vision:    &VisionConfig{Resolution: 32, Patch: 8, Width: 48, Depth: 1, Heads: 4},
		Connector: &ConnectorConfig{Type: ConnAvgPool, Tokens: 4}}
	cfg.Decoder.Width, cfg.Decoder.Layers, cfg.Decoder.FFNHidden = 64, 1, 128
	const B, T = 2, 64
	ref, err := New(cfg, B, T, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	m, err := New(cfg, B, T, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := SyntheticBatch(cfg, B, T, true, 5)
	if _, err := ref.Forward(b); err != nil {
		t.Fatal(err)
	}
	ref.Backward(b)

	tokens, places, err := m.ImageForward(b)
	if err != nil {
		t.Fatal(err)
	}
	D := cfg.Decoder.Width
	if len(places) != B*cfg.Connector.Tokens || len(tokens) != len(places)*D {
		t.Fatalf("%d places, %d token values; want %d places", len(places), len(tokens), B*cfg.Connector.Tokens)
	}
	for r, p := range places {
		if b.Tokens[p] != b.ImageTokenID {
			t.Fatalf("place %d is token %d, not a placeholder", p, b.Tokens[p])
		}
		if !slices.Equal(tokens[r*D:(r+1)*D], ref.acts.xs[0][p*D:(p+1)*D]) {
			t.Fatalf("image token %d differs from the host Forward's embedding row %d", r, p)
		}
	}
	m.Params.Grad()[0] = 42 // ImageBackward must leave the decoder's gradients alone
	m.ImageBackward(b, ref.dimgs[:len(tokens)])
	lo, hi := m.ImageParams()
	for _, p := range m.Params.All() {
		img := !strings.HasPrefix(p.Name, "llm.")
		if in := p.Offset >= lo && p.Offset+p.Size <= hi; in != img {
			t.Fatalf("%s [%d, %d) inside ImageParams [%d, %d): %v", p.Name, p.Offset, p.Offset+p.Size, lo, hi, in)
		}
	}
	if lo == hi {
		t.Fatal("ImageParams is empty for a multimodal model")
	}
	if !slices.Equal(m.Params.Grad()[lo:hi], ref.Params.Grad()[lo:hi]) {
		t.Fatal("image-path gradients differ from the host Backward's")
	}
	if m.Params.Grad()[0] != 42 {
		t.Fatal("ImageBackward changed a decoder gradient")
	}

	text, err := New(Config{Decoder: cfg.Decoder}, B, T, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer text.Close()
	tb := SyntheticBatch(text.Config, B, T, false, 5)
	if tokens, places, err := text.ImageForward(tb); err != nil || tokens != nil || places != nil {
		t.Fatalf("text-only ImageForward: %d values, %d places, %v", len(tokens), len(places), err)
	}
	if lo, hi := text.ImageParams(); lo != hi {
		t.Fatalf("text-only ImageParams [%d, %d)", lo, hi)
	}
}
