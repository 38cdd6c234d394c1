/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What an architecture's system call ABIs look like to the decoder
 * (decode_call in shmget_trace.bpf.c), as tables: a new architecture adds
 * its own, not a copy of the decoder.
 *   SHM_SYSCALLS(X): X(ABI, syscall number, operation, carrier), every
 *       shared-memory syscall of every ABI (for ipc() the operation is
 *       read from its argument 0, and the one given here is unused);
 *   syscall_nr(regs) and syscall_args(arg, regs, abi, at_exit): the
 *       number and the six arguments from the registers the syscall entry
 *       saved, 32-bit ABIs' arguments truncated to 32 bits;
 *   current_abi(): which ABI the current task's syscall came through. */
#ifndef SHMGET_SYSCALL_ABI_H
#define SHMGET_SYSCALL_ABI_H

#if defined(__TARGET_ARCH_x86)

/* arch/x86/entry/syscalls/syscall_{64,32}.tbl */
#define SHM_SYSCALLS(X)					\
	X(ABI_X86_64, 29, OP_SHMGET, CALL_DIRECT)		\
	X(ABI_X86_64, 30, OP_SHMAT, CALL_DIRECT)		\
	X(ABI_X86_64, 31, OP_SHMCTL, CALL_DIRECT)		\
	X(ABI_X86_64, 67, OP_SHMDT, CALL_DIRECT)		\
	X(ABI_IA32, 395, OP_SHMGET, CALL_DIRECT)		\
	X(ABI_IA32, 396, OP_SHMCTL, CALL_DIRECT)		\
	X(ABI_IA32, 397, OP_SHMAT, CALL_DIRECT)		\
	X(ABI_IA32, 398, OP_SHMDT, CALL_DIRECT)		\
	X(ABI_IA32, 117, OP_SHMGET, CALL_IPC)

/* arch/x86/include/asm/thread_info.h: set while a task runs a 32-bit syscall */
#define TS_COMPAT 0x0002

static __always_inline long syscall_nr(const struct pt_regs *regs)
{
	return regs->orig_ax;
}

/* x86_64: di, si, dx, r10, r8, r9; ia32: bx, cx, dx, si, di, bp. The
 * return value goes to ax, which holds no argument: the same at entry and
 * at exit. */
static __always_inline void syscall_args(__u64 arg[6], const struct pt_regs *regs,
					 enum shm_abi abi, bool at_exit)
{
	if (abi == ABI_X86_64) {
		arg[0] = regs->di;
		arg[1] = regs->si;
		arg[2] = regs->dx;
		arg[3] = regs->r10;
		arg[4] = regs->r8;
		arg[5] = regs->r9;
	} else {
		arg[0] = (__u32)regs->bx;
		arg[1] = (__u32)regs->cx;
		arg[2] = (__u32)regs->dx;
		arg[3] = (__u32)regs->si;
		arg[4] = (__u32)regs->di;
		arg[5] = (__u32)regs->bp;
	}
}

/* Which ABI the current syscall came through (the same number means
 * another call in the other table: x86_64 117 is setresuid, ia32 29 is
 * pause). Needs HAVE_TASK_BTF from the includer. */
static __always_inline enum shm_abi current_abi(void)
{
	__u32 status;

	if (HAVE_TASK_BTF)
		status = bpf_get_current_task_btf()->thread_info.status;
	else
		status = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(),
				       thread_info.status);
	return status & TS_COMPAT ? ABI_IA32 : ABI_X86_64;
}

#else
#error "no syscall ABI tables for this architecture (src/bpf/syscall_abi.h)"
#endif

#endif /* SHMGET_SYSCALL_ABI_H */
