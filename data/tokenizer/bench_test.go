package tokenizer

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmablate/mmablate/internal/cputime"
)

// benchCorpus is up to n bytes of real text: Newton's Opticks from the Go
// distribution, then the Go standard library's sources (code, comments,
// identifiers), so the vocabulary sees diverse words and not one text
// repeated.
func benchCorpus(b *testing.B, n int) string {
	b.Helper()
	root := runtime.GOROOT()
	opticks, err := os.ReadFile(filepath.Join(root, "src", "testdata", "Isaac.Newton-Opticks.txt"))
	if err != nil {
		b.Skipf("no Opticks text in GOROOT: %v", err)
	}
	var sb strings.Builder
	sb.Write(opticks)
	errFull := fs.ErrExist // stops the walk once n bytes are gathered
	err = filepath.WalkDir(filepath.Join(root, "src"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		if sb.Len() >= n {
			return errFull
		}
		if src, err := os.ReadFile(path); err == nil {
			sb.Write(src)
		}
		return nil
	})
	if err != nil && err != errFull {
		b.Fatal(err)
	}
	s := sb.String()
	return s[:min(len(s), n)]
}

var (
	benchOnce sync.Once
	benchTok  *Tokenizer
	benchText string
)

// benchSetup trains an 8192-token vocabulary on 4 MB and returns it with
// 1 MB of text from the same distribution.
func benchSetup(b *testing.B) (*Tokenizer, string) {
	benchOnce.Do(func() {
		corpus := benchCorpus(b, 5<<20)
		tr, err := NewTrainer(TrainOptions{VocabSize: 8192})
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.AddReader(context.Background(), "corpus", strings.NewReader(corpus[:4<<20])); err != nil {
			b.Fatal(err)
		}
		if benchTok, err = tr.Train(context.Background()); err != nil {
			b.Fatal(err)
		}
		benchText = corpus[4<<20:]
	})
	if benchTok == nil {
		b.Skip("no corpus")
	}
	return benchTok, benchText
}

// reportCPU adds the CPU-time figures of the loop that started at cpu0:
// run with -cpu 1 (GOMAXPROCS=1) and MB/cpu-s is the per-core throughput
// even on a loaded machine, where MB/s also counts waiting for a core.
func reportCPU(b *testing.B, cpu0 time.Duration, bytesPerOp int) {
	cpu := cputime.Process() - cpu0
	if cpu <= 0 {
		return
	}
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkEncode is the data plane's steady state: one core, word cache
// warm. Target: at least 5 MB/s per core.
func BenchmarkEncode(b *testing.B) {
	tok, text := benchSetup(b)
	dst := tok.AppendEncode(nil, text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		dst = tok.AppendEncode(dst[:0], text)
	}
	reportCPU(b, cpu0, len(text))
	b.ReportMetric(float64(len(text))/float64(len(dst)), "bytes/token")
}

// BenchmarkEncodeUncached runs BPE on every word, as if no word repeated.
func BenchmarkEncodeUncached(b *testing.B) {
	tok, text := benchSetup(b)
	st := &encodeState{cache: make(map[string][]int32)}
	var dst []int32
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		dst = dst[:0]
		splitPieces(text, func(w string) { dst = tok.bpe(dst, w, st) })
	}
	reportCPU(b, cpu0, len(text))
}

// BenchmarkTrain10MB counts and trains an 8192-token vocabulary on 10 MB.
// Target: well under a minute.
func BenchmarkTrain10MB(b *testing.B) {
	corpus := benchCorpus(b, 10<<20)
	b.SetBytes(int64(len(corpus)))
	cpu0 := cputime.Process()
	for b.Loop() {
		tr, err := NewTrainer(TrainOptions{VocabSize: 8192})
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.AddReader(b.Context(), "corpus", strings.NewReader(corpus)); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Train(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0, len(corpus))
}
