package sandbox

import "time"

// The limits of one computation unless the server is told otherwise
// (`cleanroom serve --job-timeout, --job-memory, ...`). They are part of
// Policy, and so of a worker's measurement.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultMemory      = 4 << 30 // bytes, /tmp and /output included
	DefaultProcesses   = 512     // processes and threads
	DefaultOutputSize  = 1 << 30 // bytes written to /output
	DefaultOutputFiles = 10000   // files and directories in /output
)

// MaxCPUs is the largest CPU limit a run takes: more than any machine has,
// and well inside what the kernel's CPU quota can express.
const MaxCPUs = 4096
