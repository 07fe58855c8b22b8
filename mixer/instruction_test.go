package mixer

import (
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
)

// TestPackInstructionMarks: the tokens of the segments a sample's meta
// names as its instruction are marked in Batch.Instruction, across a split
// into the next row; every other token (BOS, placeholders, other samples,
// padding) is not.
func TestPackInstructionMarks(t *testing.T) {
	// Specials: pad 0, image 1, end of chunk 2, bos 3.
	instr := data.Sample{ID: "vqa", Meta: `{"split":"train","instruction":[1]}`, Segments: []data.Segment{
		{Image: testImage(1, 7)}, {Text: "q", Tokens: []int32{20, 21}}, {Text: "a", Tokens: []int32{22}}}}
	long := data.Sample{ID: "long", Meta: `{"instruction":[0]}`, Segments: []data.Segment{
		{Text: "qqqqq", Tokens: []int32{30, 31, 32, 33, 34}}, {Text: "a", Tokens: []int32{35}}}}
	text := data.Sample{ID: "txt", Meta: `{"split":"train"}`, Segments: []data.Segment{{Text: "c", Tokens: []int32{12}}}}
	cfg := oneSource(2, 8, 2, 1)
	batches, err := packOrdered(t, cfg, []data.Sample{instr, long, text})
	if err != nil {
		t.Fatal(err)
	}
	b := batches[0] // the text's end spills into a second batch
	// Row 0: bos img img 20 21 22 eoc | bos (of long); row 1: 30..34 35 eoc | bos … (text split).
	wantTok := []int32{3, 1, 1, 20, 21, 22, 2, 3, 30, 31, 32, 33, 34, 35, 2, 3}
	if !slices.Equal(b.Tokens, wantTok) {
		t.Fatalf("tokens %v, want %v", b.Tokens, wantTok)
	}
	var got []int
	for i, v := range b.Instruction {
		if v {
			got = append(got, i)
		}
	}
	if want := []int{3, 4, 8, 9, 10, 11, 12}; !slices.Equal(got, want) {
		t.Errorf("instruction marks at %v, want %v", got, want)
	}
}

func TestPackInstructionMetaErrors(t *testing.T) {
	for _, tc := range []struct {
		name, meta, want string
	}{
		{"image segment", `{"instruction":[0]}`, `sample "bad": meta key instruction: segment 0 is not a text segment`},
		{"out of range", `{"instruction":[5]}`, "segment 5 is not a text segment of the sample's 2"},
		{"not a list", `{"instruction":"first"}`, "meta key instruction: json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := data.Sample{ID: "bad", Meta: tc.meta, Segments: []data.Segment{{Image: testImage(1, 7)}, {Text: "q", Tokens: []int32{20}}}}
			_, err := packOrdered(t, oneSource(2, 8, 2, 1), []data.Sample{s})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzInstructionSegments: any meta bytes give an error or indices of text
// segments of the sample, never a panic.
func FuzzInstructionSegments(f *testing.F) {
	for _, seed := range []string{`{"instruction":[1]}`, `{"instruction":[0,1,1]}`, `{"instruction":[-1]}`,
		`{"instruction":null}`, `{"instruction":[1e30]}`, `{"split":"train"}`, `"instruction"`, `{"instruction":`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, meta string) {
		s := data.Sample{ID: "f", Meta: meta, Segments: []data.Segment{{Image: testImage(1, 7)}, {Text: "q", Tokens: []int32{20}}}}
		idx, err := instructionSegments(s)
		if err != nil {
			return
		}
		for _, i := range idx {
			if i != 1 {
				t.Fatalf("meta %q: accepted segment %d", meta, i)
			}
		}
	})
}
