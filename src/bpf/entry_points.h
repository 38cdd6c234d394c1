/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The kernel functions that the shared-memory system calls enter, listed
 * once. The BPF program expands this list into its per-function programs
 * (kprobe_NAME, kretprobe_NAME, fexit_NAME, with the function in the
 * section name: "kprobe/__x64_sys_shmget"); userspace (src/attach.rs)
 * reads the programs back from the object and takes from them which
 * function each attaches to and what it covers: NAME is the ABI's prefix
 * and the operation, or "ipc" for the ipc() multiplexer, which carries all
 * four. Adding a line here adds a program to each mode and nothing more to
 * write on either side.
 *
 * X(NAME, kernel function, ABI whose syscall table leads there) */
#ifndef SHMGET_ENTRY_POINTS_H
#define SHMGET_ENTRY_POINTS_H

#if defined(__TARGET_ARCH_x86)
#define SHM_ENTRY_POINTS(X)						\
	X(x64_shmget, __x64_sys_shmget, ABI_X86_64)			\
	X(x64_shmat, __x64_sys_shmat, ABI_X86_64)			\
	X(x64_shmdt, __x64_sys_shmdt, ABI_X86_64)			\
	X(x64_shmctl, __x64_sys_shmctl, ABI_X86_64)			\
	X(ia32_shmget, __ia32_sys_shmget, ABI_IA32)			\
	X(ia32_shmat, __ia32_compat_sys_shmat, ABI_IA32)		\
	X(ia32_shmdt, __ia32_sys_shmdt, ABI_IA32)			\
	X(ia32_shmctl, __ia32_compat_sys_shmctl, ABI_IA32)		\
	X(ia32_ipc, __ia32_compat_sys_ipc, ABI_IA32)
#elif defined(__TARGET_ARCH_arm64)
/* AArch32 shmget and shmdt run the native functions (arm64's compat table
 * names sys_shmget and sys_shmdt), so the aarch64 programs see both ABIs
 * there: the ABI of a call comes from its saved registers (syscall_abi),
 * never from the attach point. AArch32 shmctl runs compat_sys_old_shmctl
 * (arch/arm64/include/asm/unistd32.h), not compat_sys_shmctl. */
#define SHM_ENTRY_POINTS(X)						\
	X(aarch64_shmget, __arm64_sys_shmget, ABI_AARCH64)		\
	X(aarch64_shmat, __arm64_sys_shmat, ABI_AARCH64)		\
	X(aarch64_shmdt, __arm64_sys_shmdt, ABI_AARCH64)		\
	X(aarch64_shmctl, __arm64_sys_shmctl, ABI_AARCH64)		\
	X(arm_shmat, __arm64_compat_sys_shmat, ABI_ARM)			\
	X(arm_shmctl, __arm64_compat_sys_old_shmctl, ABI_ARM)
#else
#error "no entry points for this architecture (src/bpf/entry_points.h)"
#endif

#endif /* SHMGET_ENTRY_POINTS_H */
