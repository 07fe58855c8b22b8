package models

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models/safetensors"
)

// TestLoadEncoder checks that a pretrained encoder replaces exactly the
// vit.* parameters, resizes pos_embed for another resolution, and refuses
// files that do not hold this encoder.
func TestLoadEncoder(t *testing.T) {
	dir := t.TempDir()
	src, err := New(tinyMultimodal(ConnAvgPool, 4, false), 2, 24, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	full := filepath.Join(dir, "final.safetensors")
	if err := src.SaveWeights(full, nil); err != nil {
		t.Fatal(err)
	}

	dstCfg := tinyMultimodal(ConnCAbstractor, 4, false)
	dst, err := New(dstCfg, 2, 24, Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	before := map[string][]float32{}
	for _, p := range dst.Params.All() {
		before[p.Name] = slices.Clone(p.Data())
	}
	if err := dst.LoadEncoder(full); err != nil {
		t.Fatal(err)
	}
	vit := 0
	for _, p := range dst.Params.All() {
		if strings.HasPrefix(p.Name, "vit.") {
			vit++
			s, _ := src.Params.Lookup(p.Name)
			if !slices.Equal(p.Data(), s.Data()) {
				t.Errorf("%s not loaded", p.Name)
			}
		} else if !slices.Equal(p.Data(), before[p.Name]) {
			t.Errorf("%s changed, but only vit.* may", p.Name)
		}
	}
	if vit == 0 {
		t.Fatal("no vit.* parameters")
	}

	// A smaller resolution takes the encoder with pos_embed interpolated.
	half := tinyMultimodal(ConnAvgPool, 1, false)
	half.Vision.Resolution = 8
	small, err := New(half, 2, 24, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := small.LoadEncoder(full); err != nil {
		t.Fatalf("resolution 16 → 8: %v", err)
	}
	pe, _ := small.Params.Lookup("vit.pos_embed")
	if got := pe.Shape; !slices.Equal(got, []int{4, 16}) {
		t.Fatalf("pos_embed shape %v", got)
	}

	// Files that are not this encoder.
	f, err := safetensors.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, edit func(map[string]safetensors.Tensor)) string {
		ts := map[string]safetensors.Tensor{}
		for k, v := range f.Tensors {
			ts[k] = v
		}
		edit(ts)
		p := filepath.Join(dir, name)
		if err := safetensors.WriteFile(p, ts, f.Metadata); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deeper := tinyMultimodal(ConnAvgPool, 4, false)
	deeper.Vision.Depth = 1
	shallow, err := New(deeper, 2, 24, Options{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer shallow.Close()
	text, err := New(Config{Decoder: tinyDecoder()}, 2, 24, Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer text.Close()
	for _, tc := range []struct {
		name  string
		model *Model
		path  string
		want  string
	}{
		{"missing tensor", dst, write("missing.safetensors", func(ts map[string]safetensors.Tensor) { delete(ts, "vit.norm.weight") }), "vit.norm.weight missing"},
		{"wrong shape", dst, write("shape.safetensors", func(ts map[string]safetensors.Tensor) {
			ts["vit.norm.weight"] = safetensors.Tensor{Shape: []int{3}, Data: []float32{1, 2, 3}}
		}), "vit.norm.weight has shape [3]"},
		{"deeper encoder", shallow, full, "vit.blocks.1"},
		{"no encoder", text, full, "no image encoder"},
		{"not a file", dst, filepath.Join(dir, "absent.safetensors"), "absent.safetensors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.model.LoadEncoder(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
