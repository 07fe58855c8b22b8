package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/data"
)

func TestRanksReadEveryRowOnce(t *testing.T) {
	tests := []struct {
		name      string
		rowGroups [][]int64
		world     int
	}{
		{"more files than ranks", uniform(5, 2, 3), 2},
		{"files equal ranks", uniform(4, 1, 10), 4},
		{"fewer files than ranks", uniform(2, 3, 4), 5},
		{"one file, many row groups", uniform(1, 7, 2), 3},
		{"fewer row groups than ranks", uniform(1, 2, 9), 4},
		{"one row group, rows split", uniform(1, 1, 5), 3},
		{"fewer rows than ranks", uniform(1, 1, 2), 4},
		{"uneven and empty", [][]int64{{3, 0, 5}, {}, {1}, {7, 2}}, 3},
		{"world 1", uniform(3, 2, 4), 1},
	}
	for _, tt := range tests {
		for _, buffer := range []int{0, 4} {
			t.Run(fmt.Sprintf("%s/buffer=%d", tt.name, buffer), func(t *testing.T) {
				src := newFakeSource(tt.rowGroups)
				want := src.allIDs()
				slices.Sort(want)
				for ep := range 2 {
					var got []string
					for rank := range tt.world {
						r := openFake(t, context.Background(), src, newFakeDecoder(),
							config{seed: 7, rank: rank, world: tt.world, shuffleBuffer: buffer, workers: 2})
						r.epoch = ep
						got = append(got, epoch(t, r)...)
					}
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Fatalf("epoch %d: ranks together read %v, want each of %v once", ep, got, want)
					}
				}
			})
		}
	}
}

func TestOrderIsSeededAndIndependentOfWorkers(t *testing.T) {
	src := newFakeSource(uniform(4, 3, 5))
	read := func(seed int64, workers, buffer int) []string {
		r := openFake(t, context.Background(), src, newFakeDecoder(),
			config{seed: seed, shuffleBuffer: buffer, workers: workers})
		return events(t, r, 2*(60+1))
	}
	for _, buffer := range []int{0, 16} {
		base := read(1, 1, buffer)
		if got := read(1, 4, buffer); !slices.Equal(got, base) {
			t.Errorf("buffer %d: 4 workers gave another order than 1", buffer)
		}
		if got := read(1, 1, buffer); !slices.Equal(got, base) {
			t.Errorf("buffer %d: the same seed gave another order", buffer)
		}
		if got := read(2, 1, buffer); slices.Equal(got, base) {
			t.Errorf("buffer %d: seeds 1 and 2 gave the same order", buffer)
		}
		if slices.Equal(base[:61], base[61:]) {
			t.Errorf("buffer %d: epochs 0 and 1 have the same order", buffer)
		}
	}
	if slices.Equal(read(1, 1, 0), read(1, 1, 16)) {
		t.Error("the shuffle buffer did not change the order")
	}
}

func TestRowGroupsStayContiguousWithoutBuffer(t *testing.T) {
	// Without a buffer, the rows of a row group stay together and in order.
	src := newFakeSource(uniform(2, 2, 4))
	r := openFake(t, context.Background(), src, newFakeDecoder(), config{seed: 3, workers: 1})
	ids := epoch(t, r)
	for i := 0; i < len(ids); i += 4 {
		var f, row int
		fmt.Sscanf(ids[i], "f%d-%d", &f, &row)
		for k := 1; k < 4; k++ {
			if want := rowID(f, int64(row+k)); ids[i+k] != want {
				t.Fatalf("row group starting at %s continues with %s, want %s (%v)", ids[i], ids[i+k], want, ids)
			}
		}
	}
}

func TestResumeMatchesUninterrupted(t *testing.T) {
	rowGroups := [][]int64{{4, 3}, {5}, {2, 2, 2}}
	const total = 18
	for _, buffer := range []int{0, 5} {
		for _, workers := range []int{1, 4} {
			for _, world := range []int{1, 2} {
				t.Run(fmt.Sprintf("buffer=%d/workers=%d/world=%d", buffer, workers, world), func(t *testing.T) {
					src := newFakeSource(rowGroups)
					src.layoutBad["f0-2"] = true
					src.decodeBad["f2-4"] = true
					src.decodeBad["f1-0"] = true
					cfg := config{seed: 11, rank: world - 1, world: world, shuffleBuffer: buffer, workers: workers, onError: data.OnErrorSkip}
					const horizon = 3*total + 3
					want := events(t, openFake(t, context.Background(), src, newFakeDecoder(), cfg), horizon)
					for n := 0; n <= horizon-5; n++ {
						first := openFake(t, context.Background(), src, newFakeDecoder(), cfg)
						events(t, first, n)
						blob, err := json.Marshal(first.State())
						if err != nil {
							t.Fatal(err)
						}
						first.Close()
						var st data.State
						if err := json.Unmarshal(blob, &st); err != nil {
							t.Fatal(err)
						}
						dec := newFakeDecoder()
						second := openFake(t, context.Background(), src, dec, cfg)
						if err := second.Restore(st); err != nil {
							t.Fatalf("n=%d: %v", n, err)
						}
						// Up to the end of this epoch, nothing passed before the
						// restore point is decoded again.
						rest := slices.Index(want[n:], "EOF") + 1
						got := events(t, second, rest)
						for _, id := range want[n-int(st.Consumed) : n] {
							if dec.count(id) > 0 {
								t.Fatalf("n=%d: restore decoded %s, which was returned before", n, id)
							}
						}
						got = append(got, events(t, second, horizon-n-rest)...)
						if !slices.Equal(got, want[n:]) {
							t.Fatalf("n=%d: resumed reader yields %v, uninterrupted %v", n, got, want[n:])
						}
						if wantSkips := skippedAfter(t, src, cfg, horizon); !maps.Equal(second.Skipped(), wantSkips) {
							t.Fatalf("n=%d: resumed skip counts %v, uninterrupted %v", n, second.Skipped(), wantSkips)
						}
					}
				})
			}
		}
	}
}

func skippedAfter(t *testing.T, src *fakeSource, cfg config, n int) data.SkipCounts {
	r := openFake(t, context.Background(), src, newFakeDecoder(), cfg)
	events(t, r, n)
	return r.Skipped()
}

func TestRestoreSkipsWholeRowGroupsAndDecodesNothingPassed(t *testing.T) {
	for _, buffer := range []int{0, 3} {
		src := newFakeSource(uniform(3, 4, 10)) // 12 row groups of 10 rows
		cfg := config{seed: 5, shuffleBuffer: buffer, workers: 2}
		first := openFake(t, context.Background(), src, newFakeDecoder(), cfg)
		passed := events(t, first, 75)
		st := first.State()
		first.Close()

		src.reads = map[[2]int]int{}
		dec := newFakeDecoder()
		second := openFake(t, context.Background(), src, dec, cfg)
		if err := second.Restore(st); err != nil {
			t.Fatal(err)
		}
		events(t, second, 1)
		second.Close()
		for _, id := range passed {
			if dec.count(id) > 0 {
				t.Errorf("buffer %d: restore decoded %s, passed before the restore point", buffer, id)
			}
		}
		// 75 rows passed: the first 7 row groups are done, except those
		// still holding buffered rows (at most the buffer size of them).
		if reads := src.totalReads(); reads > 12-7+buffer {
			t.Errorf("buffer %d: restore read %d row groups, want at most %d", buffer, reads, 12-7+buffer)
		}
	}
}

func TestRestoreRejectsChanges(t *testing.T) {
	src := newFakeSource(uniform(3, 2, 4))
	cfg := config{seed: 9, workers: 1}
	r := openFake(t, context.Background(), src, newFakeDecoder(), cfg)
	events(t, r, 5)
	good := r.State()

	change := func(f func(*data.State)) data.State {
		s := good
		s.Shards = slices.Clone(good.Shards)
		f(&s)
		return s
	}
	tests := []struct {
		name  string
		state data.State
		cfg   config
		want  string
	}{
		{"rows changed", change(func(s *data.State) { s.Shards[1].Rows = 7 }), cfg, "shard 1 was shard-00001.parquet with 7 rows, now shard-00001.parquet with 8 rows"},
		{"name changed", change(func(s *data.State) { s.Shards[2].Name = "other.parquet" }), cfg, "shard 2 was other.parquet"},
		{"shard added", change(func(s *data.State) { s.Shards = s.Shards[:2] }), cfg, "state lists 2 shards, the dataset has 3"},
		{"rank differs", good, config{seed: 9, rank: 1, world: 2, workers: 1}, "rank 0 of world size 1, the reader is rank 1 of 2"},
		{"world size differs", change(func(s *data.State) { s.WorldSize = 2 }), cfg, "world size 2"},
		{"seed differs", change(func(s *data.State) { s.Seed = 10 }), cfg, "seed 10"},
		{"position past the epoch", change(func(s *data.State) { s.Position, s.Consumed = 25, 25 }), cfg, "past the 24 rows"},
		{"position before consumed", change(func(s *data.State) { s.Position = 2 }), cfg, "invalid position"},
		{"negative epoch", change(func(s *data.State) { s.Epoch = -1 }), cfg, "invalid position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := openFake(t, context.Background(), src, newFakeDecoder(), tt.cfg)
			err := fresh.Restore(tt.state)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := r.Restore(good); err == nil {
		t.Error("Restore after Next succeeded")
	}
}

func TestOnErrorFailReturnsRowError(t *testing.T) {
	tests := []struct {
		name              string
		layoutBad, decBad string
		wantColumn        string
		wantSentinel      error
	}{
		{"layout", "f0-5", "", "texts", data.ErrNullText},
		{"decode", "", "f0-5", "images", data.ErrImageFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(uniform(1, 2, 4))
			src.layoutBad[tt.layoutBad] = true
			src.decodeBad[tt.decBad] = true
			r := openFake(t, context.Background(), src, newFakeDecoder(), config{seed: 1, workers: 3, onError: data.OnErrorFail})
			var err error
			for err == nil {
				_, err = r.Next(context.Background())
			}
			var re *data.RowError
			if !errors.As(err, &re) {
				t.Fatalf("Next = %v, want a *data.RowError", err)
			}
			if !strings.HasSuffix(re.File, "shard-00000.parquet") || re.RowGroup != 1 || re.Row != 5 || re.Column != tt.wantColumn || !errors.Is(err, tt.wantSentinel) {
				t.Fatalf("RowError = %+v (%v), want shard-00000.parquet row group 1 row 5 column %s", re, err, tt.wantColumn)
			}
			if _, again := r.Next(context.Background()); again != err {
				t.Fatalf("Next after a failure = %v, want the same error", again)
			}
		})
	}
}

func TestOnErrorSkipCountsByReason(t *testing.T) {
	src := newFakeSource(uniform(2, 2, 5))
	src.layoutBad["f0-1"] = true
	src.layoutBad["f1-9"] = true
	src.decodeBad["f1-3"] = true
	r := openFake(t, context.Background(), src, newFakeDecoder(), config{seed: 2, workers: 2, onError: data.OnErrorSkip, shuffleBuffer: 3})
	ids := epoch(t, r)
	if len(ids) != 17 {
		t.Fatalf("read %d samples, want 20 rows less 3 skipped", len(ids))
	}
	want := data.SkipCounts{data.ErrNullText.Error(): 2, data.ErrImageFormat.Error(): 1}
	if got := r.Skipped(); !maps.Equal(got, want) {
		t.Fatalf("Skipped = %v, want %v", got, want)
	}
	if got := r.State().Skipped; !maps.Equal(got, want) {
		t.Fatalf("State.Skipped = %v, want %v", got, want)
	}
}

func TestSampleSegments(t *testing.T) {
	src := newFakeSource(uniform(1, 1, 1))
	r := openFake(t, context.Background(), src, newFakeDecoder(), config{workers: 1, tokenizer: byteTokenizer{}})
	s, err := r.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "f0-0" || s.Kind != data.KindCaption || s.Meta != "{}" || len(s.Segments) != 2 {
		t.Fatalf("sample = %+v", s)
	}
	if !s.Segments[0].IsImage() || s.Segments[0].Image.Pix[0] != float32(len("f0-0")) {
		t.Errorf("segment 0 = %+v, want the decoded image", s.Segments[0])
	}
	txt := s.Segments[1]
	if txt.IsImage() || txt.Text != "caption of f0-0" || len(txt.Tokens) != len(txt.Text) || txt.Tokens[0] != 'c' {
		t.Errorf("segment 1 = %+v, want the tokenized caption", txt)
	}
}

type byteTokenizer struct{}

func (byteTokenizer) Encode(s string) []int32 {
	out := make([]int32, len(s))
	for i := range len(s) {
		out[i] = int32(s[i])
	}
	return out
}

func TestShortRowGroupIsAnError(t *testing.T) {
	src := newFakeSource(uniform(2, 2, 3))
	src.shortRG = [2]int{1, 0}
	r := openFake(t, context.Background(), src, newFakeDecoder(), config{seed: 1, workers: 2})
	var err error
	for err == nil {
		_, err = r.Next(context.Background())
	}
	if !strings.Contains(err.Error(), "shard-00001.parquet: row group 0: read 2 of the 3 rows") {
		t.Fatalf("Next = %v, want the short row group named", err)
	}
}

func TestPrefetchIsBounded(t *testing.T) {
	const rg, buffer, workers = 10, 7, 2
	src := newFakeSource(uniform(2, 50, rg))
	r := openFake(t, context.Background(), src, newFakeDecoder(), config{seed: 1, workers: workers, shuffleBuffer: buffer})
	events(t, r, 20)
	time.Sleep(20 * time.Millisecond) // let the producer run as far ahead as it can
	src.mu.Lock()
	ahead := src.rowsRead - 20
	src.mu.Unlock()
	// Queued jobs, the buffer, the row being emitted and the rest of its row group.
	if limit := int64(2*workers + workers + buffer + rg); ahead > limit {
		t.Fatalf("producer read %d rows ahead of Next, want at most %d", ahead, limit)
	}
}

func TestCancelStopsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, closeFirst := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		src := newFakeSource(uniform(4, 10, 10))
		r, err := newReader(ctx, config{seed: 1, workers: 4, shuffleBuffer: 8}, src.files(), src, newFakeDecoder().decode)
		if err != nil {
			t.Fatal(err)
		}
		events(t, r, 15)
		if closeFirst {
			r.Close()
			cancel()
		} else {
			cancel()
			var err error
			for err == nil {
				_, err = r.Next(context.Background())
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Next after cancel = %v, want context.Canceled", err)
			}
			if _, err := r.Next(context.Background()); !errors.Is(err, context.Canceled) {
				t.Fatalf("second Next after cancel = %v", err)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after cancel, %d before", n, before)
	}
}

func TestCallerCancelKeepsPosition(t *testing.T) {
	src := newFakeSource(uniform(2, 2, 5))
	cfg := config{seed: 4, workers: 2, shuffleBuffer: 3}
	want := events(t, openFake(t, context.Background(), src, newFakeDecoder(), cfg), 12)
	r := openFake(t, context.Background(), src, newFakeDecoder(), cfg)
	got := events(t, r, 6)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled ctx = %v", err)
	}
	got = append(got, events(t, r, 6)...)
	if !slices.Equal(got, want) {
		t.Fatalf("after a cancelled Next: %v, want %v", got, want)
	}
}

func TestStateAtEpochEnd(t *testing.T) {
	src := newFakeSource(uniform(1, 2, 3))
	r := openFake(t, context.Background(), src, newFakeDecoder(), config{seed: 1, workers: 1})
	events(t, r, 6)
	if s := r.State(); s.Epoch != 0 || s.Consumed != 6 || s.Position != 6 {
		t.Fatalf("after the last sample: %+v", s)
	}
	if _, err := r.Next(context.Background()); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if s := r.State(); s.Epoch != 1 || s.Consumed != 0 || s.Position != 0 {
		t.Fatalf("after io.EOF: %+v", s)
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(int64(9), 0, int64(3), int64(3), 0, 1, "shard-00000.parquet", int64(8))
	f.Add(int64(9), 2, int64(0), int64(24), 0, 1, "shard-00001.parquet", int64(8))
	f.Fuzz(func(t *testing.T, seed int64, ep int, consumed, position int64, rank, world int, name string, rows int64) {
		src := newFakeSource(uniform(3, 2, 4))
		r, err := newReader(context.Background(), config{seed: 9, workers: 1, shuffleBuffer: 5}, src.files(), src, newFakeDecoder().decode)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		st := r.State()
		st.Seed, st.Epoch, st.Consumed, st.Position, st.Rank, st.WorldSize = seed, ep, consumed, position, rank, world
		st.Shards[0] = data.ShardID{Name: name, Rows: rows}
		if err := r.Restore(st); err != nil {
			return
		}
		// An accepted state must lead to the rest of that epoch.
		ids := epoch(t, r)
		if int64(len(ids)) != 24-position {
			t.Fatalf("restored at position %d, then read %d rows of 24", position, len(ids))
		}
	})
}
