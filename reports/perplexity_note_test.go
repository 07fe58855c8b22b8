package reports

import (
	"strings"
	"testing"
)

// TestPerplexityNote: the method note names eval.text of the baseline
// cell's resolved config and says whether training reads it.
func TestPerplexityNote(t *testing.T) {
	const sources = `data:
  sources:
    caption: {paths: [/w/captions], weight: 70}
    text: {paths: [/w/text], weight: 5}
`
	for _, tc := range []struct {
		name, resolved string
		want           []string
	}{
		{"held out", sources + "eval: {text: /w/eval/text, perplexity_samples: 16}\n",
			[]string{"the last 16 rows of /w/eval/text", "no data source of that cell reads: a validation perplexity"}},
		{"training split", sources + "eval: {text: /w/text/, perplexity_samples: 32}\n",
			[]string{"the last 32 rows of /w/text ", "training also reads (data source text)", "not a validation perplexity"}},
		{"file of a training directory", sources + "eval: {text: /w/text/shard-00000.parquet}\n",
			[]string{"/w/text/shard-00000.parquet", "data source text"}},
		{"sibling with a common prefix", sources + "eval: {text: /w/textbook}\n",
			[]string{"/w/textbook", "a validation perplexity"}},
		{"no eval.text", sources, []string{"does not say which directory", "unknown"}},
		{"no config", "", []string{"does not say which directory"}},
		{"not YAML", "eval: [", []string{"does not say which directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := perplexityNote(tc.resolved)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("note %q lacks %q", got, w)
				}
			}
		})
	}
}
