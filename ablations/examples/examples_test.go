// Package examples_test checks the example sweeps of ablations/examples:
// each loads, expands to the grid its header describes, marks one baseline
// cell per seed, builds valid models, and shares the one shapes world of
// base.yaml that scripts/demo.sh generates before the sweeps run.
package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/experiments"
)

func TestExamples(t *testing.T) {
	base, err := experiments.Load("base.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file  string
		cells int
		first string // name of cell 0: the axis order and labels
	}{
		{"quickstart.yaml", 16, "tokens=1,connector=avgpool,res=32,seed=0"},
		{"resolution.yaml", 6, "res=16,seed=0"},
		{"image_tokens.yaml", 6, "tokens=1,seed=0"},
		{"connector.yaml", 8, "connector=avgpool,seed=0"},
		{"mixture.yaml", 24, "mixture=100/0/0,seed=0"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			name := tc.file[:len(tc.file)-len(".yaml")]
			if !bytes.HasPrefix(src, []byte("# "+name+": ")) {
				t.Errorf("does not open with the comment %q saying what it ablates", "# "+name+": ")
			}
			s, err := ablations.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Cells) != tc.cells {
				t.Fatalf("%d cells, want %d", len(s.Cells), tc.cells)
			}
			if s.Cells[0].Name != tc.first {
				t.Errorf("first cell %q, want %q", s.Cells[0].Name, tc.first)
			}
			baselines := map[int]int{}
			for _, c := range s.Cells {
				if c.Baseline {
					baselines[c.Seed]++
				}
				if !reflect.DeepEqual(c.Config.Shapes, base.Shapes) {
					t.Errorf("%s: shapes %+v, want base.yaml's %+v (scripts/demo.sh makes only that world)", c.Name, c.Config.Shapes, base.Shapes)
				}
				m := c.Config.Model
				// Each resolution has its own pretrained encoder: a zip that
				// paired a 64 px cell with the 32 px file would still run
				// (pos_embed is resized) but compare the wrong encoders.
				if v := m.Vision; v == nil || c.Config.Encoder == nil || !strings.HasSuffix(v.Init, fmt.Sprintf("-p%d-w%d-d%d-r%d.safetensors", v.Patch, v.Width, v.Depth, v.Resolution)) {
					t.Errorf("%s: model.vision.init %q is not the pretrained encoder of this vision config (or no encoder: section)", c.Name, m.Vision.Init)
				}
				m.Decoder.Vocab = base.Tokenizer.Vocab // set from the tokenizer at training time
				if err := m.Validate(); err != nil {
					t.Errorf("%s: %v", c.Name, err)
				}
			}
			for _, seed := range s.Seeds {
				if baselines[seed] != 1 {
					t.Errorf("seed %d: %d baseline cells, want 1", seed, baselines[seed])
				}
			}
		})
	}
}
