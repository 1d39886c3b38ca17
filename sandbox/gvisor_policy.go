//go:build linux

package sandbox

import (
	"encoding/json"
	"fmt"
)

// Policy returns a deterministic description of how g isolates a script,
// as Policy does for Bubblewrap: the runsc options and platform, the OCI
// process a script runs as, the whole environment, the file system around
// the worker image, the seccomp filter inside the sandbox, the user and the
// rlimits, and the default limits. It is part of a worker's measurement
// (see package worker), so a server running gVisor has other measurements
// than one running bubblewrap, and any change to the isolation changes
// them.
func (g *GVisor) Policy() []byte {
	type limit struct {
		Name     string `json:"name"`
		Default  string `json:"default"`
		Enforced string `json:"enforced"`
	}
	env := append([][2]string(nil), environment...)
	env = append(env, [2]string{"PWD", "the working directory"})
	b, err := json.Marshal(struct {
		Runner      string      `json:"runner"`
		Platform    string      `json:"platform"`
		Isolation   []string    `json:"isolation"`
		Process     []string    `json:"process"`
		Environment [][2]string `json:"environment"`
		FileSystem  []string    `json:"file_system"`
		Seccomp     any         `json:"seccomp"`
		User        string      `json:"user"`
		Rlimits     []string    `json:"rlimits"`
		Limits      []limit     `json:"limits"`
	}{
		Runner:    "gvisor",
		Platform:  g.platform(),
		Isolation: gvisorIsolation,
		Process: []string{
			"a gVisor sandbox of its own per run, its kernel (runsc's sentry) between the script and the host's kernel",
			"namespaces pid, network, ipc, uts, mount", "hostname cleanroom",
			"no capabilities", "noNewPrivileges",
		},
		Environment: env,
		FileSystem: []string{
			"/ worker image, read-only",
			"/proc the sandbox's procfs", "/dev the sandbox's minimal devices", "/sys empty, read-only",
			"/dev/shm private tmpfs, at most the memory limit", "/tmp private tmpfs, at most the memory limit",
			"mounts of the spec, their mount points already in the image",
		},
		Seccomp: struct {
			Where  string   `json:"where"`
			EPERM  []string `json:"eperm"`
			Clone  string   `json:"clone"`
			Others string   `json:"others"`
		}{
			Where:  "inside the sandbox, as the OCI seccomp configuration (runsc --oci-seccomp); the sentry runs under runsc's own host filter",
			EPERM:  gvisorDeniedSyscalls(),
			Clone:  fmt.Sprintf("EPERM with any flag of %#x", cloneNewNamespaces),
			Others: "as the sentry implements them",
		},
		User:    "an unprivileged user of its own per concurrent job, inside the sandbox; the sandbox itself runs as runsc makes it",
		Rlimits: []string{"RLIMIT_CORE 0"},
		Limits: []limit{
			{"time", DefaultTimeout.String(), "wall time; the sandbox killed at the limit"},
			{"memory", fmt.Sprint(DefaultMemory), "cgroup memory limit of the whole sandbox, its kernel included (v2 memory.max, v1 memory.limit_in_bytes), no swap"},
			{"processes", fmt.Sprint(DefaultProcesses), "RLIMIT_NPROC inside the sandbox, whose tasks are all the job's; host pids.max as a backstop"},
			{"cpus", "0 (no limit)", cpuEnforced},
			{"output size", fmt.Sprint(DefaultOutputSize), "/output is a tmpfs of that size; else RLIMIT_FSIZE; checked again while zipping"},
			{"output files", fmt.Sprint(DefaultOutputFiles), "/output tmpfs inodes; else counted while zipping"},
		},
	})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return b
}
