package models

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mmablate/mmablate/models/safetensors"
	"github.com/mmablate/mmablate/models/vision"
)

// Checkpoint file formats, recorded in each file's metadata so a weights
// file is never loaded as optimiser state or vice versa. A file written
// outside this package that LoadWeights or LoadEncoder should accept (a
// pretrained encoder) carries FormatKey = WeightsFormat.
const (
	FormatKey        = "format"
	WeightsFormat    = "mmablate.weights.v1"
	optimizerFormat  = "mmablate.adamw.v1"
	configKey        = "config"
	stepKey          = "step"
	momentPrefix     = "m."
	secondMomentPref = "v."
)

// SaveWeights writes every parameter under its MODEL-SPEC name (see
// README.md) to path atomically, with the config as JSON in the metadata
// plus any extra metadata the caller adds.
func (m *Model) SaveWeights(path string, extra map[string]string) error {
	if err := m.pull(); err != nil {
		return err
	}
	meta, err := m.metadata(WeightsFormat, extra)
	if err != nil {
		return err
	}
	tensors := make(map[string]safetensors.Tensor, len(m.Params.All()))
	for _, p := range m.Params.All() {
		tensors[p.Name] = safetensors.Tensor{Shape: p.Shape, Data: p.Data()}
	}
	return safetensors.WriteFile(path, tensors, meta)
}

func (m *Model) metadata(format string, extra map[string]string) (map[string]string, error) {
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{FormatKey: format, configKey: string(cfg)}
	for k, v := range extra {
		if _, reserved := meta[k]; reserved {
			return nil, fmt.Errorf("metadata key %q is reserved", k)
		}
		meta[k] = v
	}
	return meta, nil
}

// LoadWeights replaces every parameter with the tensor of the same name in
// path. Missing, extra or differently shaped tensors are errors naming the
// tensor, except vit.pos_embed from a ViT of another resolution, which is
// interpolated bilinearly onto this model's patch grid (MODEL-SPEC). It
// returns the file's metadata.
func (m *Model) LoadWeights(path string) (map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if got := f.Metadata[FormatKey]; got != WeightsFormat {
		return nil, fmt.Errorf("%s: metadata format %q, want %q", path, got, WeightsFormat)
	}
	for _, p := range m.Params.All() {
		t, ok := f.Tensors[p.Name]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s missing", path, p.Name)
		}
		if err := m.loadTensor(p.Name, p.Shape, p.Data(), t); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	for name := range f.Tensors {
		if _, ok := m.Params.Lookup(name); !ok {
			return nil, fmt.Errorf("%s: tensor %s is not a parameter of this model", path, name)
		}
	}
	return f.Metadata, m.push()
}

// LoadEncoder replaces the ViT's parameters (vit.*) with those of the
// weights file at path and leaves every other parameter as it is. The file
// must hold exactly this encoder's tensors under vit.* (same width and
// depth); vit.pos_embed from another resolution is interpolated onto this
// model's patch grid, as in LoadWeights.
func (m *Model) LoadEncoder(path string) error {
	if m.Config.Vision == nil {
		return fmt.Errorf("%s: the model has no image encoder to load", path)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return err
	}
	if got := f.Metadata[FormatKey]; got != WeightsFormat {
		return fmt.Errorf("%s: metadata format %q, want %q", path, got, WeightsFormat)
	}
	prefix := vision.Prefix + "."
	want := 0
	for _, p := range m.Params.All() {
		if !strings.HasPrefix(p.Name, prefix) {
			continue
		}
		want++
		t, ok := f.Tensors[p.Name]
		if !ok {
			return fmt.Errorf("%s: tensor %s missing (not an encoder of this depth?)", path, p.Name)
		}
		if err := m.loadTensor(p.Name, p.Shape, p.Data(), t); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	for name := range f.Tensors {
		if strings.HasPrefix(name, prefix) {
			if _, ok := m.Params.Lookup(name); !ok {
				return fmt.Errorf("%s: tensor %s is not a parameter of this encoder (deeper encoder?)", path, name)
			}
		}
	}
	return m.push()
}

// loadTensor copies t into dst of shape want, resizing vit.pos_embed from
// another patch grid.
func (m *Model) loadTensor(name string, want []int, dst []float32, t safetensors.Tensor) error {
	if slices.Equal(t.Shape, want) {
		copy(dst, t.Data)
		return nil
	}
	if name == vision.Prefix+".pos_embed" && len(t.Shape) == 2 && t.Shape[1] == want[1] {
		from := int(math.Round(math.Sqrt(float64(t.Shape[0]))))
		to := m.Config.Vision.Resolution / m.Config.Vision.Patch
		if from*from == t.Shape[0] {
			if err := vision.ResizePosEmbed(dst, t.Data, from, to, want[1]); err != nil {
				return fmt.Errorf("tensor %s: %w", name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("tensor %s has shape %v, the model needs %v", name, t.Shape, want)
}

// SaveOptimizer writes AdamW's step count and moments (m.<name>, v.<name>
// for every parameter) to path atomically.
func (m *Model) SaveOptimizer(path string) error {
	if err := m.pull(); err != nil {
		return err
	}
	meta, err := m.metadata(optimizerFormat, map[string]string{stepKey: strconv.Itoa(m.opt.T())})
	if err != nil {
		return err
	}
	mom, sec := m.opt.M(), m.opt.V()
	tensors := make(map[string]safetensors.Tensor, 2*len(m.Params.All()))
	for _, p := range m.Params.All() {
		tensors[momentPrefix+p.Name] = safetensors.Tensor{Shape: p.Shape, Data: mom[p.Offset : p.Offset+p.Size]}
		tensors[secondMomentPref+p.Name] = safetensors.Tensor{Shape: p.Shape, Data: sec[p.Offset : p.Offset+p.Size]}
	}
	return safetensors.WriteFile(path, tensors, meta)
}

// LoadOptimizer restores what SaveOptimizer wrote, for a model of the same
// parameter table.
func (m *Model) LoadOptimizer(path string) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return err
	}
	if got := f.Metadata[FormatKey]; got != optimizerFormat {
		return fmt.Errorf("%s: metadata format %q, want %q", path, got, optimizerFormat)
	}
	step, err := strconv.Atoi(f.Metadata[stepKey])
	if err != nil || step < 0 {
		return fmt.Errorf("%s: metadata step %q is not a step count", path, f.Metadata[stepKey])
	}
	if want := 2 * len(m.Params.All()); len(f.Tensors) != want {
		return fmt.Errorf("%s: %d tensors, want %d (m. and v. for each parameter)", path, len(f.Tensors), want)
	}
	mom := make([]float32, m.Params.Len())
	sec := make([]float32, m.Params.Len())
	for _, p := range m.Params.All() {
		for _, part := range []struct {
			prefix string
			dst    []float32
		}{{momentPrefix, mom}, {secondMomentPref, sec}} {
			t, ok := f.Tensors[part.prefix+p.Name]
			if !ok || !slices.Equal(t.Shape, p.Shape) {
				return fmt.Errorf("%s: tensor %s%s missing or not of shape %v", path, part.prefix, p.Name, p.Shape)
			}
			copy(part.dst[p.Offset:p.Offset+p.Size], t.Data)
		}
	}
	if err := m.opt.SetState(step, mom, sec); err != nil {
		return err
	}
	return m.push()
}
