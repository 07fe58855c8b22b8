package shapes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstructionsSplit: instructions/ rows are [image, prompt, target]
// with meta naming segment 1 as the instruction; the prompt is eval's query
// text and the target its answer; captions and every question type occur.
// Without Config.Instructions no such split is written.
func TestInstructionsSplit(t *testing.T) {
	out := t.TempDir()
	cfg := smallConfig()
	cfg.Instructions = 40
	generateIn(t, out, cfg, Options{Workers: 2})
	recs := readSplit(t, out, SplitInstructions)
	if len(recs) != 40 {
		t.Fatalf("%d rows, want 40", len(recs))
	}
	tasks := map[string]int{}
	for _, rec := range recs {
		if len(rec.Texts) != 3 || rec.Images[0] == nil || rec.Texts[1] == nil || rec.Texts[2] == nil {
			t.Fatalf("%s: want [image, prompt, target]", rec.ID)
		}
		var meta instructionMeta
		if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
			t.Fatalf("%s: meta: %v", rec.ID, err)
		}
		if len(meta.Instruction) != 1 || meta.Instruction[0] != 1 {
			t.Errorf("%s: meta instruction %v, want [1]", rec.ID, meta.Instruction)
		}
		prompt, target := *rec.Texts[1], *rec.Texts[2]
		switch {
		case meta.Task == TaskCaption && prompt == "Caption:":
		case meta.Task != TaskCaption && strings.HasPrefix(prompt, "Question: ") && strings.HasSuffix(prompt, " Answer:"):
		default:
			t.Errorf("%s: task %s with prompt %q", rec.ID, meta.Task, prompt)
		}
		if !strings.HasPrefix(target, " ") || len(target) < 2 {
			t.Errorf("%s: target %q should be a space then the answer", rec.ID, target)
		}
		tasks[meta.Task]++
	}
	if tasks[TaskCaption] == 0 || len(tasks) < 4 {
		t.Errorf("tasks %v: want captions and several question types", tasks)
	}

	plain := t.TempDir()
	generateIn(t, plain, smallConfig(), Options{Workers: 2})
	if _, err := os.Stat(filepath.Join(plain, SplitInstructions)); !os.IsNotExist(err) {
		t.Errorf("instructions/ written with Config.Instructions = 0 (stat: %v)", err)
	}
	st, err := os.ReadFile(filepath.Join(plain, StampName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(st), "instructions") {
		t.Errorf("synth.json mentions instructions without the split")
	}
}
