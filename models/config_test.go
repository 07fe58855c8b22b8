package models

import (
	"strings"
	"testing"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := Config{Decoder: DefaultDecoderConfig()}
	if err := c.Validate(); err != nil {
		t.Fatalf("text-only: %v", err)
	}
}

func TestValidateNamesKey(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"heads", func(c *Config) { c.Decoder.Heads = 3 }, "model.decoder.heads: 3 does not divide decoder.width 256"},
		{"odd head dim", func(c *Config) { c.Decoder.Width = 12; c.Decoder.Heads = 4; c.Decoder.KVHeads = 4 }, "model.decoder.heads: head dimension"},
		{"kv_heads", func(c *Config) { c.Decoder.KVHeads = 3 }, "model.decoder.kv_heads: 3 does not divide"},
		{"vocab", func(c *Config) { c.Decoder.Vocab = 0 }, "model.decoder.vocab: must be positive"},
		{"max_seq", func(c *Config) { c.Decoder.MaxSeq = 1 << 30 }, "model.decoder.max_seq: 1073741824 is above"},
		{"rope", func(c *Config) { c.Decoder.RopeBase = 0 }, "model.decoder.rope_base"},
		{"resolution", func(c *Config) { c.Vision.Resolution = 100 }, "model.vision.resolution 100 is not a multiple of model.vision.patch 16"},
		{"vision heads", func(c *Config) { c.Vision.Heads = 5 }, "model.vision.heads"},
		{"avgpool square", func(c *Config) { c.Connector.Type = ConnAvgPool; c.Connector.Tokens = 60 }, "model.connector.tokens 60 is not a perfect square"},
		{"cabstractor square", func(c *Config) { c.Connector.Tokens = 50 }, "model.connector.tokens 50 is not a perfect square"},
		{"pool larger than grid", func(c *Config) { c.Connector.Tokens = 81 }, "larger than the 8×8 patch grid"},
		{"attnpool tokens", func(c *Config) { c.Connector.Type = ConnAttnPool; c.Connector.Tokens = 65 }, "model.connector.tokens 65 is more than"},
		{"mlp tokens", func(c *Config) { c.Connector.Type = ConnMLP; c.Connector.Tokens = 16 }, "model.connector.tokens"},
		{"cabstractor depth", func(c *Config) { c.Connector.Depth = 0 }, "model.connector.depth"},
		{"type", func(c *Config) { c.Connector.Type = "qformer" }, `model.connector.type "qformer" is not a connector`},
		{"connector alone", func(c *Config) { c.Vision = nil }, "model.vision: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("decoder:\n  layers: 2\nconnector:\n  type: attnpool\n  tokens: 16\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Decoder.Layers != 2 || c.Decoder.Width != 256 || !c.Decoder.QKNorm || c.Connector.Type != ConnAttnPool || c.Connector.Tokens != 16 {
		t.Errorf("parsed %+v / %+v: overrides or defaults lost", c.Decoder, *c.Connector)
	}
	if _, err := ParseConfig([]byte("decoder:\n  layer: 2\n")); err == nil || !strings.Contains(err.Error(), "layer") {
		t.Errorf("unknown key: error %v", err)
	}
	if c, err := ParseConfig([]byte("vision: null\nconnector: null\n")); err != nil || c.Vision != nil {
		t.Errorf("text-only: %v, vision %v", err, c.Vision)
	}
	if c, err := ParseConfig(nil); err != nil || c.Decoder != DefaultDecoderConfig() {
		t.Errorf("empty body: %v, %+v", err, c.Decoder)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("decoder:\n  layers: 2\nconnector:\n  type: attnpool\n  tokens: 16\n"))
	f.Add([]byte("vision: null\nconnector: null\n"))
	f.Add([]byte("decoder: {heads: 0}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// Whatever parses is valid, so the sizes New will allocate are positive
		// and consistent.
		if c.Decoder.Width%c.Decoder.Heads != 0 || c.Decoder.Heads%c.Decoder.KVHeads != 0 {
			t.Fatalf("accepted inconsistent decoder %+v", c.Decoder)
		}
	})
}
