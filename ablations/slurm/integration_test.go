package slurm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalCluster runs real jobs on the one-node cluster of
// scripts/slurm-local.sh, starting it if needed (root; apt installs Slurm on
// first use; see startCluster for when it runs).
func TestLocalCluster(t *testing.T) {
	startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := NewClient(ExecRunner{})
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	submit := func(base string, job Job, opts SubmitOptions) string {
		t.Helper()
		job.LogDir = logs
		script, err := WriteJob(dir, base, job)
		if err != nil {
			t.Fatal(err)
		}
		id, err := c.Submit(ctx, script, opts)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	began := time.Now()
	// A sleeper, cancelled once it runs.
	sleeper := submit("sleeper", Job{Name: "sleeper", Command: []string{"sleep", "300"}}, SubmitOptions{})
	// Three cells: each writes its file; the second then exits 3.
	name := `cells 'x' $(touch pwned) ` + "`id`"
	cells := submit("cells", Job{
		Name:    name,
		Command: []string{"sh", "-c", `echo "$MMABLATE_CELL_INDEX" >"$2"; [ "$1" = ok ] || exit 3`, "sh"},
		Cells:   [][]string{{"ok", out + "/a"}, {"fail", out + "/b"}, {"ok", out + "/c"}},
	}, SubmitOptions{})
	// A task that asks to be rerun (exit 75) on its first run only.
	requeue := submit("requeue", Job{
		Name:    "requeue",
		Command: []string{"sh", "-c", `echo run >>"$1"; echo "run ${SLURM_RESTART_COUNT:-0}"; [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] || exit 75`, "sh"},
		Cells:   [][]string{{out + "/requeue"}},
	}, SubmitOptions{})
	// Dependents. afterok on a plain job runs after it and sees its file;
	// afterany on the requeued array runs after the rerun; afterok on the
	// array with a failed cell is cancelled (kill_invalid_depend).
	prep := submit("prep", Job{Name: "prep", Command: []string{"sh", "-c", `sleep 1; touch "$1"`, "sh", out + "/prep"}}, SubmitOptions{})
	report := submit("report", Job{
		Name:    "report",
		Command: []string{"sh", "-c", `test -f "$1" && touch "$2"`, "sh", out + "/prep", out + "/report"},
	}, SubmitOptions{AfterOK: []string{prep}})
	afterRequeue := submit("after-requeue", Job{
		Name:    "after-requeue",
		Command: []string{"sh", "-c", `cp "$1" "$2"`, "sh", out + "/requeue", out + "/after-requeue"},
	}, SubmitOptions{AfterAny: []string{requeue}})
	orphan := submit("orphan", Job{Name: "orphan", Command: []string{"touch", out + "/orphan"}}, SubmitOptions{AfterOK: []string{cells}})

	waitFor(ctx, t, c, sleeper, func(ts []TaskState) bool { return ts[0].State == Running })
	if err := c.Cancel(ctx, sleeper); err != nil {
		t.Fatal(err)
	}

	final := func(ts []TaskState) bool {
		for _, x := range ts {
			if !x.State.Final() {
				return false
			}
		}
		return true
	}
	check := func(id string, want ...TaskState) {
		t.Helper()
		got := waitFor(ctx, t, c, id, final)
		t.Logf("job %s final after %v", id, time.Since(began).Round(100*time.Millisecond))
		if len(got) != len(want) {
			t.Fatalf("job %s: %+v, want %d tasks", id, got, len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.TaskID != w.TaskID || g.State != w.State || g.ExitCode != w.ExitCode || g.Restarts != w.Restarts {
				t.Errorf("job %s task %d: %+v, want %+v", id, i, g, w)
			}
		}
	}
	check(sleeper, TaskState{TaskID: -1, State: Cancelled})
	check(cells,
		TaskState{TaskID: 0, State: Done},
		TaskState{TaskID: 1, State: Failed, ExitCode: 3},
		TaskState{TaskID: 2, State: Done})
	check(requeue, TaskState{TaskID: 0, State: Done, Restarts: 1})
	check(prep, TaskState{TaskID: -1, State: Done})
	check(report, TaskState{TaskID: -1, State: Done})
	check(afterRequeue, TaskState{TaskID: -1, State: Done})
	check(orphan, TaskState{TaskID: -1, State: Cancelled})

	for file, want := range map[string]string{
		"a": "0\n", "b": "1\n", "c": "2\n", "requeue": "run\nrun\n", "report": "", "after-requeue": "run\nrun\n",
	} {
		if b, err := os.ReadFile(filepath.Join(out, file)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", file, b, err, want)
		}
	}
	// --open-mode=append keeps the first run's output in the task's log.
	if b, err := os.ReadFile(filepath.Join(logs, requeue+"_0.out")); err != nil || string(b) != "run 0\nrun 1\n" {
		t.Errorf("requeued task's log: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, "orphan")); err == nil {
		t.Error("the report of a failed array ran")
	}
	// sbatch read the hostile name exactly; nothing in it ran.
	live, err := ExecRunner{}.Run(ctx, "scontrol", "show", "job", "-o", cells+"_0")
	if err != nil {
		t.Fatal(err)
	}
	if got := parseFields(string(live), scontrolHead)["JobName"]; got != name {
		t.Errorf("job name %q, want %q", got, name)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("the job name was executed")
	}
}

// startCluster starts scripts/slurm-local.sh's cluster, or skips the test
// unless MMABLATE_SLURM_TEST=1 or CI=true; MMABLATE_SLURM_STATE picks its
// state directory. It points the Slurm tools at it through SLURM_CONF.
func startCluster(t *testing.T) {
	t.Helper()
	if os.Getenv("MMABLATE_SLURM_TEST") != "1" && os.Getenv("CI") != "true" {
		t.Skip("set MMABLATE_SLURM_TEST=1 to run jobs on a local Slurm cluster (scripts/slurm-local.sh; needs root)")
	}
	state := os.Getenv("MMABLATE_SLURM_STATE")
	if state == "" {
		state = "/tmp/mmablate-slurm"
	}
	start := exec.Command("../../scripts/slurm-local.sh", "start", state)
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("scripts/slurm-local.sh start: %v\n%s", err, out)
	}
	t.Setenv("SLURM_CONF", filepath.Join(state, "slurm.conf"))
}

// waitFor polls Status until done says so.
func waitFor(ctx context.Context, t *testing.T, c *Client, id string, done func([]TaskState) bool) []TaskState {
	t.Helper()
	for {
		ts, err := c.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if done(ts) {
			return ts
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for _, x := range ts {
				b.WriteString(x.ID + "=" + x.SlurmState + "(" + x.Reason + ") ")
			}
			t.Fatalf("job %s: gave up waiting: %s", id, b.String())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
