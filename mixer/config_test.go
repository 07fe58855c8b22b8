package mixer

import (
	"math"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
)

const goodYAML = `
sampling: stratified
seed: 7
sources:
  caption:     {paths: [shards/captions], weight: 45}
  interleaved: {paths: [shards/docs], weight: 45}
  text:        {paths: [shards/text], weight: 10, exhausted: stop}
schedule:
  - {step: 10000, weights: {caption: 50, interleaved: 10, text: 40}}
interpolation: linear
packing: {batch_size: 8, seq_len: 128, image_tokens: 64, resolution: 128, max_images: 16}
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources["text"].Exhausted != ExhaustedStop || c.Schedule[0].Weights["text"] != 40 || c.Packing.ImageTokens != 64 {
		t.Fatalf("parsed %+v", c)
	}
	_, err = ParseConfig([]byte(goodYAML + "shuffle: true\n"))
	if err == nil || !strings.Contains(err.Error(), "shuffle") {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestValidateNamesTheKey: every bad input is an error naming its key path.
func TestValidateNamesTheKey(t *testing.T) {
	good := func() Config {
		c, err := ParseConfig([]byte(goodYAML))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"zero weight (100:0:0)", func(c *Config) {
			c.Sources["caption"] = Source{Paths: []string{"x"}, Weight: 100}
			c.Sources["text"] = Source{Paths: []string{"x"}, Weight: 0}
		}, "data.sources.text.weight: 0: weights must be positive"},
		{"negative weight", func(c *Config) { c.Sources["caption"] = Source{Paths: []string{"x"}, Weight: -1} }, "data.sources.caption.weight: -1"},
		{"NaN weight", func(c *Config) { c.Schedule[0].Weights["text"] = math.NaN() }, "data.schedule[0].weights.text: NaN"},
		{"zero weight in a schedule", func(c *Config) { c.Schedule[0].Weights["text"] = 0 }, "data.schedule[0].weights.text: 0"},
		{"unknown source in a schedule", func(c *Config) {
			c.Schedule = append(c.Schedule, Phase{Step: 20000, Weights: map[string]float64{"video": 3}})
		}, `data.schedule[1].weights.video: unknown source "video"`},
		{"steps out of order", func(c *Config) {
			c.Schedule = append(c.Schedule, Phase{Step: 10000, Weights: map[string]float64{"text": 3}})
		}, "data.schedule[1].step: 10000 does not come after"},
		{"empty source", func(c *Config) { c.Sources["text"] = Source{Weight: 1} }, "data.sources.text.paths: no dataset paths"},
		{"no sources", func(c *Config) { c.Sources = nil; c.Schedule = nil }, "data.sources: no sources"},
		{"bad policy", func(c *Config) { c.Sources["text"] = Source{Paths: []string{"x"}, Weight: 1, Exhausted: "loop"} }, "data.sources.text.exhausted"},
		{"unknown layout", func(c *Config) {
			c.Sources["text"] = Source{Paths: []string{"x"}, Weight: 1, Layout: "webdataset"}
		}, `data.sources.text.layout: unknown layout "webdataset"`},
		{"bad on_error", func(c *Config) { c.Sources["text"] = Source{Paths: []string{"x"}, Weight: 1, OnError: "ignore"} }, `data.sources.text.on_error: "ignore": want fail or skip`},
		{"bad sampling", func(c *Config) { c.Sampling = "uniform" }, "data.sampling"},
		{"bad interpolation", func(c *Config) { c.Interpolation = "cubic" }, "data.interpolation"},
		{"batch size", func(c *Config) { c.Packing.BatchSize = 0 }, "data.packing.batch_size"},
		{"seq len", func(c *Config) { c.Packing.SeqLen = 1 }, "data.packing.seq_len"},
		{"images without resolution", func(c *Config) { c.Packing.Resolution = 0 }, "data.packing.resolution"},
		{"bad overflow", func(c *Config) { c.Packing.Overflow = "drop" }, "data.packing.overflow"},
		{"negative max images", func(c *Config) { c.Packing.MaxImages = -2 }, "data.packing.max_images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestNewChecksStreams: streams and sources must match by name.
func TestNewChecksStreams(t *testing.T) {
	c, err := ParseConfig([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	s := func() data.Stream { return newFake(nil, 1) }
	_, err = New(c, map[string]data.Stream{"caption": s(), "interleaved": s()}, testSpecials)
	if err == nil || !strings.Contains(err.Error(), "data.sources.text: no stream") {
		t.Fatalf("missing stream: %v", err)
	}
	_, err = New(c, map[string]data.Stream{"caption": s(), "interleaved": s(), "text": s(), "video": s()}, testSpecials)
	if err == nil || !strings.Contains(err.Error(), `"video"`) {
		t.Fatalf("extra stream: %v", err)
	}
	_, err = New(c, map[string]data.Stream{"caption": s(), "interleaved": s(), "text": s()}, Specials{Image: 1, EndOfChunk: 1, BOS: 2, Pad: 3})
	if err == nil || !strings.Contains(err.Error(), "distinct") {
		t.Fatalf("clashing specials: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte("sources: {a: {weight: -1}}"))
	f.Add([]byte("schedule: [{step: 1, weights: {zz: 1}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err == nil && len(c.Sources) == 0 {
			t.Fatalf("accepted a config without sources: %q", b)
		}
	})
}

// TestImagesPerSeq: the image slots of a sequence follow max_images (0: 16)
// and how many image_tokens runs fit seq_len, at least one.
func TestImagesPerSeq(t *testing.T) {
	for _, c := range []struct {
		p    Packing
		want int
	}{
		{Packing{SeqLen: 64}, 0},
		{Packing{SeqLen: 64, ImageTokens: 4}, 16},
		{Packing{SeqLen: 64, ImageTokens: 4, MaxImages: 3}, 3},
		{Packing{SeqLen: 64, ImageTokens: 16}, 4},
		{Packing{SeqLen: 64, ImageTokens: 16, MaxImages: 2}, 2},
		{Packing{SeqLen: 8, ImageTokens: 16}, 1},
	} {
		if got := c.p.ImagesPerSeq(); got != c.want {
			t.Errorf("%+v: %d image slots, want %d", c.p, got, c.want)
		}
	}
}
