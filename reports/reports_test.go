package reports

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden report.md files under testdata/golden/")

// writeReport writes the report of a committed fixture into a temporary
// directory and returns the directory, the summary and the warnings logged.
func writeReport(t *testing.T, name string) (out, summary, logged string) {
	t.Helper()
	var logBuf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logBuf, nil)))
	defer slog.SetDefault(prev)
	out = t.TempDir()
	summary, err := Write(context.Background(), fixtureDir(name), out)
	if err != nil {
		t.Fatalf("Write(%s): %v", name, err)
	}
	return out, summary, logBuf.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGoldenMarkdown pins report.md of every fixture; -update rewrites.
func TestGoldenMarkdown(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			out, _, _ := writeReport(t, f.name)
			got := readFile(t, filepath.Join(out, MarkdownFile))
			golden := filepath.Join("testdata", "golden", f.name+".report.md")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := readFile(t, golden); got != want {
				t.Errorf("report.md differs from %s (go test ./reports -run TestGoldenMarkdown -update to accept):\n%s", golden, firstDiff(want, got))
			}
			// Every figure the Markdown links is written beside it.
			for _, m := range regexp.MustCompile(`\]\((fig-[a-z0-9-]+\.svg)\)`).FindAllStringSubmatch(got, -1) {
				svg := readFile(t, filepath.Join(out, m[1]))
				if !strings.HasPrefix(svg, "<svg") {
					t.Errorf("%s is not an SVG: %.40q", m[1], svg)
				}
			}
		})
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n want " + wl + "\n  got " + gl
		}
	}
	return ""
}

// TestSummaryKnownAnswer checks the summary on the full fixture, whose
// effects are known: res adds 10 points, tokens 0.1, and the two seeds sit
// 1 point either side (a per-seed spread of √2).
func TestSummaryKnownAnswer(t *testing.T) {
	_, summary, _ := writeReport(t, "full")
	for _, want := range []string{
		"8 of 8 cells finished.",
		"MM1's average (mean of CIDEr×100 and VQA acc.) over 0, 4 and 8 shots",
		"Axis res moved it most: its marginal means span 10.00 points, from 26.05 at res=32 to 36.05 at res=64, 7.1× the seed spread of 1.41.",
		"Axis tokens (range 0.10, seed spread 1.41) barely moved it.",
		"The best setting is res=64,tokens=16 with 36.10 ± 1.41; it is the baseline.",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

func TestSummaryCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"partial", []string{"2 of 4 cells finished (1 failed, 1 running)", "Axis res moved it most", "from 26.00 at res=32 to 36.00 at res=64, 42.4× the trial spread of 0.24."}},
		{"damaged", []string{"3 of 4 cells finished (1 pending); 1 of the finished have scores at every shot count", "No axis has scores at two or more of its values yet"}},
		{"mixture", []string{"Axis mixture moved it most: its marginal means span 10.00 points, from 20.00 at mixture=0/100/0 to 30.00 at mixture=100/0/0, 14.1× the seed spread of 0.71."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, summary, _ := writeReport(t, tc.name)
			for _, w := range tc.want {
				if !strings.Contains(summary, w) {
					t.Errorf("summary lacks %q:\n%s", w, summary)
				}
			}
		})
	}
}

// TestPartialAndDamaged: unfinished cells are listed with their reason;
// unreadable files are Problems in the report and warnings naming the file
// and line.
func TestPartialAndDamaged(t *testing.T) {
	out, _, logged := writeReport(t, "partial")
	md := readFile(t, filepath.Join(out, MarkdownFile))
	for _, want := range []string{
		"train: loss is NaN at step 120 &lt;b&gt; (exit 1, 2 attempts)",
		"Slurm job 123\\_5 on node-7",
		"run/metrics.jsonl:3: skipped: corrupt JSON",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("partial report.md lacks %q", want)
		}
	}
	if !regexp.MustCompile(`level=WARN msg="report: skipped: corrupt JSON[^"]*" file=testdata/sweeps/partial/cells/[0-9a-f]{12}/run/metrics.jsonl line=3`).MatchString(logged) {
		t.Errorf("no warning naming metrics.jsonl line 3:\n%s", logged)
	}

	out, _, logged = writeReport(t, "damaged")
	md = readFile(t, filepath.Join(out, MarkdownFile))
	for _, want := range []string{
		"run/eval.json: no evaluation results, the cell has no scores: no such file or directory",
		"run/eval.json: the cell has no scores: corrupt JSON: unexpected end of JSON input",
		"| res=64,seed=1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("damaged report.md lacks %q", want)
		}
	}
	if strings.Count(logged, "level=WARN") != 2 {
		t.Errorf("want 2 warnings for the damaged sweep, got:\n%s", logged)
	}
}

// TestHTMLEscapes: a cell name, axis value and FAILED reason holding markup
// reach the HTML only escaped.
func TestHTMLEscapes(t *testing.T) {
	out, _, _ := writeReport(t, "partial")
	html := readFile(t, filepath.Join(out, HTMLFile))
	if strings.Contains(html, "<script>") || strings.Contains(html, "<b>") || strings.Contains(html, "<i>") {
		t.Error("report.html holds unescaped markup from the sweep")
	}
	for _, want := range []string{"connector=&lt;script&gt;alert(1)&lt;/script&gt;,res=32,seed=0", "step 120 &lt;b&gt;", "partial &lt;i&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks the escaped %q", want)
		}
	}
	for _, bad := range []string{"src=", "href=", "<link", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("report.html refers to an external resource (%q)", bad)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	empty := t.TempDir()
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, sweepJSONFile), []byte(`{"version":1,"cells":[`), 0o644); err != nil {
		t.Fatal(err)
	}
	escape := t.TempDir()
	if err := os.WriteFile(filepath.Join(escape, sweepJSONFile), []byte(`{"version":1,"cells":[{"id":"a","dir":"../../etc"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badID := t.TempDir()
	if err := os.WriteFile(filepath.Join(badID, sweepJSONFile), []byte(`{"version":1,"cells":[{"id":"../x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(runDir, metricsFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, want string
	}{
		{runDir, "it looks like the run directory of one cell"},
		{badID, `id "../x" is not a file name`},
		{empty, "not a sweep directory (no sweep.json"},
		{filepath.Join(empty, "missing"), "no such file or directory"},
		{file, "not a directory"},
		{corrupt, "sweep.json: corrupt JSON"},
		{escape, `dir "../../etc" is not inside the sweep directory`},
	} {
		_, err := Load(context.Background(), tc.dir, discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %v, want an error with %q", tc.dir, err, tc.want)
		}
	}
	if _, err := Write(context.Background(), empty, ""); !errors.Is(err, ErrNotSweep) {
		t.Errorf("Write(empty dir) = %v, want ErrNotSweep", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("Write(empty dir) wrote %d entries", len(entries))
	}
}

// TestStaleRunning: a RUNNING file naming a dead local process leaves the
// cell pending, with a problem saying so.
func TestStaleRunning(t *testing.T) {
	dir := t.TempDir()
	for _, f := range fixtures() {
		if f.name == "partial" {
			writeFixture(t, dir, f)
		}
	}
	l := &loader{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil)), alive: func(string, int) (bool, bool) { return false, true }}
	// The fixture's running cell is a Slurm task: make it a local process.
	for _, c := range mustLoad(t, dir).Cells {
		if c.State == StateRunning {
			if err := os.WriteFile(filepath.Join(dir, c.Dir, runningFile), []byte(`{"pid":99999999,"host":"here"}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sw, err := l.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var running, stale int
	for _, c := range sw.Cells {
		if c.State == StateRunning {
			running++
		}
	}
	for _, p := range sw.Problems {
		if strings.Contains(p.Msg, "names pid 99999999 on here, which is not running") {
			stale++
		}
	}
	if running != 0 || stale != 1 {
		t.Errorf("running cells %d, stale problems %d; want 0 and 1: %v", running, stale, sw.Problems)
	}
}

func mustLoad(t *testing.T, dir string) *Sweep {
	t.Helper()
	sw, err := Load(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// TestBaselineDeltas checks the comparison table's numbers on the full
// fixture: res=32 loses 10 points in every seed, tokens=4 0.1.
func TestBaselineDeltas(t *testing.T) {
	a := Analyse(mustLoad(t, fixtureDir("full")))
	if a.Baseline == nil || a.Baseline.Label != "res=64,tokens=16" {
		t.Fatalf("baseline %+v", a.Baseline)
	}
	got := map[string]Delta{}
	for _, r := range a.Deltas {
		if r.Shots == 4 {
			got[r.Setting.Label] = r.Average
		}
	}
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	for label, want := range map[string]struct {
		mean   float64
		within bool
	}{
		"res=32,tokens=4":  {-10.1, false},
		"res=32,tokens=16": {-10, false},
		"res=64,tokens=4":  {-0.1, true},
	} {
		d := got[label]
		// Paired by seed, the differences are equal: no spread; the noise is
		// √2 · √2 = 2 (each setting's seeds 1 point either side).
		if !d.OK || d.Paired != 2 || !near(d.Mean, want.mean) || !d.HasSpread || !near(d.Spread, 0) || !near(d.Noise, 2) || d.Within != want.within {
			t.Errorf("%s: %+v, want mean %v, within %v", label, d, want.mean, want.within)
		}
	}
}

// TestRealRunFiles reads eval.json and metrics.jsonl written by a real
// 20-step tiny run, so the structs here stay in step with experiments.
func TestRealRunFiles(t *testing.T) {
	scores, ppl, err := parseEval([]byte(readFile(t, "testdata/realrun/eval.json")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"caption/cider": 3, "caption/bleu4": 3, "vqa/accuracy": 3}
	got := map[string]int{}
	for _, s := range scores {
		got[s.Task+"/"+s.Metric]++
		if s.Shots > 0 && len(s.Trials) != 2 {
			t.Errorf("%s %d-shot: %d trials, the run had 2", s.Metric, s.Shots, len(s.Trials))
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d scores, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if math.Abs(ppl-74.39791718280537) > 1e-9 {
		t.Errorf("perplexity %v", ppl)
	}
	pts, bad, err := parseMetrics(strings.NewReader(readFile(t, "testdata/realrun/metrics.jsonl")))
	if err != nil || len(bad) != 0 || len(pts) != 2 || pts[1].Step != 20 {
		t.Errorf("metrics.jsonl: %v, bad %v, err %v", pts, bad, err)
	}
}

func TestParseMetricsLine(t *testing.T) {
	for _, tc := range []struct {
		line, err string
		want      LossPoint
	}{
		{`{"step":10,"loss":4.5,"lr":0.1}`, "", LossPoint{10, 4.5}},
		{`{"step":0,"loss":-1}`, "", LossPoint{0, -1}},
		{`{"loss":4.5}`, "no step", LossPoint{}},
		{`{"step":3}`, "no loss", LossPoint{}},
		{`{"step":-3,"loss":1}`, "step -3 < 0", LossPoint{}},
		{`{"step":1.5,"loss":1}`, "corrupt JSON", LossPoint{}},
		{`{"step":1,"loss":"x"}`, "corrupt JSON", LossPoint{}},
		{`[1,2]`, "corrupt JSON", LossPoint{}},
		{`{"step":1,"loss":`, "corrupt JSON", LossPoint{}},
	} {
		got, err := parseMetricsLine([]byte(tc.line))
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, %v; want %v, error %q", tc.line, got, err, tc.want, tc.err)
		}
	}
}

func TestValueJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind ValueKind
		str  string
	}{
		{`32`, KindInt, "32"},
		{`-7`, KindInt, "-7"},
		{`0.5`, KindFloat, "0.5"},
		{`1e3`, KindFloat, "1000"},
		{`"avgpool"`, KindString, "avgpool"},
		{`true`, KindString, "true"},
		{`[100, 0, 0]`, KindString, "[100,0,0]"},
	} {
		var v Value
		if err := v.UnmarshalJSON([]byte(tc.in)); err != nil || v.Kind != tc.kind || v.String() != tc.str {
			t.Errorf("%s: %+v %q, %v; want kind %d %q", tc.in, v, v.String(), err, tc.kind, tc.str)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		d    Delta
		want string
	}{
		{Delta{}, "—"},
		{Delta{OK: true, Mean: -1e-9}, "+0.00"},
		{Delta{OK: true, Mean: -1.234, Spread: 0.5, HasSpread: true}, "-1.23 ± 0.50"},
		{Delta{OK: true, Mean: 0.3, Noise: 1, HasNoise: true, Within: true}, "+0.30 ≈"},
	} {
		if got := fmtDelta(tc.d); got != tc.want {
			t.Errorf("fmtDelta(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := fmtStat(Stat{OK: true, Mean: -0.001, Noise: 2, HasNoise: true}); got != "0.00 ± 2.00" {
		t.Errorf("fmtStat = %q", got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"runs/res":      "runs/res",
		"my runs/x":     "'my runs/x'",
		"it's":          `'it'\''s'`,
		"$(rm -rf /)":   "'$(rm -rf /)'",
		"/a/b-c_d.yaml": "/a/b-c_d.yaml",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadBaseConfigCopiesOnlyYAMLRunConfigs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, file, body string
		ok               bool
	}{
		{"run config", "base.yaml", "name: base\ntrain: {steps: 10}\n", true},
		{"yml extension", "base.yml", "name: base\n", true},
		{"not yaml extension", "id_rsa", "name: base\n", false},
		{"yaml but not a mapping", "list.yaml", "- a\n- b\n", false},
		{"not yaml at all", "bad.yaml", "\x00\x01: [\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := readBaseConfig(write(c.file, c.body))
			if c.ok && (err != nil || string(b) != c.body) {
				t.Fatalf("readBaseConfig = %q, %v; want the file", b, err)
			}
			if !c.ok && (err == nil || b != nil) {
				t.Fatalf("readBaseConfig = %q, %v; want a refusal", b, err)
			}
		})
	}
}

// TestUnreadableStateFiles: a RUNNING or FAILED file that cannot be read is
// one problem naming it, and a failed cell says its FAILED is unreadable,
// not empty.
func TestUnreadableStateFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range fixtures() {
		if f.name == "partial" {
			writeFixture(t, dir, f)
		}
	}
	var failedCell, runningCell string
	for _, c := range mustLoad(t, dir).Cells {
		switch c.State {
		case StateFailed:
			failedCell = c.Dir
		case StateRunning:
			runningCell = c.Dir
		}
	}
	if failedCell == "" || runningCell == "" {
		t.Fatal("the partial fixture lacks a failed or a running cell")
	}
	// A directory in a state file's place: it exists but cannot be read.
	for _, p := range []string{filepath.Join(dir, failedCell, failedFile), filepath.Join(dir, runningCell, runningFile)} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sw := mustLoad(t, dir)
	for _, c := range sw.Cells {
		if c.Dir == failedCell && c.Failure != "FAILED is not readable" {
			t.Errorf("failed cell's reason %q, want %q", c.Failure, "FAILED is not readable")
		}
	}
	for _, name := range []string{failedFile, runningFile} {
		n := 0
		for _, p := range sw.Problems {
			if strings.HasSuffix(p.File, "/"+name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d problems name %s, want 1: %v", n, name, sw.Problems)
		}
	}
}

// TestSummaryEveryAxis: with three axes, the summary names the one that
// moved the average most and says for each other axis whether it moved it
// beyond the noise, barely did, or cannot be judged.
func TestSummaryEveryAxis(t *testing.T) {
	str := func(s string) Value { return Value{Kind: KindString, S: s} }
	sw := &Sweep{Axes: []Axis{
		{Name: "res", Values: []Value{str("32"), str("64")}},
		{Name: "tokens", Values: []Value{str("4"), str("16")}},
		{Name: "connector", Values: []Value{str("avgpool"), str("cabstractor")}},
		{Name: "lr", Values: []Value{str("a"), str("b")}},
	}}
	a := &Analysis{Sweep: sw, Shots: []int{0}, Counts: map[State]int{StateDone: 4}, Scored: 4,
		AvgMetrics: []Metric{{Task: "caption", Metric: "cider"}},
		Effects: []AxisEffect{
			{Axis: 0, Range: 16.19, Spread: 8, HasSpread: true, BySeeds: true, Lo: 0, Hi: 1, LoMean: 73.62, HiMean: 89.81},
			{Axis: 1, Range: 0.85, Spread: 7.73, HasSpread: true, BySeeds: true},
			{Axis: 2, Range: 18.44, Spread: 8.29, HasSpread: true, BySeeds: true, Lo: 1, Hi: 0, LoMean: 72.5, HiMean: 90.93},
			{Axis: 3, Range: 2, Lo: 0, Hi: 1},
		}}
	summary := Summary(a)
	for _, want := range []string{
		"Axis connector moved it most: its marginal means span 18.44 points, from 72.50 at connector=cabstractor to 90.93 at connector=avgpool, 2.2× the seed spread of 8.29.",
		"Axis res (range 16.19, 2.0× the seed spread of 8.00) also moved it.",
		"Axis tokens (range 0.85, seed spread 7.73) barely moved it.",
		"Axis lr (range 2.00) cannot be told from noise (one seed, one trial).",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}
