package mixer

import (
	"reflect"
	"testing"
)

// TestBatchCopyFrom: the copy equals its source, shares none of its
// memory, and reuses its own buffers on the next copy.
func TestBatchCopyFrom(t *testing.T) {
	src := newBatch(2, 3, 1, 1, 7)
	for i := range src.Tokens {
		src.Tokens[i], src.Targets[i], src.LossMask[i] = int32(i), int32(i+1), 1
		src.Pos[i], src.DocIDs[i], src.Instruction[i] = int32(i%3), int32(i/3), i%2 == 0
	}
	src.Images, src.NumImages = append(src.Images, 0.5, 0.25, 0.125), 1
	var dst Batch
	dst.CopyFrom(&src)
	if !reflect.DeepEqual(dst, src) {
		t.Fatalf("copy %+v\ndiffers from %+v", dst, src)
	}
	tokens, images := &dst.Tokens[0], &dst.Images[0]
	src.Tokens[0], src.Images[0], src.Instruction[0] = 99, 9, false
	if dst.Tokens[0] != 0 || dst.Images[0] != 0.5 || !dst.Instruction[0] {
		t.Fatal("the copy shares memory with its source")
	}
	dst.CopyFrom(&src)
	if &dst.Tokens[0] != tokens || &dst.Images[0] != images {
		t.Fatal("a second copy of the same shape reallocated")
	}
	if !reflect.DeepEqual(dst, src) {
		t.Fatal("the second copy differs from its source")
	}
}
