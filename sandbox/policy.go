//go:build linux

package sandbox

import (
	"encoding/json"
	"fmt"
)

// Policy returns a deterministic description of how Bubblewrap isolates a
// script: the bwrap isolation options, the whole environment a script gets,
// the file system around the worker image, the seccomp filter, the user
// and the rlimits a script runs with, and the default limits. It is part of
// a worker's measurement (see package worker), so any change to the
// isolation changes the measurement clients see.
func Policy() []byte {
	type limit struct {
		Name     string `json:"name"`
		Default  string `json:"default"`
		Enforced string `json:"enforced"`
	}
	b, err := json.Marshal(struct {
		Runner      string      `json:"runner"`
		Isolation   []string    `json:"isolation"`
		Environment [][2]string `json:"environment"`
		FileSystem  []string    `json:"file_system"`
		Seccomp     any         `json:"seccomp"`
		User        string      `json:"user"`
		Rlimits     []string    `json:"rlimits"`
		Limits      []limit     `json:"limits"`
	}{
		Runner:      "bubblewrap",
		Isolation:   isolation,
		Environment: environment,
		FileSystem: []string{
			"/ worker image, read-only",
			"/proc new procfs", "/dev minimal devices",
			"/dev/shm private tmpfs, at most the memory limit", "/tmp private tmpfs, at most the memory limit",
			"mounts of the spec", "/ remounted read-only",
		},
		Seccomp: struct {
			Default  string   `json:"default"`
			EPERM    []string `json:"eperm"`
			Clone    string   `json:"clone"`
			Clone3   string   `json:"clone3"`
			Persona  []uint64 `json:"personality_allowed"`
			Families []uint64 `json:"socket_families_allowed"`
			OtherABI string   `json:"other_architectures"`
		}{
			Default:  "allow",
			EPERM:    DeniedSyscalls,
			Clone:    fmt.Sprintf("EPERM with any flag of %#x", cloneNewNamespaces),
			Clone3:   "ENOSYS",
			Persona:  allowedPersonalities,
			Families: allowedSocketFamilies,
			OtherABI: "ENOSYS",
		},
		User:    "an unprivileged host user of its own per concurrent job when the server runs as root; else the server's user",
		Rlimits: []string{"RLIMIT_CORE 0"},
		Limits: []limit{
			{"time", DefaultTimeout.String(), "wall time; every process of the sandbox killed at the limit"},
			{"memory", fmt.Sprint(DefaultMemory), "cgroup memory limit (v2 memory.max, v1 memory.limit_in_bytes), no swap; else RLIMIT_AS per process"},
			{"processes", fmt.Sprint(DefaultProcesses), "cgroup pids.max; else RLIMIT_NPROC of the job's own user"},
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

// cpuEnforced says how both runners enforce a CPU limit.
const cpuEnforced = "cgroup CPU quota over a 100 ms period (v2 cpu.max, v1 cpu.cfs_quota_us), of the whole sandbox; without the cpu controller a run with a limit fails"

// Policy returns Policy(), the policy of every Bubblewrap: with GVisor's
// Policy it lets a server measure its workers by the runner it uses.
func (b *Bubblewrap) Policy() []byte { return Policy() }
