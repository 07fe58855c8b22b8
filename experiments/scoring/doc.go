// Package scoring owns the evaluation metrics: caption scores (CIDEr-D and
// BLEU-1..4 exactly as pycocoevalcap computes them, after its PTB
// tokenisation step) and VQA accuracy exactly as the official VQA
// evaluation (vqaEval.py, 2021) computes it, answer normalisation included.
//
// Scores are corpus-level, so one call scores a whole evaluated set:
//
//	s, err := scoring.Caption([]scoring.CaptionItem{
//		{ID: "img1", Prediction: "A red circle.", References: []string{"a red circle", "one red circle"}},
//		{ID: "img2", Prediction: "two squares", References: []string{"two blue squares"}},
//	})
//	// s.CIDEr, s.BLEU[3] (BLEU-4), s.PerItem[i].CIDEr
//
//	v, err := scoring.VQA([]scoring.VQAItem{{ID: "q1", Prediction: "Two", Answers: tenAnswers}})
//	// v.Accuracy on a 0–100 scale
//
// CIDEr-D's document frequencies come from the references of the evaluated
// set only, so a caption's score depends on the other images in the set:
// compare CIDEr only between runs scored on the same set.
//
// Faithfulness to the reference implementations, including their quirks, is
// the point: a number printed here must be the number the paper-standard
// scripts print for the same predictions. Each quirk is named where it is
// reproduced.
package scoring
