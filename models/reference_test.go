package models

import "testing"

// TestGPUReferenceConfig: both forms are valid models of the stated shape
// (the images form's connector pools the 14×14 grid to 12×12).
func TestGPUReferenceConfig(t *testing.T) {
	for _, images := range []bool{false, true} {
		c := GPUReferenceConfig(1024, images)
		if err := c.Validate(); err != nil {
			t.Fatalf("images %v: %v", images, err)
		}
		d := c.Decoder
		if d.Width != 1024 || d.Layers != 12 || d.Heads != 16 || d.KVHeads != 4 || d.FFNHidden != 2816 || d.Vocab != 32768 || d.MaxSeq != 1024 {
			t.Errorf("images %v: decoder %+v", images, d)
		}
		if (c.Vision != nil) != images || (c.Connector != nil) != images {
			t.Fatalf("images %v: vision %v, connector %v", images, c.Vision, c.Connector)
		}
		if images {
			if v := c.Vision; v.Resolution/v.Patch != 14 || v.Width != 768 || v.Depth != 12 {
				t.Errorf("vision %+v, want ViT-B/16 at 224 px", *v)
			}
			if c.Connector.Type != ConnCAbstractor || c.Connector.Tokens != GPUReferenceImageTokens {
				t.Errorf("connector %+v", *c.Connector)
			}
		}
	}
}
