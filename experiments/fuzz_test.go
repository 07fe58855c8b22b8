package experiments

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary config bytes and one arbitrary override to
// Parse: it must return a Config or an error, never panic, and a Config
// it returns must be valid and marshal.
func FuzzParse(f *testing.F) {
	tiny, err := os.ReadFile("examples/tiny.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(base), "train.lr=1e-3")
	f.Add(tiny, "model.vision=null")
	f.Add([]byte("a: &x [*x]\n"), "data.sources.c.paths=[x]")
	f.Add([]byte("train: {threads: {blas: 2}}\n"), "eval.shots=[0, 4]")
	f.Fuzz(func(t *testing.T, b []byte, override string) {
		c, err := Parse(b, "f.yaml", "/base", []string{override})
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a config that does not validate: %v", err)
		}
		if _, err := c.Marshal(); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
