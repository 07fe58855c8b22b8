package eval

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data/tokenizer"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// render spells a prompt out, a run of placeholders as <|image|>×n.
func render(t *testing.T, tok *tokenizer.Tokenizer, ids []int32) string {
	t.Helper()
	var b strings.Builder
	img := tok.ImageID()
	for i := 0; i < len(ids); {
		j := i
		if ids[i] == img {
			for j < len(ids) && ids[j] == img {
				j++
			}
			fmt.Fprintf(&b, "[<|image|>×%d]", j-i)
		} else {
			for j < len(ids) && ids[j] != img {
				j++
			}
			s, err := tok.Decode(ids[i:j])
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(s)
		}
		i = j
	}
	return b.String()
}

func loadTestBenchmarks(t *testing.T, queries, support int) (*benchmark, *benchmark) {
	t.Helper()
	capDir, vqaDir, _ := testWorld(t, t.TempDir(), queries, support)
	ctx := context.Background()
	cb, err := loadBenchmark(ctx, TaskCaption, capDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := loadBenchmark(ctx, TaskVQA, vqaDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return cb, vb
}

// TestPromptGolden pins the prompt layout and the demonstration draw for
// seed 7: k = 0 and k = 2, both tasks, as text (testdata/prompts.golden),
// and checks the token structure directly.
func TestPromptGolden(t *testing.T) {
	tok := testTokenizer(t)
	cb, vb := loadTestBenchmarks(t, 3, 6)
	sp, _ := specialsOf(tok)
	var golden strings.Builder
	for _, bench := range []*benchmark{cb, vb} {
		b := testBuilder(t, tok, 64, 5)
		for _, k := range []int{0, 2} {
			for q := range 2 {
				demos := drawDemos(7, bench.task, 0, q, bench.support, k)
				p, err := b.build(bench.task, &bench.queries[q], demos)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&golden, "%s k=%d query=%d: %s\n", bench.task, k, q, render(t, tok, p.tokens))

				// Structure: <|bos|>, per demo N placeholders + text + <|endofchunk|>, then the query.
				want := []int32{sp.bos}
				var wantImages []*example
				for _, d := range demos {
					want = b.appendImage(want)
					want = append(want, tok.Encode(demoText(bench.task, d.ex, d.target))...)
					want = append(want, sp.endOfChunk)
					wantImages = append(wantImages, d.ex)
				}
				want = b.appendImage(want)
				want = append(want, tok.Encode(queryText(bench.task, &bench.queries[q]))...)
				wantImages = append(wantImages, &bench.queries[q])
				if !slices.Equal(p.tokens, want) {
					t.Errorf("%s k=%d: tokens\n%v\nwant\n%v", bench.task, k, p.tokens, want)
				}
				if !slices.Equal(p.images, wantImages) {
					t.Errorf("%s k=%d: images %v, want %v", bench.task, k, p.images, wantImages)
				}
				// An instruction-pruned model reads the query's task prompt.
				if wantInstr := tok.Encode(queryText(bench.task, &bench.queries[q])); !slices.Equal(p.instruction, wantInstr) {
					t.Errorf("%s k=%d: instruction %v, want the query text's tokens %v", bench.task, k, p.instruction, wantInstr)
				}
				placeholders := 0
				for _, id := range p.tokens {
					if id == sp.image {
						placeholders++
					}
				}
				if placeholders != (k+1)*testTokens || len(p.images) != k+1 {
					t.Errorf("%s k=%d: %d placeholders for %d images, want %d for %d", bench.task, k, placeholders, len(p.images), (k+1)*testTokens, k+1)
				}
				if p.dropped != 0 {
					t.Errorf("%s k=%d: dropped %d demonstrations of a short prompt", bench.task, k, p.dropped)
				}
				// The query's text is how a demonstration's text starts,
				// token for token, so the model continues it with a target.
				if k > 0 {
					qt := tok.Encode(queryText(bench.task, demos[0].ex))
					dt := tok.Encode(demoText(bench.task, demos[0].ex, demos[0].target))
					if !slices.Equal(dt[:len(qt)], qt) {
						t.Errorf("%s: query text %v is not a token prefix of demonstration text %v", bench.task, qt, dt)
					}
				}
			}
		}
	}
	path := filepath.Join("testdata", "prompts.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if golden.String() != string(want) {
		t.Errorf("prompts differ from %s:\n%s\nwant\n%s", path, golden.String(), want)
	}
}

func demoIDs(demos []demo) []string {
	var ids []string
	for _, d := range demos {
		ids = append(ids, d.ex.id)
	}
	return ids
}

func TestDrawDemos(t *testing.T) {
	cb, vb := loadTestBenchmarks(t, 4, 12)
	for _, bench := range []*benchmark{cb, vb} {
		queryIDs := map[string]bool{}
		for _, q := range bench.queries {
			queryIDs[q.id] = true
		}
		supportIDs := map[string]bool{}
		for _, s := range bench.support {
			supportIDs[s.id] = true
		}
		for q := range bench.queries {
			d8 := drawDemos(1, bench.task, 0, q, bench.support, 8)
			again := drawDemos(1, bench.task, 0, q, bench.support, 8)
			if !slices.Equal(demoIDs(d8), demoIDs(again)) || !slices.EqualFunc(d8, again, func(a, b demo) bool { return a.target == b.target }) {
				t.Errorf("%s query %d: same seed drew %v then %v", bench.task, q, demoIDs(d8), demoIDs(again))
			}
			if d4 := drawDemos(1, bench.task, 0, q, bench.support, 4); !slices.Equal(demoIDs(d4), demoIDs(d8)[:4]) {
				t.Errorf("%s query %d: 4-shot demos %v are not the first four of the 8-shot %v", bench.task, q, demoIDs(d4), demoIDs(d8))
			}
			for name, other := range map[string][]demo{
				"trial 1":    drawDemos(1, bench.task, 1, q, bench.support, 8),
				"seed 2":     drawDemos(2, bench.task, 0, q, bench.support, 8),
				"next query": drawDemos(1, bench.task, 0, q+1, bench.support, 8),
			} {
				if slices.Equal(demoIDs(other), demoIDs(d8)) {
					t.Errorf("%s query %d: %s drew the same demonstrations %v", bench.task, q, name, demoIDs(d8))
				}
			}
			seen := map[string]bool{}
			for _, d := range d8 {
				switch {
				case queryIDs[d.ex.id] || !supportIDs[d.ex.id]:
					t.Errorf("%s query %d: demonstration %q is not a support row", bench.task, q, d.ex.id)
				case seen[d.ex.id]:
					t.Errorf("%s query %d: demonstration %q drawn twice", bench.task, q, d.ex.id)
				}
				seen[d.ex.id] = true
				switch bench.task {
				case TaskCaption:
					if !slices.Contains(d.ex.refs, d.target) {
						t.Errorf("caption demo %q: target %q is not one of its references %v", d.ex.id, d.target, d.ex.refs)
					}
				case TaskVQA:
					if d.target != d.ex.answer {
						t.Errorf("vqa demo %q: target %q, want its true answer %q", d.ex.id, d.target, d.ex.answer)
					}
				}
			}
		}
		// Over many queries, the caption targets vary among references.
		if bench.task == TaskCaption {
			targets := map[string]bool{}
			for q := range 20 {
				for _, d := range drawDemos(1, bench.task, 0, q, bench.support, 8) {
					targets[d.target] = true
				}
			}
			if len(targets) <= len(bench.support) {
				t.Errorf("caption demo targets %d distinct over 20 queries: the reference is not drawn", len(targets))
			}
		}
	}
}

func TestPromptTooLongDropsDemos(t *testing.T) {
	tok := testTokenizer(t)
	cb, _ := loadTestBenchmarks(t, 1, 8)
	q := &cb.queries[0]
	demos := drawDemos(3, TaskCaption, 0, 0, cb.support, 4)
	full, err := testBuilder(t, tok, 1000, 1).build(TaskCaption, q, demos)
	if err != nil {
		t.Fatal(err)
	}
	demoLen := func(d demo) int { return testTokens + len(tok.Encode(demoText(TaskCaption, d.ex, d.target))) + 1 }
	queryLen := len(full.tokens) - 1
	for _, d := range demos {
		queryLen -= demoLen(d)
	}
	// A budget that holds the last two demonstrations and the query, but
	// not the third: exactly two are dropped, from the front.
	budget := 1 + demoLen(demos[2]) + demoLen(demos[3]) + queryLen
	for _, tc := range []struct {
		budget, dropped int
	}{{len(full.tokens), 0}, {len(full.tokens) - 1, 1}, {budget, 2}, {budget + demoLen(demos[1]) - 1, 2}, {1 + queryLen, 4}} {
		b := testBuilder(t, tok, tc.budget, 1)
		p, err := b.build(TaskCaption, q, demos)
		if err != nil {
			t.Fatalf("budget %d: %v", tc.budget, err)
		}
		if p.dropped != tc.dropped || len(p.tokens) > tc.budget {
			t.Errorf("budget %d: dropped %d (want %d), %d tokens", tc.budget, p.dropped, tc.dropped, len(p.tokens))
		}
		if !slices.Equal(demoIDs(p.demos), demoIDs(demos[tc.dropped:])) || len(p.images) != len(demos)-tc.dropped+1 {
			t.Errorf("budget %d: kept %v, want the last %d of %v", tc.budget, demoIDs(p.demos), len(demos)-tc.dropped, demoIDs(demos))
		}
		// The prompt is the full one with whole demonstrations cut out.
		want, _ := testBuilder(t, tok, 1000, 1).build(TaskCaption, q, demos[tc.dropped:])
		if !slices.Equal(p.tokens, want.tokens) {
			t.Errorf("budget %d: a demonstration was cut mid-way", tc.budget)
		}
	}
	if _, err := testBuilder(t, tok, queryLen, 1).build(TaskCaption, q, demos); err == nil || !strings.Contains(err.Error(), "without any demonstration") {
		t.Errorf("a query longer than the budget: err %v", err)
	}
}
