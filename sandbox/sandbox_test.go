package sandbox

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestResultErr(t *testing.T) {
	for _, tt := range []struct {
		res  Result
		want string
	}{
		{Result{}, ""},
		{Result{ExitCode: 1}, "script exited with status 1"},
		{Result{ExitCode: -1, Signal: syscall.SIGSEGV}, "script was killed by signal SIGSEGV (segmentation fault)"},
		{Result{ExitCode: -1, Signal: syscall.SIGKILL}, "script was killed by signal SIGKILL (killed)"},
		{Result{ExitCode: -1, Signal: 40}, "script was killed by signal SIGRTMIN+6 (real-time signal)"},
		{Result{ExitCode: -1, Signal: syscall.SIGKILL, TimedOut: true, limit: 5 * time.Second, Duration: 5001 * time.Millisecond},
			"script exceeded its time limit of 5s"},
	} {
		err := tt.res.Err()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%+v.Err() = %q, want %q", tt.res, got, tt.want)
		}
	}
}

func TestSpecValidation(t *testing.T) {
	cmd := []string{"/usr/bin/python3", "/cleanroom/script.py"}
	for _, tt := range []struct {
		spec Spec
		want string // in the error
	}{
		{Spec{}, "no command"},
		{Spec{Command: []string{"python3"}}, `command "python3" is not an absolute path`},
		{Spec{Command: []string{"/usr/bin/python3", "a\x00b"}}, "NUL"},
		{Spec{Command: cmd, Timeout: -time.Second}, "negative time limit"},
		{Spec{Command: cmd, Dir: "tmp"}, `working directory: sandbox path "tmp" is not absolute`},
		{Spec{Command: cmd, Dir: "/tmp/../etc"}, "not clean"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "data", Sandbox: "/input"}}}, `mount 1: host path "data" is not an absolute path`},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/data", Sandbox: "input"}}}, `mount 1: sandbox path "input" is not absolute`},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/data", Sandbox: "/"}}}, "mount 1: cannot mount over /"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/data", Sandbox: "/proc"}}}, "/proc is reserved"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/data", Sandbox: "/usr/lib/python3"}}}, "/usr is reserved"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/data", Sandbox: "/tmp/data"}}}, "/tmp is reserved"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/data", Sandbox: "/etc"}}}, "/etc is reserved"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/a", Sandbox: "/input"}, {Host: "/b", Sandbox: "/input"}}},
			"mounts 1 and 2 both mount /input"},
		{Spec{Command: cmd, Mounts: []Mount{{Host: "/a", Sandbox: "/input/code"}, {Host: "/b", Sandbox: "/input"}}},
			"mount 2 (/input) would hide mount 1 (/input/code)"},
	} {
		_, err := tt.spec.validate()
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("validate(%+v) = %v, want ErrInvalidSpec with %q", tt.spec, err, tt.want)
		}
	}

	spec, err := Spec{Command: cmd, Mounts: []Mount{
		{Host: "/a", Sandbox: "/input"},
		{Host: "/b", Sandbox: "/input/code"},
		{Host: "/c", Sandbox: "/output", Writable: true},
		{Host: "/d", Sandbox: "/cleanroom/script.py"},
	}}.validate()
	if err != nil {
		t.Fatalf("validate of a good spec: %v", err)
	}
	if spec.Dir != "/tmp" {
		t.Errorf("default Dir = %q, want /tmp", spec.Dir)
	}
}
