package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one Slurm command-line tool and returns its standard output.
// A failed run returns a *CommandError (or wraps one) carrying the tool's
// standard error, which is where Slurm explains itself. Tests substitute
// captured outputs.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ErrToolMissing is wrapped by the error a Runner returns when a Slurm tool
// is not installed.
var ErrToolMissing = errors.New("slurm tool not found")

// MissingToolError names the Slurm tool that is not in PATH.
type MissingToolError struct{ Name string }

func (e *MissingToolError) Error() string {
	return e.Name + " not found in PATH: install slurm-client or run scripts/slurm-local.sh start"
}

func (e *MissingToolError) Unwrap() error { return ErrToolMissing }

// CommandError is a Slurm tool that ran and failed.
type CommandError struct {
	Name     string
	Args     []string
	ExitCode int // -1 when it did not exit normally (killed, context done)
	Stderr   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %s", e.Name, strings.Join(e.Args, " "), msg)
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExecRunner runs the tools as processes found in PATH, in this process's
// environment (so SLURM_CONF, when set, chooses the cluster).
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, &MissingToolError{Name: name}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		code := -1
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		}
		return stdout.Bytes(), &CommandError{Name: name, Args: args, ExitCode: code, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}
