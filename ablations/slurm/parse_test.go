package slurm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The testdata/scontrol-*.txt files are real "scontrol show job -o" output
// of Slurm 22.05.8 (Debian bookworm) from scripts/slurm-local.sh; jobcomp.txt
// is the same cluster's jobcomp/filetxt log.

func task(id string, taskID int, state State, slurm string, exit, signal int, reason string, restarts int) TaskState {
	return TaskState{ID: id, TaskID: taskID, State: state, SlurmState: slurm, ExitCode: exit, Signal: signal, Reason: reason, Restarts: restarts}
}

func TestParseScontrolCaptured(t *testing.T) {
	tests := []struct {
		file string
		want []TaskState
	}{
		{"scontrol-array-pending.txt", []TaskState{
			task("5_0", 0, Pending, "PENDING", 0, 0, "", 0),
			task("5_1", 1, Pending, "PENDING", 0, 0, "", 0),
			task("5_2", 2, Pending, "PENDING", 0, 0, "", 0),
			task("5_3", 3, Pending, "PENDING", 0, 0, "", 0),
			task("5_4", 4, Pending, "PENDING", 0, 0, "", 0),
		}},
		// Task 0 exited 75 and waits to run again.
		{"scontrol-array-requeued.txt", []TaskState{
			task("5_1", 1, Pending, "PENDING", 0, 0, "JobArrayTaskLimit", 0),
			task("5_2", 2, Pending, "PENDING", 0, 0, "JobArrayTaskLimit", 0),
			task("5_3", 3, Pending, "PENDING", 0, 0, "JobArrayTaskLimit", 0),
			task("5_4", 4, Pending, "PENDING", 0, 0, "JobArrayTaskLimit", 0),
			task("5_0", 0, Pending, "PENDING", 75, 0, "NonZeroExitCode", 1),
		}},
		{"scontrol-array-finished.txt", []TaskState{
			task("5_4", 4, Done, "COMPLETED", 0, 0, "", 0),
			task("5_3", 3, Done, "COMPLETED", 0, 0, "", 0),
			task("5_2", 2, Done, "COMPLETED", 0, 0, "", 0),
			task("5_1", 1, Failed, "FAILED", 3, 0, "NonZeroExitCode", 0),
			task("5_0", 0, Done, "COMPLETED", 0, 0, "", 1),
		}},
		{"scontrol-running-hostile-name.txt", []TaskState{
			task("1_3", 3, Running, "RUNNING", 0, 0, "", 0),
			task("1_2", 2, Done, "COMPLETED", 0, 0, "", 1),
			task("1_1", 1, Failed, "FAILED", 3, 0, "NonZeroExitCode", 0),
			task("1_0", 0, Done, "COMPLETED", 0, 0, "", 0),
		}},
		{"scontrol-cancelled.txt", []TaskState{
			task("1_3", 3, Cancelled, "CANCELLED", 0, 15, "", 0),
			task("1_2", 2, Done, "COMPLETED", 0, 0, "", 1),
			task("1_1", 1, Failed, "FAILED", 3, 0, "NonZeroExitCode", 0),
			task("1_0", 0, Done, "COMPLETED", 0, 0, "", 0),
		}},
		{"scontrol-dependency-pending.txt", []TaskState{
			task("6", -1, Pending, "PENDING", 0, 0, "Dependency", 0),
		}},
		{"scontrol-dependency-cancelled.txt", []TaskState{
			task("6", -1, Cancelled, "CANCELLED", 0, 0, "DependencyNeverSatisfied", 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseScontrol(out)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseFieldsFreeText(t *testing.T) {
	out, err := os.ReadFile("testdata/scontrol-running-hostile-name.txt")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	f := parseFields(line, scontrolHead)
	for key, want := range map[string]string{
		"JobName":       "a b'c $(x) `y` \\z \"q\" #h",
		"UserId":        "root(0)",
		"TRES":          "cpu=1,mem=1G,node=1,billing=1",
		"AllocNode:Sid": "localhost:20253",
		"StdOut":        "/tmp/sx/1_3.out",
		"Power":         "",
	} {
		if f[key] != want {
			t.Errorf("%s = %q, want %q", key, f[key], want)
		}
	}

	tests := []struct {
		line string
		head map[string]bool
		want map[string]string
	}{
		// Unknown keys of a later release are kept.
		{"JobId=1 NewKey=x y JobState=RUNNING", scontrolHead, map[string]string{"JobId": "1", "NewKey": "x y", "JobState": "RUNNING"}},
		// Inside a free-text value only a known key ends it.
		{"JobId=1 JobName=a b=c d UserId=root(0)", scontrolHead, map[string]string{"JobId": "1", "JobName": "a b=c d", "UserId": "root(0)"}},
		{"JobId=1 Reason=Nodes required are DOWN JobState=PENDING", scontrolHead, map[string]string{"JobId": "1", "Reason": "Nodes required are DOWN", "JobState": "PENDING"}},
		// A name spelling a key cannot replace the real value, whether the
		// real one comes before the name or after it.
		{"JobId=1 ArrayJobId=1 ArrayTaskId=0 JobName=x ArrayTaskId=7 JobState=COMPLETED UserId=0 JobState=FAILED", scontrolHead,
			map[string]string{"JobId": "1", "ArrayJobId": "1", "ArrayTaskId": "0", "JobName": "x", "JobState": "FAILED", "UserId": "0"}},
		{"JobId=2 UserId=0 Name=x JobId=9 ArrayTaskId=7 JobState=COMPLETED JobState=FAILED ArrayJobId=1 ArrayTaskId=0", jobCompHead,
			map[string]string{"JobId": "2", "UserId": "0", "Name": "x", "JobState": "FAILED", "ArrayJobId": "1", "ArrayTaskId": "0"}},
		{"", scontrolHead, map[string]string{}},
		{"no keys here", scontrolHead, map[string]string{}},
	}
	for _, tt := range tests {
		got := parseFields(tt.line, tt.head)
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %q, want %q", tt.line, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", tt.line, k, got[k], v)
			}
		}
	}
}

func TestStateMapping(t *testing.T) {
	out, err := os.ReadFile("testdata/scontrol-dependency-pending.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := string(out)
	for slurm, want := range map[string]State{
		"PENDING": Pending, "REQUEUED": Pending, "REQUEUE_HOLD": Pending, "CONFIGURING": Pending,
		"RUNNING": Running, "COMPLETING": Running, "SUSPENDED": Running,
		"COMPLETED": Done,
		"FAILED":    Failed, "TIMEOUT": Failed, "OUT_OF_MEMORY": Failed, "NODE_FAIL": Failed,
		"PREEMPTED": Failed, "BOOT_FAIL": Failed, "DEADLINE": Failed,
		"CANCELLED": Cancelled,
	} {
		got, err := parseScontrol([]byte(strings.Replace(line, "JobState=PENDING", "JobState="+slurm, 1)))
		if err != nil {
			t.Fatalf("%s: %v", slurm, err)
		}
		if len(got) != 1 || got[0].State != want || got[0].SlurmState != slurm {
			t.Errorf("%s: got %+v, want state %s", slurm, got, want)
		}
	}
	if _, err := parseScontrol([]byte(strings.Replace(line, "JobState=PENDING", "JobState=WIBBLE", 1))); !errors.Is(err, ErrParse) {
		t.Errorf("unknown state: err = %v, want ErrParse", err)
	}
	// jobcomp/filetxt may write "CANCELLED by 0".
	got, err := parseScontrol([]byte("JobId=9 Name=x JobState=CANCELLED by 0 ExitCode=0:15"))
	if err != nil || len(got) != 1 || got[0].State != Cancelled || got[0].Signal != 15 {
		t.Errorf("CANCELLED by 0: %+v, %v", got, err)
	}
}

func TestExpandTaskIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"3", []int{3}},
		{"2-5", []int{2, 3, 4, 5}},
		{"2-5%1", []int{2, 3, 4, 5}},
		{"1,3,6-8", []int{1, 3, 6, 7, 8}},
		{"0-10:5", []int{0, 5, 10}},
	}
	for _, tt := range tests {
		got, err := expandTaskIDs(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "%2", "5-2", "a", "1-", "-1", "0-9999999999", "0-4:0", "1,,2"} {
		if got, err := expandTaskIDs(bad); err == nil {
			t.Errorf("%q: got %v, want an error", bad, got)
		}
	}
}

func TestParseBadRecords(t *testing.T) {
	for _, line := range []string{
		"JobState=RUNNING",                      // no JobId
		"JobId=-h JobState=RUNNING",             // not an id
		"JobId=1 JobState=RUNNING ExitCode=3",   // no signal
		"JobId=1 JobState=RUNNING Restarts=x",   // not a count
		"JobId=1 ArrayJobId=1 JobState=RUNNING", // array task without index
		"JobId=1 ArrayJobId=x ArrayTaskId=0 JobState=RUNNING",
	} {
		if _, err := parseScontrol([]byte(line)); !errors.Is(err, ErrParse) {
			t.Errorf("%q: err = %v, want ErrParse", line, err)
		}
	}
}

func FuzzParseScontrol(f *testing.F) {
	files, _ := filepath.Glob("testdata/scontrol-*.txt")
	for _, name := range append(files, "testdata/jobcomp.txt") {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		tasks, err := parseScontrol(out)
		if err != nil {
			return
		}
		for _, tk := range tasks {
			if !isJobID(tk.ID) || tk.State == "" || tk.TaskID < -1 {
				t.Fatalf("parsed an impossible task %+v", tk)
			}
		}
	})
}

func FuzzJobComp(f *testing.F) {
	b, err := os.ReadFile("testdata/jobcomp.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, "5")
	f.Add(b, "1_2")
	f.Fuzz(func(t *testing.T, log []byte, jobID string) {
		if !isJobID(jobID) {
			return
		}
		tasks, err := scanJobComp(bytes.NewReader(log), "jobcomp.txt", jobID)
		if err != nil {
			return
		}
		arrayID, _, _ := strings.Cut(jobID, "_")
		for _, tk := range tasks {
			if tk.TaskID == -1 && tk.ID != arrayID || !isJobID(tk.ID) || tk.State == "" {
				t.Fatalf("job %s: parsed an impossible task %+v", jobID, tk)
			}
		}
	})
}
