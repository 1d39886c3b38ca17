package sandbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
)

// DeniedSyscalls are the system calls no data script needs, refused with
// EPERM by the seccomp filter every script runs under: the one list of
// them. Most already fail for want of a capability; the filter keeps their
// kernel code out of a script's reach all the same. A name the machine's
// architecture lacks (iopl on arm64) is left out there.
var DeniedSyscalls = []string{
	// Reading or steering other processes.
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
	// Mounts and namespaces: the sandbox's are made before the filter
	// applies, and a script makes none of its own.
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	// The kernel and the machine.
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
	"iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "syslog", "vhangup", "uselib", "lookup_dcookie",
	// Interfaces that widen what a script can reach in the kernel.
	"bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_by_handle_at", "name_to_handle_at", "fanotify_init",
}

// Besides DeniedSyscalls, the filter refuses:
//   - clone with a flag that makes a namespace (EPERM), and clone3, whose
//     flags a filter cannot read, with ENOSYS, so that the C library falls
//     back to clone;
//   - personality, except to read it or to set the values the C library
//     and Python use (EPERM);
//   - socket, except of allowedSocketFamilies (EPERM);
//   - system calls of another architecture's ABI, such as 32-bit x86 on
//     x86-64 (ENOSYS).
const (
	cloneNewNamespaces = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 // CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
	errnoENOSYS        = 38
)

// allowedSocketFamilies are the address families a script may open sockets
// of: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK, all confined by the
// sandbox's network namespace. Others are refused with EPERM: AF_VSOCK
// above all, whose ports belong to the whole machine and its hypervisor,
// not to a network namespace.
var allowedSocketFamilies = []uint64{1, 2, 10, 16}

// allowedPersonalities are the personality(2) arguments the filter lets
// through: PER_LINUX, PER_LINUX32, UNAME26 with either, and 0xffffffff,
// which reads the current one.
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// seccompPolicy is the filter as the library assembles it, for info, the
// machine's architecture.
func seccompPolicy(info *arch.Info) seccomp.Policy {
	var names []string
	for _, name := range DeniedSyscalls {
		if _, ok := info.SyscallNames[name]; ok {
			names = append(names, name)
		}
	}
	var notAllowed, otherFamily seccomp.ArgumentConditions
	for _, p := range allowedPersonalities {
		notAllowed = append(notAllowed, seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: p})
	}
	for _, f := range allowedSocketFamilies {
		otherFamily = append(otherFamily, seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: f})
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: names},
			{Action: seccomp.ActionErrno | errnoENOSYS, Names: []string{"clone3"}},
			{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNewNamespaces}}},
				{Name: "personality", Conditions: notAllowed},
				{Name: "socket", Conditions: otherFamily},
			}},
		},
	}
}

var seccompOnce = sync.OnceValues(func() ([]byte, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("sandbox: seccomp filter: %w", err)
	}
	return seccompFilter(info)
})

// seccompFilter returns the filter for info as the array of struct
// sock_filter that bwrap --seccomp reads.
func seccompFilter(info *arch.Info) ([]byte, error) {
	policy := seccompPolicy(info)
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("sandbox: seccomp filter: %w", err)
	}
	// The library lets a system call of another architecture through
	// unchecked; refuse them first.
	guard := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(seccomp.ActionErrno) | errnoENOSYS},
	}
	raw, err := bpf.Assemble(append(guard, insts...))
	if err != nil {
		return nil, fmt.Errorf("sandbox: seccomp filter: %w", err)
	}
	var buf bytes.Buffer
	for _, ins := range raw {
		binary.Write(&buf, binary.NativeEndian, struct {
			Op     uint16
			Jt, Jf uint8
			K      uint32
		}{ins.Op, ins.Jt, ins.Jf, ins.K})
	}
	return buf.Bytes(), nil
}
