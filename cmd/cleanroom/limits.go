package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/enclave"
	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// jobLimits are the limits of one computation that `cleanroom serve` takes
// as flags, besides --job-timeout.
type jobLimits struct {
	Memory      int64
	Processes   int
	CPUs        float64
	OutputSize  int64
	OutputFiles int
}

// addLimitFlags adds the limit flags to fs, with the sandbox's defaults.
func addLimitFlags(fs *flag.FlagSet, l *jobLimits) {
	*l = jobLimits{
		Memory:      sandbox.DefaultMemory,
		Processes:   sandbox.DefaultProcesses,
		OutputSize:  sandbox.DefaultOutputSize,
		OutputFiles: sandbox.DefaultOutputFiles,
	}
	fs.Var(&bytesFlag{&l.Memory}, "job-memory", "memory limit of one computation, its /tmp and /output included: a `size` in bytes or with a unit (512MiB, 4GiB); 0 for no limit")
	fs.Var(&cpusFlag{&l.CPUs}, "job-cpus", "how much CPU one computation may use, in `CPUs`: 0.5 is half of one, 2 two whole ones; past it the computation runs slower (0 for no limit; needs the cgroup cpu controller)")
	fs.Var(&countFlag{&l.Processes}, "job-processes", "how many processes and threads one computation may have at once (a `count`; 0 for no limit)")
	fs.Var(&bytesFlag{&l.OutputSize}, "job-output-size", "how much one computation may write to /output, in total: a `size` in bytes or with a unit (100MiB, 1GiB); 0 for no limit")
	fs.Var(&countFlag{&l.OutputFiles}, "job-output-files", "how many files and directories one computation may make in /output (a `count`; 0 for no limit)")
}

// apply sets the limits on e and logs how this machine enforces them.
// Limits this machine cannot set up for a job, such as a CPU limit without
// the cgroup cpu controller, stop the server from starting rather than
// fail every job.
func (l jobLimits) apply(e *enclave.Enclave, b scriptRunner, logger *slog.Logger) error {
	if err := b.CheckLimits(sandbox.Limits{Memory: l.Memory, Processes: l.Processes, CPUs: l.CPUs}); err != nil {
		hint := "lower the limits, or run the server where cgroups can enforce them"
		if l.CPUs > 0 {
			hint = "--job-cpus needs the cgroup cpu controller, and no more CPU than the server itself may use: lower it, or leave it at 0"
		}
		return hintError(fmt.Sprintf("this machine cannot set up the job limits: %v", err), hint)
	}
	how := b.Enforcement()
	e.JobMemory, e.JobProcesses, e.JobCPUs = l.Memory, l.Processes, l.CPUs
	e.JobOutputSize, e.JobOutputFiles = l.OutputSize, l.OutputFiles
	log := logger.Info
	if strings.Contains(how, "cgroups are not usable") {
		log = logger.Warn
	}
	cpus := "no limit"
	if l.CPUs > 0 {
		cpus = strconv.FormatFloat(l.CPUs, 'g', -1, 64)
	}
	log("job limits", "timeout", e.JobTimeout, "memory", cleanroom.FormatBytes(l.Memory), "processes", l.Processes, "cpus", cpus,
		"output_size", cleanroom.FormatBytes(l.OutputSize), "output_files", l.OutputFiles,
		"sandbox", how, "output", e.OutputEnforcement())
	return nil
}

// units are the byte units parseBytes takes: IEC binary prefixes.
var units = map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// parseBytes parses a byte count: a number, optionally with a decimal
// fraction, and an IEC unit (KiB, MiB, GiB, TiB), as in 512MiB or 1.5GiB.
// A plain number is bytes.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, fmt.Errorf("%q is not a size; write a number of bytes or one with a unit, such as 512MiB", s)
	}
	mult, ok := units[unit]
	if !ok {
		hint := "use KiB, MiB, GiB or TiB, or a plain number of bytes"
		switch strings.ToUpper(unit) {
		case "K", "KB", "M", "MB", "G", "GB", "T", "TB":
			hint = fmt.Sprintf("sizes are binary: write %siB", strings.ToUpper(unit[:1]))
		}
		return 0, fmt.Errorf("unknown unit %q; %s", unit, hint)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%s is too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%s is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%s is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// formatBytesFlag writes n as parseBytes reads it, in the largest unit
// that divides it: 4GiB, 1536MiB, 1000.
func formatBytesFlag(n int64) string {
	for _, u := range []string{"TiB", "GiB", "MiB", "KiB"} {
		if m := units[u]; n != 0 && n%m == 0 {
			return fmt.Sprintf("%d%s", n/m, u)
		}
	}
	return strconv.FormatInt(n, 10)
}

// bytesFlag is a flag.Value of a byte count, as parseBytes reads it; 0
// sets no limit.
type bytesFlag struct{ p *int64 }

func (f *bytesFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return formatBytesFlag(*f.p)
}

func (f *bytesFlag) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*f.p = n
	return nil
}

// cpusFlag is a flag.Value of a number of CPUs, fractions allowed; 0
// sets no limit.
type cpusFlag struct{ p *float64 }

func (f *cpusFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}

func (f *cpusFlag) Set(s string) error {
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	switch {
	case err != nil || math.IsNaN(n) || math.IsInf(n, 0):
		return errors.New("not a number of CPUs; write one such as 0.5 or 2")
	case n < 0:
		return errors.New("cannot be negative")
	case n > 0 && n < 0.01:
		return errors.New("the least CPU limit is 0.01 CPUs")
	case n > sandbox.MaxCPUs:
		return fmt.Errorf("the largest CPU limit is %d CPUs", sandbox.MaxCPUs)
	}
	*f.p = n
	return nil
}

// countFlag is a flag.Value of a count that is not negative; 0 sets no
// limit.
type countFlag struct{ p *int }

func (f *countFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.Itoa(*f.p)
}

func (f *countFlag) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 0 {
		return errors.New("cannot be negative")
	}
	*f.p = n
	return nil
}
