package eval

import (
	"encoding/json"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/experiments/scoring"
)

// FuzzParseExample: any meta and question text gives an example that
// satisfies its task's invariants, or an error; never a panic.
func FuzzParseExample(f *testing.F) {
	f.Add(true, `{"references": ["a red circle", "one circle"]}`, "", true)
	f.Add(false, `{"answer": "red", "answers": ["red","red","red","red","red","red","red","red","red","grey"]}`, "What color?", true)
	f.Add(false, `{"answers": null}`, "", false)
	f.Add(true, `{"references": "x"}`, "q", true)
	f.Add(true, `[1, 2]`, "", false)
	f.Fuzz(func(t *testing.T, caption bool, meta, question string, support bool) {
		task := TaskVQA
		if caption {
			task = TaskCaption
		}
		rec := &data.Record{ID: "r", Kind: data.KindCaption, Meta: meta,
			Images: []*data.ImageRef{{Bytes: []byte{1}}, nil}, Texts: []*string{nil, &question}}
		ex, _, err := parseExample(task, rec, support)
		if err != nil {
			return
		}
		if !json.Valid([]byte(meta)) {
			t.Fatalf("accepted invalid meta %q", meta)
		}
		switch task {
		case TaskCaption:
			if len(ex.refs) == 0 {
				t.Fatal("accepted a caption row without references")
			}
		case TaskVQA:
			if len(ex.answers) != scoring.NumVQAAnswers || ex.question == "" || (support && ex.answer == "") {
				t.Fatalf("accepted a VQA row with %d answers, question %q, answer %q", len(ex.answers), ex.question, ex.answer)
			}
		}
	})
}

// FuzzParseResults: any bytes parse into results that encode again, or
// fail; never a panic.
func FuzzParseResults(f *testing.F) {
	f.Add([]byte(`{"seed": 1, "config": {"shots": [0, 4]}, "tasks": [{"task": "vqa", "shots": [{"shots": 0, "metrics": {"accuracy": {"mean": 50, "std": 0, "trials": [50]}}}]}]}`))
	f.Add([]byte(`{"perplexity": {"perplexity": 12.5}}`))
	f.Add([]byte(`{"seed": -1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResults(b)
		if err != nil {
			return
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("parsed results do not encode: %v", err)
		}
	})
}
