// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Every System V shmget on the host, whichever way it enters the kernel.
 *
 * Three attach modes read the arguments differently and share everything
 * else: the filters (wanted), the per-thread pairing of entry and return
 * (stash/unstash) and the one function that writes an event (emit).
 *   kprobe:     k(ret)probes on the x86_64 and ia32 shmget entries and the
 *               ia32 ipc() entry;
 *   fentry:     fexit on the same three functions (arguments and return
 *               value in one call, no pairing);
 *   tracepoint: raw_syscalls:sys_exit (tp_btf), for all three paths at
 *               once, arguments read from the saved user registers.
 * Userspace turns off (autoload) the programs of the modes it does not use.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "shmget_trace.h"

/* include/uapi/linux/ipc.h: the ipc() call number of shmget; the high 16 bits
 * of the call word carry a version that shmget ignores. */
#define IPCCALL_SHMGET 23
/* arch/x86/entry/syscalls/syscall_{64,32}.tbl */
#define X64_NR_SHMGET 29
#define IA32_NR_IPC 117
#define IA32_NR_SHMGET 395
/* arch/x86/include/asm/thread_info.h: set while a task runs a 32-bit syscall */
#define TS_COMPAT 0x0002

/* Filters, set by userspace before load; 0/false means "no filter". */
const volatile __u32 filter_pid = 0;
const volatile __u32 filter_tid = 0;
const volatile bool filter_uid_on = false;
const volatile __u32 filter_uid = 0;
const volatile bool filter_key_on = false;
const volatile __s32 filter_key = 0;
const volatile bool filter_comm_on = false;
const volatile char filter_comm[TASK_COMM_LEN] = {};
const volatile bool failed_only = false;
/* --cgroup: the cgroup (or one below it) is in slot 0 of cgroup_filter */
const volatile bool filter_cgroup_on = false;
/* Wake the reader only once this many bytes wait in the ring buffer (it
 * polls on a timer for the rest); 0 wakes it for every event it has not
 * seen. A wakeup is an interrupt on the traced thread's CPU, which
 * dominates the cost of a flood when paid per event. (Waking only when the
 * mark is crossed was tried: under load the reader then missed wakeups and
 * the buffer overflowed.) */
const volatile __u64 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* userspace sets the real size */
} events SEC(".maps");

/* Arguments seen at entry, keyed by pid_tgid, until the return hook. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct shm_args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* Events dropped in the kernel, per reason; per-CPU so that a flood does not
 * contend on one counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Unused at run time: puts struct shm_event into the object's BTF, so the
 * skeleton generates its Rust type. */
struct shm_event shm_event_btf_anchor = {};

static __always_inline void count_lost(__u32 reason)
{
	__u64 *count = bpf_map_lookup_elem(&lost, &reason);

	if (count)
		*count += 1;
}

static __always_inline bool comm_matches(void)
{
	char comm[TASK_COMM_LEN];

	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != filter_comm[i])
			return false;
		if (comm[i] == '\0')
			break;
	}
	return true;
}

static __always_inline bool wanted(__s32 key)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return false;
	if (filter_tid && (__u32)pid_tgid != filter_tid)
		return false;
	if (filter_uid_on && (__u32)bpf_get_current_uid_gid() != filter_uid)
		return false;
	if (filter_key_on && key != filter_key)
		return false;
	if (filter_comm_on && !comm_matches())
		return false;
	if (filter_cgroup_on && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	return true;
}

static __always_inline __u64 submit_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* The BTF-typed current task (5.11+) reads with plain loads; older kernels
 * get the helper-based reads. The test is resolved at load time. */
#define HAVE_TASK_BTF bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)

static __always_inline __u32 current_ppid(void)
{
	if (HAVE_TASK_BTF)
		return bpf_get_current_task_btf()->real_parent->tgid;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), real_parent, tgid);
}

/* The pid namespace is the one the task's children get: its own, unless it
 * called unshare(CLONE_NEWPID) and has not forked since (as Tracee reads it). */
static __always_inline void current_namespaces(struct shm_event *event)
{
	struct task_struct *task;

	if (HAVE_TASK_BTF) {
		task = bpf_get_current_task_btf();
		event->pidns = task->nsproxy->pid_ns_for_children->ns.inum;
		event->mntns = task->nsproxy->mnt_ns->ns.inum;
		return;
	}
	task = (struct task_struct *)bpf_get_current_task();
	event->pidns = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
	event->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* include/linux/ipc_namespace.h: ids[] of shared memory */
#define IPC_SHM_IDS 2

/* ipc/util.h: an ipc id is seq * IPCMNI + index; IPCMNI is 2^15, or 2^24
 * with the ipcmni_extend boot option. */
#define IPCMNI_IDX_MASK ((1 << 15) - 1)
#define IPCMNI_EXT_IDX_MASK ((1 << 24) - 1)
/* Levels of an xarray holding 24-bit indexes, with 4-bit chunks at least. */
#define XA_MAX_LEVELS 6

static __always_inline bool xa_is_node(const void *entry)
{
	return ((unsigned long)entry & 3) == 2 && (unsigned long)entry > 4096;
}

/* idr_find() on the namespace's shm ids, as xa_load() walks an xarray. No
 * lock is held: a segment removed meanwhile reads as absent or as another
 * id, which the caller checks. */
static __always_inline struct kern_ipc_perm *shm_idr_find(struct ipc_namespace *ns,
							 unsigned long index)
{
	const unsigned long chunk = bpf_core_field_size(struct xa_node, slots) / sizeof(void *);
	void *entry = BPF_CORE_READ(ns, ids[IPC_SHM_IDS].ipcs_idr.idr_rt.xa_head);
	struct xa_node *node;
	unsigned char shift;

	if (!xa_is_node(entry))
		return index == 0 && !((unsigned long)entry & 3) ? entry : NULL;
	node = (struct xa_node *)((unsigned long)entry - 2);
	if ((index >> BPF_CORE_READ(node, shift)) >= chunk)
		return NULL;
	for (int level = 0; level < XA_MAX_LEVELS; level++) {
		shift = BPF_CORE_READ(node, shift);
		bpf_probe_read_kernel(&entry, sizeof(entry),
				      &node->slots[(index >> shift) & (chunk - 1)]);
		if (!xa_is_node(entry))
			return ((unsigned long)entry & 3) ? NULL : entry;
		node = (struct xa_node *)((unsigned long)entry - 2);
	}
	return NULL;
}

/* Owner and creator of the segment a successful shmget returned, as they
 * are at return: exact, where reading /proc/sysvipc/shm later would race
 * with the segment's removal. */
static __always_inline void read_segment(struct shm_event *event, __s32 id)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ipc_namespace *ns = BPF_CORE_READ(task, nsproxy, ipc_ns);
	struct kern_ipc_perm *perm;
	struct shmid_kernel *shp;

	event->newest_idx = bpf_core_field_exists(struct ipc_ids, last_idx)
		? BPF_CORE_READ(ns, ids[IPC_SHM_IDS].last_idx) : -1;
	perm = shm_idr_find(ns, id & IPCMNI_IDX_MASK);
	if (!perm || BPF_CORE_READ(perm, id) != id)
		perm = shm_idr_find(ns, id & IPCMNI_EXT_IDX_MASK);
	if (!perm || BPF_CORE_READ(perm, id) != id || BPF_CORE_READ(perm, deleted))
		return;
	shp = (struct shmid_kernel *)((void *)perm -
				      bpf_core_field_offset(struct shmid_kernel, shm_perm));
	event->seg_found = 1;
	event->seg_uid = BPF_CORE_READ(perm, uid.val);
	event->seg_cuid = BPF_CORE_READ(perm, cuid.val);
	event->seg_cpid = BPF_CORE_READ(shp, shm_cprid, numbers[0].nr);
}

/* Copies the name as it is, without bpf_get_current_comm's string scan;
 * bytes after the NUL may be stale, and userspace stops at the NUL. */
static __always_inline void current_comm(char comm[TASK_COMM_LEN])
{
	if (HAVE_TASK_BTF)
		bpf_probe_read_kernel(comm, TASK_COMM_LEN, bpf_get_current_task_btf()->comm);
	else
		bpf_get_current_comm(comm, TASK_COMM_LEN);
}

static __always_inline bool in_compat_syscall(void)
{
	__u32 status;

	if (HAVE_TASK_BTF)
		status = bpf_get_current_task_btf()->thread_info.status;
	else
		status = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(),
				       thread_info.status);
	return status & TS_COMPAT;
}

static __always_inline int emit(const struct shm_args *args, long ret)
{
	struct shm_event *event;
	__u64 pid_tgid, uid_gid;

	if (failed_only && ret >= 0)
		return 0;
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count_lost(LOST_RINGBUF_FULL);
		return 0;
	}
	pid_tgid = bpf_get_current_pid_tgid();
	uid_gid = bpf_get_current_uid_gid();

	event->boot_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->ret = ret;
	event->args = *args;
	event->pid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->ppid = current_ppid();
	event->uid = (__u32)uid_gid;
	event->gid = uid_gid >> 32;
	current_namespaces(event);
	event->newest_idx = -1;
	event->seg_found = 0;
	if (ret >= 0)
		read_segment(event, ret);
	current_comm(event->comm);
	bpf_ringbuf_submit(event, submit_flags());
	return 0;
}

/* Entry half of a pair: keep the arguments until the call returns. */
static __always_inline int stash(const struct shm_args *args)
{
	__u64 pid_tgid;

	if (!wanted(args->key))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&inflight, &pid_tgid, args, BPF_ANY))
		count_lost(LOST_UNPAIRED);
	return 0;
}

/* Return half of a pair; nothing stashed means filtered out at entry. */
static __always_inline int unstash(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct shm_args *args;

	args = bpf_map_lookup_elem(&inflight, &pid_tgid);
	if (!args)
		return 0;
	emit(args, ret);
	bpf_map_delete_elem(&inflight, &pid_tgid);
	return 0;
}

/* Arguments and return value at once (fexit, sys_exit). */
static __always_inline int complete(const struct shm_args *args, long ret)
{
	if (!wanted(args->key))
		return 0;
	return emit(args, ret);
}


/* Register conventions, from the user registers the syscall entry saved
 * (read directly: callers pass a trusted BTF pointer or a stack copy):
 *   x86_64 shmget:  di=key si=size dx=shmflg
 *   ia32 shmget:    bx=key cx=size dx=shmflg
 *   ia32 ipc():     bx=call cx=key dx=size si=shmflg
 * ia32 sizes are 32 bits wide. Each reader returns false for an ipc() call
 * that is not SHMGET. */
static __always_inline void x64_shmget_args(struct shm_args *args, const struct pt_regs *regs)
{
	args->key = regs->di;
	args->size = regs->si;
	args->shmflg = regs->dx;
	args->abi = ABI_X86_64;
	args->call = CALL_SHMGET;
}

static __always_inline void ia32_shmget_args(struct shm_args *args, const struct pt_regs *regs)
{
	args->key = regs->bx;
	args->size = (__u32)regs->cx;
	args->shmflg = regs->dx;
	args->abi = ABI_IA32;
	args->call = CALL_SHMGET;
}

static __always_inline bool ia32_ipc_args(struct shm_args *args, const struct pt_regs *regs)
{
	if ((regs->bx & 0xffff) != IPCCALL_SHMGET)
		return false;
	args->key = regs->cx;
	args->size = (__u32)regs->dx;
	args->shmflg = regs->si;
	args->abi = ABI_IA32;
	args->call = CALL_IPC;
	return true;
}

/* ---- kprobe mode ---- */

SEC("ksyscall/shmget")
int BPF_KSYSCALL(kprobe_x64_shmget, int key, size_t size, int shmflg)
{
	struct shm_args args = {
		.size = size, .key = key, .shmflg = shmflg,
		.abi = ABI_X86_64, .call = CALL_SHMGET,
	};

	return stash(&args);
}

SEC("kretsyscall/shmget")
int BPF_KRETPROBE(kretprobe_x64_shmget, long ret)
{
	return unstash(ret);
}

SEC("kprobe/__ia32_sys_shmget")
int BPF_KPROBE(kprobe_ia32_shmget, const struct pt_regs *regs)
{
	struct shm_args args = {};
	struct pt_regs user_regs;

	bpf_probe_read_kernel(&user_regs, sizeof(user_regs), regs);
	ia32_shmget_args(&args, &user_regs);
	return stash(&args);
}

SEC("kretprobe/__ia32_sys_shmget")
int BPF_KRETPROBE(kretprobe_ia32_shmget, long ret)
{
	return unstash(ret);
}

SEC("kprobe/__ia32_compat_sys_ipc")
int BPF_KPROBE(kprobe_ia32_ipc, const struct pt_regs *regs)
{
	struct shm_args args = {};
	struct pt_regs user_regs;

	bpf_probe_read_kernel(&user_regs, sizeof(user_regs), regs);
	if (!ia32_ipc_args(&args, &user_regs))
		return 0;
	return stash(&args);
}

SEC("kretprobe/__ia32_compat_sys_ipc")
int BPF_KRETPROBE(kretprobe_ia32_ipc, long ret)
{
	return unstash(ret);
}

/* ---- fentry mode ----
 * The arguments come from the user registers the syscall entry saved,
 * task_pt_regs(current), which is what the wrappers get as their one
 * argument. Not from that argument itself: where the kernel's BTF types it
 * as a pointer to a forward-declared struct pt_regs (Debian's 5.10), the
 * verifier refuses any read of it ("arg0 type FWD is not a struct").
 * Only the return value, ctx[1], is read from the context. */

/* x86_64, include/asm/page_64_types.h: 16 KiB without KASAN */
#define FALLBACK_THREAD_SIZE (4096 << 2)

/* x86_64: syscall numbers of x32 callers carry this bit */
#define X32_SYSCALL_BIT 0x40000000

static __always_inline const struct pt_regs *syscall_regs(struct pt_regs *copy, long nr)
{
	const struct pt_regs *regs;
	struct task_struct *task;
	void *stack;

	/* 5.15+: the helper knows the stack layout (FRED pads it on 6.9+). */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		regs = (const struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	} else {
		/* Older kernels: pt_regs end the thread's kernel stack, no padding. */
		task = (struct task_struct *)bpf_get_current_task();
		stack = BPF_CORE_READ(task, stack);
		bpf_probe_read_kernel(copy, sizeof(*copy),
				      stack + FALLBACK_THREAD_SIZE - bpf_core_type_size(struct pt_regs));
		regs = copy;
	}
	/* A kernel with another stack size (KASAN doubles it) would give other
	 * registers: the syscall number tells. Count, never print garbage. */
	if ((regs->orig_ax & ~X32_SYSCALL_BIT) != nr) {
		count_lost(LOST_UNREADABLE);
		return NULL;
	}
	return regs;
}

#define FEXIT_RET(ctx) ((long)(ctx)[1]) /* after the wrapper's one argument */

SEC("fexit/__x64_sys_shmget")
int fexit_x64_shmget(unsigned long long *ctx)
{
	const struct pt_regs *regs;
	struct shm_args args = {};
	struct pt_regs copy;

	regs = syscall_regs(&copy, X64_NR_SHMGET);
	if (!regs)
		return 0;
	x64_shmget_args(&args, regs);
	return complete(&args, FEXIT_RET(ctx));
}

SEC("fexit/__ia32_sys_shmget")
int fexit_ia32_shmget(unsigned long long *ctx)
{
	const struct pt_regs *regs;
	struct shm_args args = {};
	struct pt_regs copy;

	regs = syscall_regs(&copy, IA32_NR_SHMGET);
	if (!regs)
		return 0;
	ia32_shmget_args(&args, regs);
	return complete(&args, FEXIT_RET(ctx));
}

SEC("fexit/__ia32_compat_sys_ipc")
int fexit_ia32_ipc(unsigned long long *ctx)
{
	const struct pt_regs *regs;
	struct shm_args args = {};
	struct pt_regs copy;

	regs = syscall_regs(&copy, IA32_NR_IPC);
	if (!regs || !ia32_ipc_args(&args, regs))
		return 0;
	return complete(&args, FEXIT_RET(ctx));
}

/* ---- tracepoint mode ----
 * One program on raw_syscalls:sys_exit, through BTF. At exit the user
 * registers that the entry saved still hold the call's arguments (the
 * kernel writes only the return value, to ax), so arguments and result come
 * together: no pairing map, and no tracefs. The syscalls:sys_*_shmget
 * tracepoints would spare the host's other syscalls, but they never fire
 * for compat calls. This runs for every syscall on the host, so the number
 * is tested first, read directly from the trusted regs pointer. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tp_sys_exit, struct pt_regs *regs, long ret)
{
	struct shm_args args = {};
	long id = regs->orig_ax;

	if (id == X64_NR_SHMGET) {
		if (in_compat_syscall())
			return 0; /* ia32 syscall 29 is pause */
		x64_shmget_args(&args, regs);
	} else if (id == IA32_NR_SHMGET || id == IA32_NR_IPC) {
		if (!in_compat_syscall())
			return 0; /* x86_64 syscall 117 is setresuid */
		if (id == IA32_NR_SHMGET)
			ia32_shmget_args(&args, regs);
		else if (!ia32_ipc_args(&args, regs))
			return 0;
	} else {
		return 0;
	}
	return complete(&args, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
