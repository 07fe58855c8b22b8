package slurm

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestScriptGolden(t *testing.T) {
	tests := []struct {
		golden string
		job    Job
	}{
		{"array.sbatch.golden", Job{
			Name:        "resolution",
			Command:     []string{"mmablate", "train"},
			Cells:       [][]string{{"--config", "/runs/r/cells/a1/config.yaml"}, {"--config", "/runs/r/cells/b2/config.yaml"}},
			MaxParallel: 8,
			LogDir:      "/runs/r/slurm/logs",
			CPUsPerTask: 4,
			Mem:         "16G",
			Time:        "02:00:00",
			Partition:   "gpu",
			Account:     "mm1",
			QOS:         "normal",
			Gres:        "gpu:1",
			ExtraArgs:   []string{"--constraint=a100"},
		}},
		{"plain.sbatch.golden", Job{
			Name:    "resolution-report",
			Command: []string{"mmablate", "report", "/runs/r"},
			LogDir:  "/runs/r/slurm/logs",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := tt.job.Script("/runs/r/slurm/cells.tsv")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("script differs from %s (go test -update rewrites it):\n%s", path, got)
			}
			bashSyntax(t, got)
		})
	}
}

// hostile are values an attacker (or an unlucky sweep file) might put in a
// name or a config path. If any reached the shell as code, the fake rm and
// touch in the sandbox's PATH would write the canary file.
var hostile = []string{
	`'; rm -rf victim; '`,
	`$(touch canary)`,
	"`touch canary`",
	`"; touch canary; "`,
	`\'; touch canary #`,
	`${IFS}$(rm${IFS}-rf${IFS}victim)`,
	`a b  c`,
	`-rf`,
	`%A %a %%`,
	`*`,
	`ü 中`,
}

func TestScriptHostileValuesStayData(t *testing.T) {
	dir := t.TempDir()
	sandbox := filepath.Join(dir, "sandbox")
	fakebin := filepath.Join(dir, "fakebin")
	canary := filepath.Join(sandbox, "canary")
	for _, d := range []string{sandbox, fakebin, filepath.Join(sandbox, "victim")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"rm", "touch", "curl", "id"} {
		fake := "#!/bin/sh\necho \"executed: $0 $*\" >>" + shellQuote(canary) + "\n"
		if err := os.WriteFile(filepath.Join(fakebin, tool), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Newlines can travel in the command (shell-quoted), not in a cell or an
	// #SBATCH line (rejected: see TestScriptRejects).
	commandArgs := append([]string{"line1\nline2; touch canary", "'\n'"}, hostile...)
	var cells [][]string
	for _, h := range hostile {
		cells = append(cells, []string{h, "--out", h + "/x"})
	}
	job := Job{
		Name: `x'; rm -rf / $(touch canary) ` + "`touch canary`",
		// The task prints its index and arguments NUL-separated.
		Command:   append([]string{"sh", "-c", `printf '%s\0' "$MMABLATE_CELL_INDEX" "$@"`, "sh"}, commandArgs...),
		Cells:     cells,
		LogDir:    filepath.Join(dir, `logs $(touch canary) '%x`),
		Partition: `p'; touch canary; '`,
		Account:   "$(touch canary)",
		QOS:       "`touch canary`",
		Gres:      `gpu:1"; touch canary`,
		Mem:       `1G\`,
		ExtraArgs: []string{`--comment=a'b"c\d #e $(f)`},
	}
	script, err := WriteJob(filepath.Join(dir, "job $(touch canary)"), "cells", job)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	bashSyntax(t, text)

	// sbatch must read back exactly the options we meant.
	var gotOpts []string
	for line := range strings.SplitSeq(string(text), "\n") {
		if rest, ok := strings.CutPrefix(line, "#SBATCH "); ok {
			args := sbatchSplit(rest)
			if len(args) != 1 {
				t.Fatalf("#SBATCH line %q splits into %q, want one argument", line, args)
			}
			gotOpts = append(gotOpts, args[0])
		}
	}
	logPattern := strings.ReplaceAll(job.LogDir, "%", "%%") + "/%A_%a"
	for _, want := range []string{
		"--job-name=" + job.Name, "--partition=" + job.Partition, "--account=" + job.Account,
		"--qos=" + job.QOS, "--gres=" + job.Gres, "--mem=" + job.Mem, job.ExtraArgs[0],
		"--output=" + logPattern + ".out", "--error=" + logPattern + ".err",
		"--array=0-" + itoa(len(cells)-1), "--open-mode=append", "--requeue",
	} {
		if !slices.Contains(gotOpts, want) {
			t.Errorf("sbatch would not see %q; it sees %q", want, gotOpts)
		}
	}

	for i, cell := range cells {
		cmd := exec.Command("bash", script)
		cmd.Dir = sandbox
		cmd.Env = []string{"PATH=" + fakebin + ":/usr/bin:/bin", "SLURM_ARRAY_TASK_ID=" + itoa(i)}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("task %d: %v: %s", i, err, stderr.String())
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		want := append(append([]string{itoa(i)}, commandArgs...), cell...)
		if !slices.Equal(got, want) {
			t.Errorf("task %d ran with\n%q\nwant\n%q", i, got, want)
		}
	}
	if b, err := os.ReadFile(canary); err == nil {
		t.Fatalf("a value was executed: %s", b)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "victim")); err != nil {
		t.Fatalf("victim directory gone: %v", err)
	}
}

func TestScriptTaskIndexChecked(t *testing.T) {
	dir := t.TempDir()
	script, err := WriteJob(dir, "cells", Job{
		Command: []string{"echo"},
		Cells:   [][]string{{"a"}, {"b"}},
		LogDir:  dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"", "2", "-1", "1+1", "a[$(touch canary)]", "0x1"} {
		cmd := exec.Command("bash", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "SLURM_ARRAY_TASK_ID=" + task}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("SLURM_ARRAY_TASK_ID=%q: err %v, want exit 2; output %s", task, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "canary")); err == nil {
		t.Fatal("the task index was executed")
	}
	cmd := exec.Command("bash", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SLURM_ARRAY_TASK_ID=01"}
	if out, err := cmd.Output(); err != nil || string(out) != "b\n" {
		t.Errorf("SLURM_ARRAY_TASK_ID=01: %q, %v; want \"b\\n\"", out, err)
	}
}

func TestScriptRejects(t *testing.T) {
	ok := Job{Command: []string{"true"}, Cells: [][]string{{"a"}}, LogDir: "/logs"}
	tests := []struct {
		name   string
		change func(*Job)
	}{
		{"newline in name", func(j *Job) { j.Name = "a\n#SBATCH --wrap=x" }},
		{"carriage return in account", func(j *Job) { j.Account = "a\rb" }},
		{"packjob in name", func(j *Job) { j.Name = "my-PackJob" }},
		{"hetjob in qos", func(j *Job) { j.QOS = "hetjob" }},
		{"tab in cell", func(j *Job) { j.Cells = [][]string{{"a\tb"}} }},
		{"newline in cell", func(j *Job) { j.Cells = [][]string{{"a\nb"}} }},
		{"empty cell field", func(j *Job) { j.Cells = [][]string{{"a", ""}} }},
		{"no cells", func(j *Job) { j.Cells = [][]string{} }},
		{"empty command", func(j *Job) { j.Command = nil }},
		{"NUL in command", func(j *Job) { j.Command = []string{"a\x00b"} }},
		{"relative log dir", func(j *Job) { j.LogDir = "logs" }},
		{"backslash in log dir", func(j *Job) { j.LogDir = `/a\b` }},
		{"extra arg not an option", func(j *Job) { j.ExtraArgs = []string{"a100"} }},
		{"negative parallel", func(j *Job) { j.MaxParallel = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := ok
			tt.change(&j)
			if _, err := j.Script("/x/cells.tsv"); !errors.Is(err, ErrInvalidJob) {
				t.Fatalf("err = %v, want ErrInvalidJob", err)
			}
		})
	}
	if _, err := ok.Script("/x/cells.tsv"); err != nil {
		t.Fatalf("the valid base job: %v", err)
	}
	if _, err := WriteJob(t.TempDir(), "../escape", ok); !errors.Is(err, ErrInvalidJob) {
		t.Fatalf("base ../escape: err = %v, want ErrInvalidJob", err)
	}
}

func TestWriteJobFiles(t *testing.T) {
	dir := t.TempDir()
	script, err := WriteJob(dir, "cells", Job{
		Command: []string{"true"},
		Cells:   [][]string{{"a", "b c"}, {}},
		LogDir:  filepath.Join(dir, "logs"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if script != filepath.Join(dir, "cells.sbatch") {
		t.Errorf("script at %s", script)
	}
	tsv, err := os.ReadFile(filepath.Join(dir, "cells.tsv"))
	if err != nil || string(tsv) != "a\tb c\n\n" {
		t.Errorf("cells.tsv = %q, %v", tsv, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "logs")); err != nil || !fi.IsDir() {
		t.Errorf("log dir not created: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func FuzzSbatchQuote(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
	}
	f.Add(`a\`)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := sbatchQuote("--job-name=" + s)
		if err != nil {
			return
		}
		if got := sbatchSplit(q); len(got) != 1 || got[0] != "--job-name="+s {
			t.Fatalf("%q quoted as %s reads back as %q", s, q, got)
		}
	})
}

// sbatchSplit splits the rest of an #SBATCH line as sbatch 22.05 does
// (src/sbatch/opt.c, _get_argument, called until it finds nothing).
func sbatchSplit(line string) []string {
	isSpace := func(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }
	var args []string
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			return args
		}
		var arg []byte
		var quote byte
		escaped := false
		for ; i < len(line) && (quote != 0 || !isSpace(line[i])) && line[i] != '\n'; i++ {
			c := line[i]
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
				continue
			case quote != 0:
				if c == quote {
					quote = 0
					continue
				}
			case c == '"' || c == '\'':
				quote = c
				continue
			case c == '#':
				return append(args, string(arg))
			}
			arg = append(arg, c)
		}
		args = append(args, string(arg))
	}
}

func bashSyntax(t *testing.T, script []byte) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v: %s\n%s", err, out, script)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
