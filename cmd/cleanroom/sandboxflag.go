package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// Sandboxes are the sandboxes `cleanroom serve --sandbox` runs scripts in.
const (
	sandboxBubblewrap = "bubblewrap"
	sandboxGVisor     = "gvisor"
)

// sandboxConfig is which sandbox a server runs scripts in.
type sandboxConfig struct {
	Kind     string // sandboxBubblewrap (also when empty) or sandboxGVisor
	Platform string // gVisor's platform; empty: sandbox.DefaultGVisorPlatform
}

// addSandboxFlags adds --sandbox and --gvisor-platform to fs.
func addSandboxFlags(fs *flag.FlagSet, c *sandboxConfig) {
	*c = sandboxConfig{Kind: sandboxBubblewrap, Platform: sandbox.DefaultGVisorPlatform}
	fs.Var(&choiceFlag{&c.Kind, []string{sandboxBubblewrap, sandboxGVisor}, "sandbox"}, "sandbox",
		"the `kind` of sandbox scripts run in: bubblewrap (namespaces and seccomp on the host's kernel) or gvisor (gVisor's runsc: a kernel of its own per run, in user space; needs root and the runsc package)")
	fs.Var(&choiceFlag{&c.Platform, sandbox.GVisorPlatforms, "gVisor platform"}, "gvisor-platform",
		"the `platform` gVisor intercepts system calls with, with --sandbox=gvisor: ptrace (works everywhere), kvm or systrap (faster, where runsc and the machine support them)")
}

// check reports a sandbox that cannot run on this machine, before the
// server builds anything.
func (c sandboxConfig) check(fs *flag.FlagSet) error {
	if c.Kind != sandboxGVisor {
		platformSet := false
		fs.Visit(func(f *flag.Flag) { platformSet = platformSet || f.Name == "gvisor-platform" })
		if platformSet {
			return usageError("--gvisor-platform is for --sandbox=gvisor")
		}
		return nil
	}
	if sandbox.NewGVisor().Path == "" {
		return hintError("--sandbox=gvisor: gVisor's runsc is not installed",
			"install the runsc package (Debian: apt-get install runsc), or run `make deps`")
	}
	if os.Geteuid() != 0 {
		return hintError("--sandbox=gvisor: runsc runs sandboxes as root only",
			"run the server as root, or use --sandbox=bubblewrap")
	}
	return nil
}

// scriptRunner is the sandbox a server runs scripts in: it says how it
// enforces the limits, and its policy is part of the workers' measurement.
type scriptRunner interface {
	sandbox.Runner
	Policy() []byte
	Enforcement() string
	CheckLimits(sandbox.Limits) error
}

// newRunner returns the sandbox of c on the worker image root (empty: the
// host's /usr). A gVisor sandbox keeps the files of each run in workDir.
func (c sandboxConfig) newRunner(root, workDir string) scriptRunner {
	if c.Kind == sandboxGVisor {
		g := sandbox.NewGVisor()
		g.Root, g.WorkDir = root, workDir
		if c.Platform != "" {
			g.Platform = c.Platform
		}
		return g
	}
	b := sandbox.NewBubblewrap()
	b.Root = root
	return b
}

// choiceFlag is a flag.Value that is one of a few words.
type choiceFlag struct {
	p     *string
	words []string
	what  string
}

func (f *choiceFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f *choiceFlag) Set(s string) error {
	if !slices.Contains(f.words, s) {
		return fmt.Errorf("unknown %s %q: use %s", f.what, s, orList(f.words))
	}
	*f.p = s
	return nil
}

// orList writes words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
