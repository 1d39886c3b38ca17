package sandbox

import (
	"errors"
	"syscall"
	"time"
	"unsafe"
)

// System call numbers, the same on every Linux architecture (Linux 5.3+).
const (
	sysPidfdSendSignal = 424
	sysPidfdOpen       = 434
)

// pidfdOpen returns a file descriptor that refers to process pid for as long
// as it is open, even after the PID is reused.
func pidfdOpen(pid int) (int, error) {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// killAndWait sends SIGKILL to the process behind pidfd and waits up to
// timeout for it to end. For the PID 1 of a PID namespace, the end comes
// after the kernel has killed and reaped every other process in it.
func killAndWait(pidfd int, timeout time.Duration) error {
	_, _, errno := syscall.Syscall6(sysPidfdSendSignal, uintptr(pidfd), uintptr(syscall.SIGKILL), 0, 0, 0, 0)
	if errno != 0 && errno != syscall.ESRCH {
		return errno
	}
	// A pidfd polls readable once its process has ended.
	const pollIn = 0x1
	pfd := struct {
		fd      int32
		events  int16
		revents int16
	}{fd: int32(pidfd), events: pollIn}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("processes still running after SIGKILL")
		}
		ts := syscall.NsecToTimespec(int64(left))
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		switch {
		case errno == syscall.EINTR:
		case errno != 0:
			return errno
		case n > 0:
			return nil
		}
	}
}
