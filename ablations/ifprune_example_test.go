package ablations

import (
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models"
)

// TestIfpruneExample: examples/ifprune.yaml expands to the four FFN
// variants of the instruction-following pruning ablation, at matched
// active channels for the three 96-channel ones, each a valid model.
func TestIfpruneExample(t *testing.T) {
	s, err := Load("examples/ifprune.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type ffn struct {
		hidden, active int
		mode           string
	}
	want := map[string]ffn{
		"ffn=dense-96":      {96, 96, models.PruneNone},
		"ffn=dense-384":     {384, 384, models.PruneNone},
		"ffn=static-96/384": {384, 96, models.PruneStatic},
		"ffn=instr-96/384":  {384, 96, models.PruneInstruction},
	}
	if len(s.Cells) != 3*len(want) {
		t.Fatalf("%d cells, want %d (three seeds)", len(s.Cells), 3*len(want))
	}
	for _, c := range s.Cells {
		d := c.Config.Model.Decoder
		w, ok := want[c.Name[:strings.LastIndex(c.Name, ",")]]
		if !ok {
			t.Errorf("unexpected cell %s", c.Name)
			continue
		}
		if got := (ffn{d.FFNHidden, d.ActiveFFN(), d.FFNPruning}); got != w {
			t.Errorf("%s: ffn %+v, want %+v", c.Name, got, w)
		}
		m := c.Config.Model
		m.Decoder.Vocab = 512 // set from the tokenizer at training time
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}
