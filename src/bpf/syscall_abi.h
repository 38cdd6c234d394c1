/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What an architecture's system call ABIs look like to the decoder
 * (decode_call in shmget_trace.bpf.c), as tables: a new architecture adds
 * its own, not a copy of the decoder.
 *   SHM_SYSCALLS(X): X(ABI, syscall number, operation, carrier), every
 *       shared-memory syscall of every ABI (for ipc() the operation is
 *       read from its argument 0, and the one given here is unused);
 *   syscall_nr(regs) and syscall_args(arg, regs, abi, at_exit): the
 *       number, as the kernel dispatched by it, and the six arguments from
 *       the registers the syscall entry saved, 32-bit ABIs' arguments
 *       truncated to 32 bits;
 *   syscall_abi(regs, nr, abi): the ABI of a call with that number, made
 *       by a task in `abi` (a native task's number can select another
 *       table; on arm64 the saved registers tell);
 *   current_abi(): which ABI the current task's syscall came through;
 *   syscall_ret(args, ret): the return value as the call's own function
 *       returned it, from the value that raw_syscalls:sys_exit gives. */
#ifndef SHMGET_SYSCALL_ABI_H
#define SHMGET_SYSCALL_ABI_H

#if defined(__TARGET_ARCH_x86)

/* arch/x86/entry/syscalls/syscall_{64,32}.tbl */
#define SHM_SYSCALLS(X)					\
	X(ABI_X86_64, 29, OP_SHMGET, CALL_DIRECT)		\
	X(ABI_X86_64, 30, OP_SHMAT, CALL_DIRECT)		\
	X(ABI_X86_64, 31, OP_SHMCTL, CALL_DIRECT)		\
	X(ABI_X86_64, 67, OP_SHMDT, CALL_DIRECT)		\
	X(ABI_X32, (X32_SYSCALL_BIT | 29), OP_SHMGET, CALL_DIRECT) \
	X(ABI_X32, (X32_SYSCALL_BIT | 30), OP_SHMAT, CALL_DIRECT) \
	X(ABI_X32, (X32_SYSCALL_BIT | 31), OP_SHMCTL, CALL_DIRECT) \
	X(ABI_X32, (X32_SYSCALL_BIT | 67), OP_SHMDT, CALL_DIRECT) \
	X(ABI_IA32, 395, OP_SHMGET, CALL_DIRECT)		\
	X(ABI_IA32, 396, OP_SHMCTL, CALL_DIRECT)		\
	X(ABI_IA32, 397, OP_SHMAT, CALL_DIRECT)		\
	X(ABI_IA32, 398, OP_SHMDT, CALL_DIRECT)		\
	X(ABI_IA32, 117, OP_SHMGET, CALL_IPC)

/* arch/x86/include/uapi/asm/unistd.h: an x32 syscall is its number in the
 * x32 table with this bit set. The table's shared-memory calls are the
 * x86_64 ones ("common" in syscall_64.tbl): the same __x64_sys_* functions
 * and argument registers. Kernels without CONFIG_X86_X32_ABI fail such a
 * call with ENOSYS before any shared-memory function runs. */
#define X32_SYSCALL_BIT 0x40000000

/* arch/x86/include/asm/thread_info.h: set while a task runs a 32-bit syscall */
#define TS_COMPAT 0x0002

/* The number the kernel dispatched by: the low 32 bits of orig_ax (the
 * user's rax), whatever the high ones hold.
 *   6.x: do_syscall_64(regs, int nr) looks the number up as an unsigned
 *     int (do_syscall_x64, do_syscall_x32); ia32 entries always did.
 *   5.10: do_syscall_64(unsigned long nr, regs) used all 64 bits, so a
 *     number with high bits set failed with ENOSYS, unless the task had
 *     syscall-entry work (ptrace, seccomp, audit, or a syscall tracepoint
 *     attached anywhere, which sets TIF_SYSCALL_TRACEPOINT on every task):
 *     then syscall_trace_enter() took the number from syscall_get_nr(),
 *     an int, and the call ran by its low 32 bits.
 * Each mode sees only calls that ran by the low 32 bits: kprobe and fentry
 * hook functions that such calls reach (a call that failed with ENOSYS
 * reaches none); tracepoint mode's own sys_exit program makes every task
 * take the int path on 5.10, and a call that failed with ENOSYS is
 * skipped there (no shared-memory function returns ENOSYS). */
static __always_inline long syscall_nr(const struct pt_regs *regs)
{
	return (__u32)regs->orig_ax;
}

/* A native task's number with the x32 bit comes through the x32 table. */
static __always_inline enum shm_abi syscall_abi(const struct pt_regs *regs, long nr,
					       enum shm_abi abi)
{
	if (abi == ABI_X86_64 && (nr & X32_SYSCALL_BIT))
		return ABI_X32;
	return abi;
}

/* x86_64 and x32: di, si, dx, r10, r8, r9; ia32: bx, cx, dx, si, di, bp. The
 * return value goes to ax, which holds no argument: the same at entry and
 * at exit. */
static __always_inline void syscall_args(__u64 arg[6], const struct pt_regs *regs,
					 enum shm_abi abi, bool at_exit)
{
	if (abi != ABI_IA32) {
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

static __always_inline long syscall_ret(const struct shm_args *args, long ret)
{
	return ret;
}

#elif defined(__TARGET_ARCH_arm64)

/* include/uapi/asm-generic/unistd.h (arm64's own table) and, for AArch32
 * (EABI) callers, arch/arm64/include/asm/unistd32.h. AArch32 has no ipc():
 * 117 is OABI only, and arm64 fails it with ENOSYS. */
#define SHM_SYSCALLS(X)					\
	X(ABI_AARCH64, 194, OP_SHMGET, CALL_DIRECT)		\
	X(ABI_AARCH64, 195, OP_SHMCTL, CALL_DIRECT)		\
	X(ABI_AARCH64, 196, OP_SHMAT, CALL_DIRECT)		\
	X(ABI_AARCH64, 197, OP_SHMDT, CALL_DIRECT)		\
	X(ABI_ARM, 305, OP_SHMAT, CALL_DIRECT)			\
	X(ABI_ARM, 306, OP_SHMDT, CALL_DIRECT)			\
	X(ABI_ARM, 307, OP_SHMGET, CALL_DIRECT)			\
	X(ABI_ARM, 308, OP_SHMCTL, CALL_DIRECT)

/* arch/arm64/include/uapi/asm/ptrace.h: set in the saved user pstate of a
 * task that runs in AArch32 state. */
#define PSR_MODE32_BIT 0x10

/* Both ABIs: the number in syscallno, as el0_svc_common stored it. */
static __always_inline long syscall_nr(const struct pt_regs *regs)
{
	return regs->syscallno;
}

/* The caller's execution state, from the pstate it trapped with: exact for
 * every call, and independent of the kernel's thread flag numbering
 * (TIF_32BIT). The attach point cannot tell: AArch32 shmget and shmdt run
 * the native functions. */
static __always_inline enum shm_abi syscall_abi(const struct pt_regs *regs, long nr,
					       enum shm_abi abi)
{
	return regs->pstate & PSR_MODE32_BIT ? ABI_ARM : ABI_AARCH64;
}

/* x0-x5 for both ABIs. At exit x0 holds the return value already: the
 * first argument is the copy the entry kept in orig_x0. AArch32 arguments
 * are 32-bit. */
static __always_inline void syscall_args(__u64 arg[6], const struct pt_regs *regs,
					 enum shm_abi abi, bool at_exit)
{
	arg[0] = at_exit ? regs->orig_x0 : regs->regs[0];
	arg[1] = regs->regs[1];
	arg[2] = regs->regs[2];
	arg[3] = regs->regs[3];
	arg[4] = regs->regs[4];
	arg[5] = regs->regs[5];
	if (abi == ABI_ARM) {
#pragma unroll
		for (int i = 0; i < 6; i++)
			arg[i] = (__u32)arg[i];
	}
}

/* syscall_abi reads the registers; this is its placeholder for callers
 * that have no ABI of their own to offer (tracepoint mode). */
static __always_inline enum shm_abi current_abi(void)
{
	return ABI_AARCH64;
}

/* AArch32 results are 32-bit: sys_exit sees them sign-extended
 * (syscall_get_return_value), the functions return them zero-extended
 * (compat shmat's address, 0x80000000 and up). Below the errno range a
 * value can only be such a sign-extended one. */
static __always_inline long syscall_ret(const struct shm_args *args, long ret)
{
	if (args->abi == ABI_ARM && ret < -4095)
		return (__u32)ret;
	return ret;
}

#else
#error "no syscall ABI tables for this architecture (src/bpf/syscall_abi.h)"
#endif

#endif /* SHMGET_SYSCALL_ABI_H */
