package enclave

import "syscall"

const noFollow = syscall.O_NOFOLLOW
