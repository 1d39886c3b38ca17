// Package sandbox runs untrusted scripts sealed off from the host.
//
// A sandboxed script sees a read-only runtime (interpreter and libraries),
// the mounts its Spec lists, a private /tmp and nothing else: no network,
// no other host files, no host processes, no inherited environment
// (DESIGN.md §4). It runs as an unprivileged host user, under a seccomp
// filter, within the memory and process limits of its Spec. Bubblewrap
// implements Runner with bubblewrap (bwrap).
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// Mount binds a host path into the sandbox.
type Mount struct {
	Host     string // absolute path on the host; must exist
	Sandbox  string // absolute path inside the sandbox
	Writable bool   // false binds read-only
}

// Spec describes one sandboxed run.
type Spec struct {
	// Command is the argv inside the sandbox, e.g.
	// {"/usr/bin/python3", "/cleanroom/script.py"}. Command[0] must be an
	// absolute path inside the sandbox.
	Command []string

	// Mounts are bound in order, so a parent comes before anything mounted
	// below it: e.g. /input read-only, /output writable, the script file
	// read-only.
	Mounts []Mount

	// Dir is the working directory inside the sandbox; default "/tmp".
	Dir string

	// Stdout and Stderr receive the script's output; nil discards it.
	Stdout, Stderr io.Writer

	// Timeout limits the wall time of the run; 0 means no limit.
	Timeout time.Duration

	// Limits bound the memory, processes and file sizes of the run.
	Limits Limits

	// User is the host user the script runs as. A process running as
	// root must name one, as scripts never run as root; the mounts must be
	// reachable by it. Otherwise nil runs the script as the caller's user.
	User *User

	// Root, if set, is the worker image of this run: a host directory
	// bound read-only as /, in place of the runner's own Root. It lets one
	// runner serve several images (Python, R).
	Root string
}

// User is an unprivileged host user and group. One that maps to no account
// and runs nothing else, such as one per concurrent job from a high range,
// makes the process limit and the file permissions apply to one run alone.
type User struct{ UID, GID int }

// Limits bound what one run may use; a zero field sets no limit. Where the
// machine offers cgroups, memory and processes are limited with them;
// otherwise with rlimits, per process (RLIMIT_AS) and per user
// (RLIMIT_NPROC, only with a User of its own).
type Limits struct {
	// Memory is the bytes of memory of all the run's processes together,
	// the files they write to /tmp and /dev/shm included.
	Memory int64

	// Processes is how many processes and threads the script may have
	// at once.
	Processes int

	// CPUs is how much CPU time the run's processes may use together per
	// second of wall time: 0.5 is half of one CPU, 2 two whole ones. Past
	// it the scheduler holds them back (a cgroup CPU quota); the run goes
	// on, slower. It needs the cgroup cpu controller: without it, a run
	// with a CPU limit fails rather than run unlimited.
	CPUs float64 // at most MaxCPUs

	// FileSize is the size of the largest file the script may write
	// (RLIMIT_FSIZE); a write past it kills the script. It is for a
	// writable mount that has no size-limited file system of its own.
	FileSize int64
}

// Result says how the sandboxed process ended.
type Result struct {
	ExitCode int            // -1 when killed by a signal
	Signal   syscall.Signal // 0 unless killed by a signal
	TimedOut bool           // the run was ended at Spec.Timeout
	Duration time.Duration  // wall time of the run

	// MemoryExceeded is set when a process of the run was killed for
	// going over Limits.Memory.
	MemoryExceeded bool

	// ProcessesExceeded is set when a process or thread could not start
	// because the run had Limits.Processes of them.
	ProcessesExceeded bool

	// CPUThrottled is how long the scheduler held the run's processes
	// back at Limits.CPUs; 0 without a CPU limit.
	CPUThrottled time.Duration

	limit  time.Duration // Spec.Timeout, named by Err
	limits Limits        // Spec.Limits, named by Err
}

// LimitError is the error of a run that went over one of its limits.
type LimitError struct {
	Limit string // which limit: "time", "memory", "process" or "file size"
	Max   string // the limit, in the units it was set in: "5s", "512 MiB", "64"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("script exceeded its %s limit of %s", e.Limit, e.Max)
}

// Err returns nil for exit status 0, else an error whose message says how the
// script ended, in words a user understands. A run that went over a limit
// returns a *LimitError naming it. The process and memory limits come
// before the time limit: a script whose process was killed for memory or
// could not start one may then fail in any way, or wait for that process
// until its time runs out. A fork bomb hits both: processes come first.
func (r Result) Err() error {
	failed := r.TimedOut || r.Signal != 0 || r.ExitCode != 0
	switch {
	case failed && r.ProcessesExceeded:
		return &LimitError{Limit: "process", Max: strconv.Itoa(r.limits.Processes)}
	case r.MemoryExceeded:
		return &LimitError{Limit: "memory", Max: cleanroom.FormatBytes(r.limits.Memory)}
	case r.TimedOut:
		return &LimitError{Limit: "time", Max: r.timeLimit().String()}
	case r.Signal == syscall.SIGXFSZ && r.limits.FileSize > 0:
		return &LimitError{Limit: "file size", Max: cleanroom.FormatBytes(r.limits.FileSize)}
	case r.Signal != 0:
		return fmt.Errorf("script was killed by signal %s (%s)", signalName(r.Signal), signalMeaning(r.Signal))
	case r.ExitCode != 0:
		return fmt.Errorf("script exited with status %d", r.ExitCode)
	}
	return nil
}

// timeLimit is the limit a timed-out run hit.
func (r Result) timeLimit() time.Duration {
	if r.limit > 0 {
		return r.limit
	}
	return r.Duration.Round(time.Millisecond)
}

// Runner runs a Spec in isolation.
type Runner interface {
	// Run runs spec.Command in a sandbox and waits for it to end. When Run
	// returns, every process the script started has ended.
	//
	// A script's own failure (non-zero status, signal, time limit) is
	// reported in Result, with a nil error. Run returns an error wrapping
	// ErrInvalidSpec for a spec it refuses, an error wrapping the context's
	// error, with the Result of the killed run, when ctx ends before the
	// script does, and another error when the sandbox could not be set up
	// or the script's output could not be written to Spec.Stdout or
	// Spec.Stderr.
	Run(ctx context.Context, spec Spec) (Result, error)
}

// ErrInvalidSpec is wrapped by every error Run returns for a Spec it refuses
// to run.
var ErrInvalidSpec = errors.New("sandbox: invalid spec")

// reserved are the sandbox paths a Mount may not cover or go below: the
// runtime, the kernel file systems and the private /tmp.
var reserved = []string{
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
	"/proc", "/dev", "/sys", "/tmp",
}

// check refuses limits no run can have.
func (l Limits) check() error {
	if l.Memory < 0 || l.Processes < 0 || l.FileSize < 0 || !(l.CPUs >= 0 && l.CPUs <= MaxCPUs) {
		return fmt.Errorf("%w: limits %+v: none may be negative, and CPUs at most %d", ErrInvalidSpec, l, MaxCPUs)
	}
	return nil
}

// validate checks spec and returns it with defaults filled in.
func (spec Spec) validate() (Spec, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return spec, invalid("no command")
	}
	if !path.IsAbs(spec.Command[0]) {
		return spec, invalid("command %q is not an absolute path", spec.Command[0])
	}
	for _, arg := range spec.Command {
		if strings.ContainsRune(arg, 0) {
			return spec, invalid("command argument %q contains a NUL byte", arg)
		}
	}
	if spec.Timeout < 0 {
		return spec, invalid("negative time limit %s", spec.Timeout)
	}
	if err := spec.Limits.check(); err != nil {
		return spec, err
	}
	if u := spec.User; u != nil && (u.UID <= 0 || u.GID <= 0) {
		return spec, invalid("user %d:%d: scripts never run as root", u.UID, u.GID)
	}
	if spec.Dir == "" {
		spec.Dir = "/tmp"
	}
	if err := checkSandboxPath(spec.Dir); err != nil {
		return spec, invalid("working directory: %v", err)
	}
	for i, m := range spec.Mounts {
		if m.Host == "" || !path.IsAbs(m.Host) || strings.ContainsRune(m.Host, 0) {
			return spec, invalid("mount %d: host path %q is not an absolute path", i+1, m.Host)
		}
		if err := checkSandboxPath(m.Sandbox); err != nil {
			return spec, invalid("mount %d: %v", i+1, err)
		}
		if m.Sandbox == "/" {
			return spec, invalid("mount %d: cannot mount over /", i+1)
		}
		for _, r := range reserved {
			if within(m.Sandbox, r) {
				return spec, invalid("mount %d: %s is reserved for the sandbox itself", i+1, r)
			}
		}
		for j, earlier := range spec.Mounts[:i] {
			if m.Sandbox == earlier.Sandbox {
				return spec, invalid("mounts %d and %d both mount %s", j+1, i+1, m.Sandbox)
			}
			if within(earlier.Sandbox, m.Sandbox) {
				return spec, invalid("mount %d (%s) would hide mount %d (%s): list it first",
					i+1, m.Sandbox, j+1, earlier.Sandbox)
			}
		}
	}
	return spec, nil
}

// checkSandboxPath reports why p cannot name a place in the sandbox.
func checkSandboxPath(p string) error {
	switch {
	case !path.IsAbs(p):
		return fmt.Errorf("sandbox path %q is not absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("sandbox path %q is not clean (want %q)", p, path.Clean(p))
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("sandbox path %q contains a NUL byte", p)
	}
	return nil
}

// within reports whether p is dir or below it; both are clean absolute paths.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// signalNames are the Linux signal names, for messages users can look up.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
	31: "SIGSYS",
}

// sigRTMIN is the first real-time signal as the C library numbers them.
const sigRTMIN = 34

func signalName(s syscall.Signal) string {
	switch {
	case s > 0 && int(s) < len(signalNames):
		return signalNames[s]
	case s >= sigRTMIN && s <= 64:
		return fmt.Sprintf("SIGRTMIN+%d", s-sigRTMIN)
	}
	return fmt.Sprintf("number %d", int(s))
}

func signalMeaning(s syscall.Signal) string {
	if s >= sigRTMIN && s <= 64 {
		return "real-time signal"
	}
	if s > 0 && int(s) < len(signalNames) {
		return s.String()
	}
	return "unknown signal"
}

// checkHostPaths fails when the host path of a mount does not exist: the
// sandbox would otherwise fail later with a message that names less.
func (s Spec) checkHostPaths() error {
	for i, m := range s.Mounts {
		if _, err := os.Stat(m.Host); err != nil {
			if pe, ok := err.(*os.PathError); ok {
				err = pe.Err
			}
			return fmt.Errorf("%w: mount %d: host path %s: %v", ErrInvalidSpec, i+1, m.Host, err)
		}
	}
	return nil
}
