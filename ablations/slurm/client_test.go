package slurm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// reply is one canned answer of fakeRunner.
type reply struct {
	out    string
	stderr string // non-empty: the command fails with this standard error
}

// fakeRunner answers commands ("name arg arg") from a table and records them.
type fakeRunner struct {
	replies map[string]reply
	calls   []string
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	call := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, call)
	r, ok := f.replies[call]
	if !ok {
		return nil, &CommandError{Name: name, Args: args, ExitCode: 1, Stderr: "fake: no reply for " + call, Err: errors.New("exit status 1")}
	}
	if r.stderr != "" {
		return []byte(r.out), &CommandError{Name: name, Args: args, ExitCode: 1, Stderr: r.stderr, Err: errors.New("exit status 1")}
	}
	return []byte(r.out), nil
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSubmit(t *testing.T) {
	script, _ := filepath.Abs("job.sbatch")
	tests := []struct {
		name    string
		opts    SubmitOptions
		call    string
		reply   reply
		want    string
		wantErr string
	}{
		{"plain", SubmitOptions{}, "sbatch --parsable " + script, reply{out: "12\n"}, "12", ""},
		{"federation", SubmitOptions{}, "sbatch --parsable " + script, reply{out: "12;cluster\n"}, "12", ""},
		{"after ok", SubmitOptions{AfterOK: []string{"5", "6"}}, "sbatch --parsable --dependency=afterok:5:6 " + script, reply{out: "7\n"}, "7", ""},
		{"after any", SubmitOptions{AfterAny: []string{"5"}}, "sbatch --parsable --dependency=afterany:5 " + script, reply{out: "8\n"}, "8", ""},
		{"both", SubmitOptions{AfterOK: []string{"5"}, AfterAny: []string{"6_1"}}, "sbatch --parsable --dependency=afterok:5,afterany:6_1 " + script, reply{out: "9\n"}, "9", ""},
		{"controller down", SubmitOptions{}, "sbatch --parsable " + script,
			reply{stderr: "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"},
			"", "Unable to contact slurm controller"},
		{"garbage", SubmitOptions{}, "sbatch --parsable " + script, reply{out: "Submitted batch job 12\n"}, "", "want a job id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{replies: map[string]reply{tt.call: tt.reply}}
			got, err := NewClient(r).Submit(context.Background(), "job.sbatch", tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q (calls %q)", got, err, tt.want, r.calls)
			}
		})
	}
	r := &fakeRunner{}
	if _, err := NewClient(r).Submit(context.Background(), "job.sbatch", SubmitOptions{AfterOK: []string{"--wrap=x"}}); err == nil || len(r.calls) != 0 {
		t.Errorf("AfterOK with an option: err %v, calls %q", err, r.calls)
	}
}

func TestStatusMergesControllerAndJobComp(t *testing.T) {
	ctx := context.Background()
	r := &fakeRunner{replies: map[string]reply{
		"scontrol show config":    {out: testdata(t, "scontrol-show-config.txt")},
		"scontrol show job -o 1":  {out: testdata(t, "scontrol-running-hostile-name.txt")},
		"scontrol show job -o 5":  {stderr: "slurm_load_jobs error: Invalid job id specified\n"},
		"scontrol show job -o 99": {stderr: "slurm_load_jobs error: Invalid job id specified\n"},
	}}
	c := NewClient(r)
	// The captured config names /tmp/mmablate-slurm/log/jobcomp.txt; check
	// discovery, then read the captured log instead.
	if got, err := c.jobCompPath(ctx); err != nil || got != "/tmp/mmablate-slurm/log/jobcomp.txt" {
		t.Fatalf("jobcomp path %q, %v", got, err)
	}
	c.JobCompPath = filepath.Join("testdata", "jobcomp.txt")

	// Job 5 has left the controller: the log gives the last run of each task
	// (task 0's first run, logged FAILED with exit 75, was requeued).
	got, err := c.Status(ctx, "5")
	if err != nil {
		t.Fatal(err)
	}
	want := []TaskState{
		task("5_0", 0, Done, "COMPLETED", 0, 0, "", 0),
		task("5_1", 1, Failed, "FAILED", 3, 0, "", 0),
		task("5_2", 2, Done, "COMPLETED", 0, 0, "", 0),
		task("5_3", 3, Done, "COMPLETED", 0, 0, "", 0),
		task("5_4", 4, Done, "COMPLETED", 0, 0, "", 0),
	}
	if !slices.Equal(got, want) {
		t.Errorf("job 5:\ngot  %+v\nwant %+v", got, want)
	}

	// Job 1: the controller's view wins; the log adds nothing it lacks.
	got, err = c.Status(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	want = []TaskState{
		task("1_0", 0, Done, "COMPLETED", 0, 0, "", 0),
		task("1_1", 1, Failed, "FAILED", 3, 0, "NonZeroExitCode", 0),
		task("1_2", 2, Done, "COMPLETED", 0, 0, "", 1),
		task("1_3", 3, Running, "RUNNING", 0, 0, "", 0),
	}
	if !slices.Equal(got, want) {
		t.Errorf("job 1:\ngot  %+v\nwant %+v", got, want)
	}

	if _, err := c.Status(ctx, "99"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("job 99: err = %v, want ErrUnknownJob", err)
	}
	if n := strings.Count(strings.Join(r.calls, "\n"), "scontrol show config"); n != 1 {
		t.Errorf("scontrol show config ran %d times, want once", n)
	}
}

func TestStatusOneTaskFromJobComp(t *testing.T) {
	r := &fakeRunner{replies: map[string]reply{
		"scontrol show job -o 1_2": {stderr: "slurm_load_jobs error: Invalid job id specified\n"},
	}}
	c := NewClient(r)
	c.JobCompPath = filepath.Join("testdata", "jobcomp.txt")
	got, err := c.Status(context.Background(), "1_2")
	want := []TaskState{task("1_2", 2, Done, "COMPLETED", 0, 0, "", 0)}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestStatusErrors(t *testing.T) {
	ctx := context.Background()
	r := &fakeRunner{replies: map[string]reply{
		"scontrol show job -o 3": {stderr: "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"},
		"scontrol show job -o 4": {out: "JobId=4 JobState=WIBBLE\n"},
	}}
	c := NewClient(r)
	c.JobCompPath = filepath.Join(t.TempDir(), "absent.txt") // on another host: skipped
	if _, err := c.Status(ctx, "3"); err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller") {
		t.Errorf("controller down: err = %v", err)
	}
	if _, err := c.Status(ctx, "4"); !errors.Is(err, ErrParse) {
		t.Errorf("bad state: err = %v, want ErrParse", err)
	}
	for _, id := range []string{"", "-h", "5 6", "5_", "all"} {
		if _, err := c.Status(ctx, id); err == nil {
			t.Errorf("Status(%q) accepted", id)
		}
		if err := c.Cancel(ctx, id); err == nil {
			t.Errorf("Cancel(%q) accepted", id)
		}
	}
	if len(r.calls) != 2 {
		t.Errorf("bad ids reached the runner: %q", r.calls)
	}
}

func TestJobCompTooLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobcomp.txt")
	long := "JobId=5 Name=" + strings.Repeat("x", maxJobCompLine) + " JobState=COMPLETED\n"
	if err := os.WriteFile(path, []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readJobComp(path, "5"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want one naming %s", err, path)
	}
}

func TestJobCompFromConfig(t *testing.T) {
	for _, tt := range []struct{ config, want string }{
		{"JobCompLoc = /var/log/slurm/jobcomp.txt\nJobCompType = jobcomp/filetxt\n", "/var/log/slurm/jobcomp.txt"},
		{"JobCompLoc = /var/log/slurm/jobcomp.txt\nJobCompType = jobcomp/none\n", ""},
		{"JobCompLoc = (null)\nJobCompType = jobcomp/filetxt\n", ""},
		{"", ""},
	} {
		if got := jobCompFromConfig([]byte(tt.config)); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.config, got, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	r := &fakeRunner{replies: map[string]reply{"scancel 12_3": {}}}
	if err := NewClient(r).Cancel(context.Background(), "12_3"); err != nil {
		t.Fatal(err)
	}
}

func TestMissingTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NewClient(ExecRunner{}).Submit(context.Background(), "job.sbatch", SubmitOptions{})
	if !errors.Is(err, ErrToolMissing) {
		t.Fatalf("err = %v, want ErrToolMissing", err)
	}
	if want := "sbatch not found in PATH: install slurm-client or run scripts/slurm-local.sh start"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to say %q", err, want)
	}
}

func TestExecRunnerKeepsStderr(t *testing.T) {
	_, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo why >&2; exit 4")
	ce, ok := errors.AsType[*CommandError](err)
	if !ok || ce.ExitCode != 4 || ce.Stderr != "why\n" || !strings.Contains(err.Error(), "why") {
		t.Fatalf("err = %#v", err)
	}
}
