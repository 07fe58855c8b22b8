package models

import "testing"

func TestSyntheticBatch(t *testing.T) {
	cfg := tinyMultimodal(ConnAvgPool, 4, false)
	b := SyntheticBatch(cfg, 2, 24, true, 1)
	placeholders := 0
	for i, tok := range b.Tokens {
		if tok == b.ImageTokenID {
			placeholders++
			if b.LossMask[i] != 0 {
				t.Fatalf("placeholder at %d has loss mask %v", i, b.LossMask[i])
			}
		}
		if b.Targets[i] == b.ImageTokenID {
			t.Fatalf("target %d is the placeholder id", i)
		}
	}
	if b.NumImages != 2 || placeholders != 2*4 {
		t.Errorf("%d placeholders for %d images, want 8 for 2", placeholders, b.NumImages)
	}
	m := newTiny(t, cfg, 2, 24, 1)
	if _, err := m.Forward(b); err != nil {
		t.Errorf("the model rejects its own synthetic batch: %v", err)
	}
}
