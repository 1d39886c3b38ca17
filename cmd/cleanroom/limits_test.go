package main

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom/enclave"
	"github.com/cleanroom-dev/cleanroom/sandbox"
)

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1000", 1000}, {"512B", 512}, {"1KiB", 1024}, {"512MiB", 512 << 20},
		{"4GiB", 4 << 30}, {"1.5GiB", 3 << 29}, {" 100 MiB ", 100 << 20}, {"2TiB", 2 << 40},
	} {
		got, err := parseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"12XB", `unknown unit "XB"; use KiB, MiB, GiB or TiB, or a plain number of bytes`},
		{"512MB", `unknown unit "MB"; sizes are binary: write MiB`},
		{"4g", `unknown unit "g"; sizes are binary: write GiB`},
		{"1kb", `unknown unit "kb"; sizes are binary: write KiB`},
		{"MiB", `"MiB" is not a size`},
		{"", `"" is not a size`},
		{"-5MiB", `"-5MiB" is not a size`},
		{"1.2.3MiB", `"1.2.3" is not a number`},
		{"0.1KiB", "not a whole number of bytes"},
		{"99999999TiB", "too large"},
	} {
		_, err := parseBytes(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseBytes(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestLimitFlags(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var l jobLimits
	addLimitFlags(fs, &l)
	if l.Memory != 4<<30 || l.Processes != 512 || l.CPUs != 0 || l.OutputSize != 1<<30 || l.OutputFiles != 10000 {
		t.Errorf("defaults %+v", l)
	}
	err := fs.Parse([]string{"--job-memory", "256MiB", "--job-processes", "64", "--job-cpus", "1.5", "--job-output-size=10MiB", "--job-output-files", "100"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (jobLimits{Memory: 256 << 20, Processes: 64, CPUs: 1.5, OutputSize: 10 << 20, OutputFiles: 100}); l != want {
		t.Errorf("parsed %+v, want %+v", l, want)
	}
	for _, args := range [][]string{{"--job-memory", "12XB"}, {"--job-processes", "-1"}, {"--job-processes", "many"}, {"--job-output-files", "1.5"},
		{"--job-cpus", "-1"}, {"--job-cpus", "NaN"}, {"--job-cpus", "Inf"}, {"--job-cpus", "half"}, {"--job-cpus", "0.001"}, {"--job-cpus", "5000"}} {
		if err := fs.Parse(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	for in, want := range map[int64]string{4 << 30: "4GiB", 1536 << 20: "1536MiB", 1000: "1000", 0: "0", 3 << 10: "3KiB"} {
		if got := formatBytesFlag(in); got != want {
			t.Errorf("formatBytesFlag(%d) = %q, want %q", in, got, want)
		}
	}
}

// Limits the machine cannot set up for a job stop the server from
// starting, naming the flag, rather than fail every job later: a CPU limit
// without cgroups, or one above what the server itself may use. The same
// machine serves without them.
func TestLimitsNotEnforceable(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		runner scriptRunner
		limits jobLimits
	}{
		{&sandbox.Bubblewrap{NoCgroups: true}, jobLimits{CPUs: 0.5}},
		{&sandbox.GVisor{NoCgroups: true}, jobLimits{CPUs: 0.5}},
		{&sandbox.GVisor{NoCgroups: true}, jobLimits{Memory: 1 << 30}},
		// More CPU than the server itself may use (on cgroup v1 the kernel
		// refuses a quota above the parent's; this machine's is unlimited,
		// so the sandbox's own bound refuses it).
		{sandbox.NewBubblewrap(), jobLimits{CPUs: sandbox.MaxCPUs + 1}},
	} {
		e := enclave.NewEnclave(nil)
		err := tc.limits.apply(e, tc.runner, logger)
		if err == nil || !strings.Contains(err.Error(), "this machine cannot set up the job limits") || e.JobCPUs != 0 {
			t.Errorf("%T, %+v: %v (JobCPUs %g); want refused", tc.runner, tc.limits, err, e.JobCPUs)
		}
		if err := (jobLimits{}).apply(e, tc.runner, logger); err != nil {
			t.Errorf("%T without limits: %v", tc.runner, err)
		}
	}
}
