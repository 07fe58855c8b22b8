package shapes

import (
	"github.com/mmablate/mmablate/data"
)

// SplitInstructions holds instruction-style samples (Config.Instructions
// rows; the split exists only when that is positive): one scene and a task
// prompt, the instruction, then its answer, as separate text segments, with
// meta "instruction" naming the prompt's segment so the mixer marks its
// tokens for instruction-following pruning (models/ifprune):
//
//	instructions/   kind caption   images [img, ·, ·]   texts [·, prompt, target]
//	                meta {"split", "task", "instruction": [1], "scene"}
//
// The prompt is experiments/eval's query text: "Caption:" (task caption,
// target " " + a caption) or "Question: What color is the star? Answer:"
// (task = the question type, target " " + the true answer). A fifth of the
// rows are captions, the rest questions of every type, so that the
// instruction differs between tasks as it does at evaluation.
const SplitInstructions = "instructions"

// instructionPrompt is the part of the eval query text before the target:
// eval's "Caption:" and "Question: … Answer:" (CaptionPrefix and
// AnswerPrefix without their trailing space, which starts the target).
const (
	instructionCaption = "Caption:"
	instructionAnswer  = " Answer:"
)

// instructionMeta is an instructions/ record's meta.
type instructionMeta struct {
	Split       string    `json:"split"`
	Task        string    `json:"task"`
	Instruction []int     `json:"instruction"`
	Scene       SceneJSON `json:"scene"`
}

// instructionRecord builds row of instructions/.
func (m *maker) instructionRecord(w *worker, row int) (*data.Record, error) {
	id := recordID(SplitInstructions, row)
	rng := recordRNG(m.cfg.Seed, SplitInstructions, row, 0)
	s := NewScene(rng, m.cfg.sceneOptions())
	img, err := m.image(w, rng, s, id)
	if err != nil {
		return nil, err
	}
	var task, prompt, target string
	if rng.IntN(5) == 0 {
		c, _ := Caption(rng, s)
		task, prompt, target = TaskCaption, instructionCaption, " "+c
	} else {
		q := Question(rng, s)
		task, prompt, target = q.Type, QuestionPrefix+q.Question+instructionAnswer, " "+q.Answer
	}
	return &data.Record{
		ID: id, Kind: data.KindCaption,
		Texts:  []*string{nil, &prompt, &target},
		Images: []*data.ImageRef{img, nil, nil},
		Meta:   marshalMeta(instructionMeta{Split: SplitInstructions, Task: task, Instruction: []int{1}, Scene: s.JSON()}),
	}, nil
}
