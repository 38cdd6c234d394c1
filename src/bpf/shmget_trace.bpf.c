// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Every System V shared-memory call on the host (shmget, and on request
 * shmat, shmdt, shmctl), whichever way it enters the kernel: on x86_64 the
 * x86_64 syscalls, the ia32 syscalls and the ia32 ipc() multiplexer; on
 * arm64 the arm64 syscalls and the AArch32 ones (syscall_abi.h,
 * entry_points.h: one build per architecture).
 *
 * Every mode finds the user registers that the syscall entry saved and
 * decodes them the same way (decode_call); they differ only in where they
 * find them and when they see the return value:
 *   kprobe:     k(ret)probes on the syscalls' entry functions, entry and
 *               return paired per thread (stash/unstash);
 *   fentry:     fexit on the same functions (registers and return value in
 *               one call, no pairing);
 *   tracepoint: raw_syscalls:sys_exit (tp_btf), one program for all.
 * All share the filters (wanted) and the one function that writes an event
 * (emit). Userspace turns off (autoload) the programs it does not use.
 *
 * Tables, each written once: entry_points.h lists the kernel functions
 * (expanded here into the kprobe, kretprobe and fexit programs, and read
 * back by userspace from the object); syscall_abi.h has each ABI's syscall
 * numbers and argument registers; SHM_FIELDS below says which argument
 * holds which field, by operation and carrier.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "shmget_trace.h"
#include "entry_points.h"

/* include/uapi/linux/ipc.h: ipc() call numbers; the high 16 bits of the
 * call word carry a version. */
#define IPCCALL_SHMAT 21
#define IPCCALL_SHMDT 22
#define IPCCALL_SHMGET 23
#define IPCCALL_SHMCTL 24

#define EFAULT 14
#define ENOSYS 38

/* -p and -u take at most this many ids each (MAX_FILTER_IDS in cli.rs):
 * each is compared in a loop with this bound. */
#define MAX_FILTER_IDS 8
/* --errno: a bitmap of the errnos below 64 times this (MAX_FILTER_ERRNO in
 * cli.rs); Linux's end at 133. */
#define ERRNO_FILTER_WORDS 4

/* Filters, set by userspace before load; 0/false means "no filter". */
const volatile __u32 filter_pid_count = 0;
const volatile __u32 filter_pids[MAX_FILTER_IDS] = {};
const volatile __u32 filter_tid = 0;
const volatile __u32 filter_uid_count = 0;
const volatile __u32 filter_uids[MAX_FILTER_IDS] = {};
const volatile bool filter_key_on = false;
const volatile __s32 filter_key = 0;
/* -n: filter_comm anywhere in the comm, as bcc's tools match names;
 * --name-exact: the whole comm. */
const volatile bool filter_comm_on = false;
const volatile bool filter_comm_exact = false;
const volatile __u32 filter_comm_len = 0;
const volatile char filter_comm[TASK_COMM_LEN] = {};
const volatile bool failed_only = false;
/* --errno: bit errno % 64 of word errno / 64 */
const volatile bool filter_errno_on = false;
const volatile __u64 filter_errnos[ERRNO_FILTER_WORDS] = {};
/* --events: bit 1 << OP_* per operation */
const volatile __u32 traced_ops = 1 << OP_SHMGET;
/* --cgroup: the cgroup (or one below it) is in slot 0 of cgroup_filter */
const volatile bool filter_cgroup_on = false;
/* Wake the reader only once this many bytes wait in the ring buffer (it
 * polls on a timer for the rest); 0 leaves it to the kernel, which wakes it
 * for the first event it has not seen. A wakeup is an interrupt on the
 * traced thread's CPU, which dominates the cost of a flood when paid per
 * event. (Waking only when the mark is crossed was tried: concurrent
 * producers can all step over it, and the buffer overflowed.) */
const volatile __u64 wakeup_bytes = 0;
/* The kernel's BTF id of struct task_struct, for bpf_rdonly_cast; 0 when
 * unknown. (Userspace finds it: CO-RE's bpf_core_type_id_kernel would give
 * the id in the cut-down BTF that userspace hands libbpf for relocations.) */
const volatile __u32 task_struct_btf_id = 0;
/* The bits of an ipc id that index the id tree (ipc/util.h): 15, or 24
 * with the ipcmni_extend boot option, which userspace reads. One lookup
 * rather than one of each: each is a loop the verifier walks. */
const volatile __u32 ipc_idx_mask = (1 << 15) - 1;
/* Set by the reader while it sleeps (epoll_wait). Awake, it finds events
 * itself, and a wakeup would only cost an interrupt: above the mark that
 * would be every event until the reader has made room. The producer that
 * wakes it lowers the flag, so that one wakeup serves one sleep: a reader
 * that does not run after it (stopped, starved of CPU) costs the traced
 * threads no further wakeups until it sleeps again. (A plain store: BPF
 * atomic exchange needs 5.12 and a v3 BPF target. Producers on other CPUs
 * in the instant before the store is seen may wake it too: at most one
 * each, not one per event.) A producer that misses the reader falling
 * asleep is followed by one that sees it, or by the reader's timer. */
volatile __u32 reader_asleep = 0;

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

/* ipc(SHMAT) returns 0 and writes the attach address to the caller's
 * memory, where another thread can change it before the return hook reads
 * it. kprobe and fentry modes take it from the kernel instead: do_shmat,
 * which every shmat runs, stores it through its raddr argument (a kernel
 * pointer) before it returns. Its return hook keeps it here per thread
 * (success only; a failure removes the entry, so an entry found at the
 * ipc() return is that call's), for the ipc() return to take. Entries of
 * direct shmat calls, which never take them, are overwritten by the
 * thread's next do_shmat or evicted (LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} shmat_addr SEC(".maps");

/* kprobe mode: do_shmat's raddr, from its entry to its return. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} shmat_raddr SEC(".maps");

/* Tracepoint mode: threads whose shared-memory syscall passed ptrace and
 * seccomp, from sys_enter (which fires only then) to sys_exit, keyed by tid,
 * the number as the value. Only for threads that ptrace or seccomp could
 * have skipped a call of (sys_exit fires for a skipped call too, with its
 * number and the errno the filter chose). Allocated per entry: nothing to
 * make at start-up, and most hosts never use it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} dispatched SEC(".maps");

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
/* The same for the loss reasons, which userspace reads the counters by. */
enum lost_reason lost_reason_btf_anchor = LOST_RINGBUF_FULL;
/* And a failure's event with its details, and what they hold. */
struct shm_failure_event shm_failure_event_btf_anchor = {};
enum shm_why shm_why_btf_anchor = WHY_NS;
/* And for what userspace reads of folds and losses. */
struct shm_fold shm_fold_btf_anchor = {};
struct fold_slot fold_slot_btf_anchor = {};
struct process_loss process_loss_btf_anchor = {};
struct share_drops share_drops_btf_anchor = {};
enum fold_layout fold_layout_btf_anchor = FOLD_SLOTS;

/* Events lost, per process (the first LOST_PROCESSES to lose any; an
 * evicted one leaves the totals in `lost` exact). */
#define LOST_PROCESSES 1024
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LOST_PROCESSES);
	__type(key, __u32);
	__type(value, struct process_loss);
} lost_by_process SEC(".maps");

/* Each thread's identical calls fold into a slot of its CPU (see
 * shmget_trace.h and fold_join). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FOLD_SLOTS);
	__type(key, __u32);
	__type(value, struct fold_slot);
} fold_slots SEC(".maps");

/* Per CPU, the process whose calls it drops for being over its share
 * (over_share): the calls of a flood that are dropped cost a per-CPU
 * counter, not a lookup in a hash map each. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct share_drops);
} share_drops SEC(".maps");

/* Records each process added in the current spell of pressure
 * (over_share). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct process_share);
} shares SEC(".maps");

/* Pressure: at least this many bytes wait in the ring buffer (userspace
 * sets half its size); 0: never. */
const volatile __u64 pressure_bytes = 0;
/* Records a process may add in one spell of pressure. */
const volatile __u64 share_records = 0;
/* Whether the last producer found the ring buffer under pressure, and how
 * many spells of pressure have ended: written only when that changes, so
 * that producers on many CPUs mostly share the line read-only. (Races end
 * a spell twice at worst: a fresh share a moment early.) */
volatile __u32 under_pressure = 0;
volatile __u32 pressure_spell = 0;
/* Identical calls further apart than this are lines of their own; a run
 * of them gets a line at least this often (userspace sets it). */
const volatile __u64 fold_window_ns = 500000000;

/* A function of its own (a BPF-to-BPF call), off the common path: inlined
 * at each of its sites, its locals overflowed the 512-byte stack of the
 * arm64 fexit programs, which hold a copy of the user registers. */
static __noinline void attribute_loss(__u32 pid, __u64 n)
{
	struct process_loss fresh = { .count = n };
	struct process_loss *loss = bpf_map_lookup_elem(&lost_by_process, &pid);

	if (loss) {
		__sync_fetch_and_add(&loss->count, n);
		return;
	}
	if (pid == bpf_get_current_pid_tgid() >> 32)
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	if (bpf_map_update_elem(&lost_by_process, &pid, &fresh, BPF_NOEXIST)) {
		/* Another CPU made it meanwhile. */
		loss = bpf_map_lookup_elem(&lost_by_process, &pid);
		if (loss)
			__sync_fetch_and_add(&loss->count, n);
	}
}

/* n calls lost for `reason`, in the totals only. */
static __always_inline void count_lost_total(__u32 reason, __u64 n)
{
	__u64 *count = bpf_map_lookup_elem(&lost, &reason);

	if (count)
		*count += n;
}

/* n calls of process pid lost for `reason`. */
static __always_inline void count_lost_calls(__u32 reason, __u32 pid, __u64 n)
{
	count_lost_total(reason, n);
	attribute_loss(pid, n);
}

static __always_inline void count_lost(__u32 reason)
{
	count_lost_calls(reason, bpf_get_current_pid_tgid() >> 32, 1);
}

/* The loops are unrolled: every index is a constant, and the filter's
 * length, read-only data, is known to the verifier, which drops the
 * comparisons past it (5.10's verifier refuses variable stack offsets).
 * A function of its own (a BPF-to-BPF call) rather than inlined: the
 * object holds the unrolled code once, not once per program. */
static __noinline bool comm_matches(void)
{
	char comm[TASK_COMM_LEN];

	bpf_get_current_comm(comm, sizeof(comm));
	if (filter_comm_exact) {
#pragma unroll
		for (int i = 0; i < TASK_COMM_LEN; i++) {
			if (comm[i] != filter_comm[i])
				return false;
			if (comm[i] == '\0')
				break;
		}
		return true;
	}
#pragma unroll
	for (int start = 0; start < TASK_COMM_LEN - 1; start++) {
		bool found = true;

#pragma unroll
		for (int i = 0; start + i < TASK_COMM_LEN - 1; i++) {
			if (i >= filter_comm_len)
				break;
			if (comm[start + i] != filter_comm[i]) {
				found = false;
				break;
			}
		}
		if (found)
			return true;
		if (comm[start] == '\0')
			return false;
	}
	return false;
}

/* -p, -u: at most MAX_FILTER_IDS ids, the first `count` of `ids`. */
static __always_inline bool id_listed(__u32 id, const volatile __u32 *ids, __u32 count)
{
#pragma unroll
	for (int i = 0; i < MAX_FILTER_IDS; i++) {
		if (i >= count)
			return false;
		if (ids[i] == id)
			return true;
	}
	return false;
}

/* --errno: whether a call failed with one of the errnos asked for. */
static __always_inline bool errno_listed(long ret)
{
	__u64 err = -ret;

	if (ret >= 0 || err >= 64 * ERRNO_FILTER_WORDS)
		return false;
	/* A constant index per word, read-only data the verifier knows. */
#pragma unroll
	for (int word = 0; word < ERRNO_FILTER_WORDS; word++) {
		if (err / 64 == word)
			return (filter_errnos[word] >> (err % 64)) & 1;
	}
	return false;
}

static __always_inline bool traced(enum shm_op op)
{
	return traced_ops & (1 << op);
}

/* -k applies to shmget, the one call that has a key. */
static __always_inline bool wanted(const struct shm_args *args)
{
	if (filter_pid_count &&
	    !id_listed(bpf_get_current_pid_tgid() >> 32, filter_pids, filter_pid_count))
		return false;
	if (filter_tid && (__u32)bpf_get_current_pid_tgid() != filter_tid)
		return false;
	if (filter_uid_count &&
	    !id_listed(bpf_get_current_uid_gid(), filter_uids, filter_uid_count))
		return false;
	if (filter_key_on && args->op == OP_SHMGET && args->key != filter_key)
		return false;
	if (filter_comm_on && !comm_matches())
		return false;
	if (filter_cgroup_on && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	return true;
}

/* shmat returns the address. ipc(SHMAT) returns 0 and writes the (32-bit)
 * address where its third argument points; when it cannot (a bad pointer)
 * it returns EFAULT with the segment attached all the same (do_shmat itself
 * never fails with EFAULT). The address is do_shmat's (shmat_addr) where
 * this mode sees do_shmat, else read back from the caller's memory. */
static __always_inline void attach_address(struct shm_event *event, const struct shm_args *args,
					   long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 user_addr = 0;
	__u64 *kernel_addr;

	if (args->call != CALL_IPC) {
		if (ret >= 0) {
			event->attach_addr = ret;
			event->attach_addr_from = ADDR_KERNEL;
		}
		return;
	}
	if (ret < 0 && ret != -EFAULT)
		return;
	kernel_addr = bpf_map_lookup_elem(&shmat_addr, &pid_tgid);
	if (kernel_addr) {
		event->attach_addr = *kernel_addr;
		event->attach_addr_from = ADDR_KERNEL;
		bpf_map_delete_elem(&shmat_addr, &pid_tgid);
		return;
	}
	if (ret < 0) {
		event->attach_addr_from = ADDR_UNKNOWN;
		return;
	}
	bpf_probe_read_user(&user_addr, sizeof(user_addr), (const void *)args->raddr_ptr);
	event->attach_addr = user_addr;
	event->attach_addr_from = ADDR_USER;
}

static __always_inline __u64 submit_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	if (reader_asleep && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes) {
		reader_asleep = 0;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/* The BTF-typed current task (5.11+) reads with plain loads; older kernels
 * get the helper-based reads. The test is resolved at load time. */
#define HAVE_TASK_BTF bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)

/* 6.2+ (a kfunc; libbpf resolves a missing one to NULL, and the test below
 * folds away at load time). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* The current task as a BTF pointer, for plain loads. Where the kernel has
 * bpf_rdonly_cast, an untrusted one: each pointer loaded from the trusted
 * task that bpf_get_current_task_btf gives makes the verifier (6.4+) look
 * up several type names (task_struct__safe_rcu and the like) in the
 * kernel's BTF one by one, which took most of the time the program needed
 * to load (25 of 27 ms here). The loads are the same either way, checked
 * for faults as all loads through BTF pointers in tracing programs are. */
static __always_inline struct task_struct *current_task_btf(void)
{
	if (bpf_ksym_exists(bpf_rdonly_cast) && task_struct_btf_id)
		return bpf_rdonly_cast((void *)bpf_get_current_task(), task_struct_btf_id);
	return bpf_get_current_task_btf();
}

#include "syscall_abi.h"

/* Who made the call: ids, name, cgroup and namespaces of the current task.
 * Where the task is BTF-typed, all are plain loads from it: the helpers'
 * calls, RCU sections and id mapping (the initial namespace's, an identity)
 * were a measurable part of an event. The name is copied as it is, without
 * bpf_get_current_comm's string scan: bytes after the NUL may be stale, and
 * userspace stops at the NUL. The pid namespace is the one the task's
 * children get: its own, unless it called unshare(CLONE_NEWPID) and has not
 * forked since (as Tracee reads it). */
static __always_inline void describe_task(struct shm_event *event)
{
	struct task_struct *task;
	__u64 pid_tgid, uid_gid;

	if (HAVE_TASK_BTF) {
		task = current_task_btf();
		event->pid = task->tgid;
		event->tid = task->pid;
		event->ppid = task->real_parent->tgid;
		event->uid = task->cred->uid.val;
		event->gid = task->cred->gid.val;
		event->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
		event->pidns = task->nsproxy->pid_ns_for_children->ns.inum;
		event->mntns = task->nsproxy->mnt_ns->ns.inum;
		event->ipcns = task->nsproxy->ipc_ns->ns.inum;
		((__u64 *)event->comm)[0] = ((const __u64 *)task->comm)[0];
		((__u64 *)event->comm)[1] = ((const __u64 *)task->comm)[1];
		return;
	}
	task = (struct task_struct *)bpf_get_current_task();
	pid_tgid = bpf_get_current_pid_tgid();
	uid_gid = bpf_get_current_uid_gid();
	event->pid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)uid_gid;
	event->gid = uid_gid >> 32;
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->pidns = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
	event->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	event->ipcns = BPF_CORE_READ(task, nsproxy, ipc_ns, ns.inum);
	bpf_get_current_comm(event->comm, TASK_COMM_LEN);
}

/* include/linux/ipc_namespace.h: ids[] of shared memory */
#define IPC_SHM_IDS 2

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

/* The segment with this id, as ipc_obtain_object_check finds it: 0 where
 * there is none (or it is being removed). A global function, of scalars
 * (5.10 allows no other pointer): the verifier walks its loop once per
 * program, not once for every path that reaches it. */
__noinline unsigned long find_id(unsigned long namespace, int id)
{
	struct ipc_namespace *ns = (struct ipc_namespace *)namespace;
	struct kern_ipc_perm *perm;

	perm = shm_idr_find(ns, id & ipc_idx_mask);
	if (!perm || BPF_CORE_READ(perm, id) != id || BPF_CORE_READ(perm, deleted))
		return 0;
	return (unsigned long)perm;
}

static __always_inline struct shmid_kernel *shm_of(struct kern_ipc_perm *perm)
{
	return (struct shmid_kernel *)((void *)perm -
				       bpf_core_field_offset(struct shmid_kernel, shm_perm));
}

/* Owner and creator of the segment a successful shmget returned, as they
 * are at return: exact, where reading /proc/sysvipc/shm later would race
 * with the segment's removal. */
static __always_inline void read_segment(struct shm_event *event, __s32 id)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ipc_namespace *ns = BPF_CORE_READ(task, nsproxy, ipc_ns);
	struct kern_ipc_perm *perm;

	event->newest_idx = bpf_core_field_exists(struct ipc_ids, last_idx)
		? BPF_CORE_READ(ns, ids[IPC_SHM_IDS].last_idx) : -1;
	perm = (struct kern_ipc_perm *)find_id((unsigned long)ns, id);
	if (!perm)
		return;
	event->seg_found = 1;
	event->seg_uid = BPF_CORE_READ(perm, uid.val);
	event->seg_cuid = BPF_CORE_READ(perm, cuid.val);
	event->seg_cpid = BPF_CORE_READ(shm_of(perm), shm_cprid, numbers[0].nr);
}

/* ---- why a call failed ----
 * For the errnos that name some state (needs_details), the event carries a
 * struct shm_failure: the raw numbers the kernel held at return (the
 * caller's ipc namespace's limits and usage, the segment the key or id
 * names, the caller's ids and capabilities); userspace (reason.rs) derives
 * the reason. Other events, successful ones and the common failures that
 * their flags explain (a shmget's ENOENT without IPC_CREAT), stay small and
 * pay nothing for this. */

#define EPERM 1
#define ENOENT 2
#define ENOMEM 12
#define EACCES 13
#define EEXIST 17
#define EINVAL 22
#define ENOSPC 28

/* include/uapi/linux/ipc.h, shm.h, capability.h, resource.h */
#define IPC_STAT 2
#define IPC_64 0x0100
#define SHM_HUGETLB 04000
#define SHM_LOCK 11
#define SHM_UNLOCK 12
#define RLIMIT_MEMLOCK 8
#define CAP_IPC_LOCK 14
#define CAP_IPC_OWNER 15

static __always_inline bool needs_details(const struct shm_args *args, long ret)
{
	__u32 cmd = args->cmd & ~IPC_64;
	long err = -ret;

	if (ret >= 0)
		return false;
	if (args->op == OP_SHMGET)
		return err == EINVAL || err == ENOSPC || err == EEXIST || err == EACCES ||
		       ((err == EPERM || err == ENOMEM) && (args->shmflg & SHM_HUGETLB));
	if (args->op == OP_SHMAT)
		return err == EINVAL || err == EACCES;
	/* shmctl: the commands that name a segment by id (SHM_STAT's is an
	 * index) */
	if (args->op == OP_SHMCTL)
		return (cmd <= IPC_STAT || cmd == SHM_LOCK || cmd == SHM_UNLOCK) &&
		       (err == EINVAL || (err == ENOMEM && cmd == SHM_LOCK));
	return false;
}

/* jhash2() of one 32-bit word (include/linux/jhash.h), the hash the ipc key
 * table (an rhashtable keyed by the 4-byte key, no hash function of its
 * own) puts a key in its bucket by. */
static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> (32 - shift));
}

static __always_inline __u32 jhash_one_word(__u32 key, __u32 seed)
{
	__u32 a, b, c;

	a = b = c = 0xdeadbeef + (1 << 2) + seed;
	a += key;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* Entries of one bucket's chain read at most; the table grows at 3/4 full,
 * so a chain this long is all but impossible: then, and while the table
 * is being resized or is nested (an allocation that fell back under memory
 * pressure), a key not found is reported as not looked up exactly. */
#define KEY_CHAIN_MAX 8

/* A lookup's answer where no segment was found (a segment's address is
 * never this small): whether the lookup saw every segment, or whether
 * there was none to make. */
#define KEY_NOT_FOUND 0
#define KEY_NOT_FOUND_INEXACT 1
#define NOT_LOOKED_UP 2

/* The segment with this key in one table of the namespace's key table (an
 * rhashtable): the bucket of the key's hash, its chain walked (a bucket
 * holds a lock bit, bit 0; a chain ends at a "nulls" marker, odd). A
 * global function, as find_id. */
__noinline unsigned long find_in_table(unsigned long table_address, int key)
{
	struct bucket_table *table = (struct bucket_table *)table_address;
	__u32 bucket = jhash_one_word(key, BPF_CORE_READ(table, hash_rnd)) &
		       (BPF_CORE_READ(table, size) - 1);
	unsigned long entry = 0;

	if (BPF_CORE_READ(table, nest))
		return KEY_NOT_FOUND_INEXACT;
	bpf_probe_read_kernel(&entry, sizeof(entry),
			      (void *)table + bpf_core_field_offset(struct bucket_table, buckets) +
				      bucket * sizeof(void *));
	entry &= ~1UL;
	for (int i = 0; i < KEY_CHAIN_MAX && entry && !(entry & 1); i++) {
		struct kern_ipc_perm *perm = (struct kern_ipc_perm *)(entry -
			bpf_core_field_offset(struct kern_ipc_perm, khtnode));

		if (BPF_CORE_READ(perm, key) == key)
			return (unsigned long)perm;
		bpf_probe_read_kernel(&entry, sizeof(entry),
				      (void *)entry + bpf_core_field_offset(struct rhash_head, next));
	}
	return entry && !(entry & 1) ? KEY_NOT_FOUND_INEXACT : KEY_NOT_FOUND;
}

/* Tables of a key table read at most: the table, and those it is being
 * resized into (each insert goes into the newest; a worker moves the
 * entries over, and may lag a burst of inserts by several tables). */
#define KEY_TABLES_MAX 4

/* The segment with this key, as ipc_findkey finds it: in the key table,
 * and in each table it is being resized into, as the kernel's lookup
 * does. No lock is held: a segment made, removed or moved meanwhile may be
 * seen or not. A table nested (an allocation that fell back under memory
 * pressure), a chain longer than read, or more tables than read: not
 * found, but not exact. */
static __always_inline unsigned long find_key(struct ipc_namespace *ns, int key)
{
	struct bucket_table *table = BPF_CORE_READ(ns, ids[IPC_SHM_IDS].key_ht.tbl);
	unsigned long found = KEY_NOT_FOUND, in_table;

	for (int i = 0; i < KEY_TABLES_MAX && table; i++) {
		in_table = find_in_table((unsigned long)table, key);
		if (in_table > NOT_LOOKED_UP)
			return in_table;
		found |= in_table;
		table = BPF_CORE_READ(table, future_tbl);
	}
	return table ? KEY_NOT_FOUND_INEXACT : found;
}

/* The ids and capabilities permission checks use (ipcperms, hugetlb's
 * can_do_hugetlb_shm), and the memory lock limit. kernel_cap_t is 64 bits
 * in every layout (two u32 words before 6.3). */
static __always_inline void read_cred(struct shm_failure *failure, struct task_struct *task)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);
	__u64 caps = 0;

	failure->why |= WHY_CRED;
	failure->euid = BPF_CORE_READ(cred, euid.val);
	failure->fsgid = BPF_CORE_READ(cred, fsgid.val);
	failure->ngroups = BPF_CORE_READ(cred, group_info, ngroups);
	bpf_core_read(&caps, sizeof(caps), &cred->cap_effective);
	if (caps & (1ULL << CAP_IPC_LOCK))
		failure->why |= WHY_CAP_IPC_LOCK;
	if (caps & (1ULL << CAP_IPC_OWNER))
		failure->why |= WHY_CAP_IPC_OWNER;
	failure->memlock = BPF_CORE_READ(task, signal, rlim[RLIMIT_MEMLOCK].rlim_cur);
}

/* The segment a failure names: its address, or KEY_NOT_FOUND,
 * KEY_NOT_FOUND_INEXACT, NOT_LOOKED_UP. */
static __always_inline unsigned long lookup_failure(const struct shm_args *args, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ipc_namespace *ns = BPF_CORE_READ(task, nsproxy, ipc_ns);
	long err = -ret;

	if (args->op != OP_SHMGET)
		return find_id((unsigned long)ns, args->shmid);
	if (args->key != 0 && (err == EEXIST || err == EINVAL || err == EACCES))
		return find_key(ns, args->key);
	return NOT_LOOKED_UP;
}

/* Every byte of a failure's details written, as of an event (see emit): 0
 * where nothing is read. */
static __always_inline void explain(struct shm_failure *failure, const struct shm_args *args,
				    long ret, unsigned long found)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ipc_namespace *ns = BPF_CORE_READ(task, nsproxy, ipc_ns);
	long err = -ret;

	/* Zeroed whole, then filled: a failure's details are rare, and so
	 * every byte is written without a line per field. */
	__builtin_memset(failure, 0, sizeof(*failure));
	failure->why = WHY_NS;
	failure->shmmax = BPF_CORE_READ(ns, shm_ctlmax);
	failure->shmall = BPF_CORE_READ(ns, shm_ctlall);
	failure->shm_tot = BPF_CORE_READ(ns, shm_tot);
	failure->shmmni = BPF_CORE_READ(ns, shm_ctlmni);
	failure->in_use = BPF_CORE_READ(ns, ids[IPC_SHM_IDS].in_use);
	if (found != NOT_LOOKED_UP)
		failure->why |= WHY_SEARCHED;
	if (found == KEY_NOT_FOUND_INEXACT)
		failure->why |= WHY_INEXACT;
	if (found > NOT_LOOKED_UP) {
		struct kern_ipc_perm *perm = (struct kern_ipc_perm *)found;

		failure->why |= WHY_SEG;
		failure->seg_id = BPF_CORE_READ(perm, id);
		failure->seg_mode = BPF_CORE_READ(perm, mode);
		failure->seg_uid = BPF_CORE_READ(perm, uid.val);
		failure->seg_gid = BPF_CORE_READ(perm, gid.val);
		failure->seg_cuid = BPF_CORE_READ(perm, cuid.val);
		failure->seg_cgid = BPF_CORE_READ(perm, cgid.val);
		failure->seg_cpid = BPF_CORE_READ(shm_of(perm), shm_cprid, numbers[0].nr);
		failure->seg_size = BPF_CORE_READ(shm_of(perm), shm_segsz);
	}
	if (err == EACCES || err == EPERM || err == ENOMEM)
		read_cred(failure, task);
}

/* ---- Folding (shmget_trace.h) ----
 * A call identical to its thread's last one (same call, arguments and
 * result) within fold_window_ns of it is only counted in the slot; every
 * fold_window_ns of a run, the next such call writes a shm_fold record of
 * the calls not yet in a line. A different call, or an identical one after
 * a pause, closes the fold (its record) and starts a new one. */

/* Writes the calls of the slot's fold not yet in a line. */
static __always_inline void fold_flush(struct fold_slot *slot, __u32 cpu_slot)
{
	struct shm_fold *record;
	__u64 from = slot->reported, to = slot->calls;

	if (!slot->fold_id || to <= from)
		return;
	slot->reported = to;
	record = bpf_ringbuf_reserve(&events, sizeof(*record), 0);
	if (!record) {
		count_lost_calls(LOST_RINGBUF_FULL, slot->pid, to - from);
		return;
	}
	record->first_ns = slot->pending_ns;
	record->last_ns = slot->last_ns;
	record->from = from;
	record->to = to;
	record->fold_tag = FOLD_TAG(slot->fold_id, cpu_slot);
	record->reserved = 0;
	bpf_ringbuf_submit(record, submit_flags());
}

static __always_inline bool same_args(const struct shm_args *a, const struct shm_args *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

#pragma unroll
	for (int i = 0; i < sizeof(*a) / sizeof(__u64); i++) {
		if (x[i] != y[i])
			return false;
	}
	return true;
}

/* The clock of a fold's repeats: when the scheduler last updated the
 * caller's run time (at every tick while it runs, and when it is
 * scheduled), read from the task rather than from the TSC, which costs a
 * flood of repeats about 45 ns a call on a VM. It is exact to a tick and
 * runs behind real time by what the CPU spent in interrupts or lost to the
 * hypervisor; each fold's clock_offset is set at its first call, whose time
 * is exact, so a fold drifts only by that. Before 5.11 (no BTF task
 * pointer): the precise clock. */
static __always_inline __u64 fold_clock(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->se.exec_start;
	return bpf_ktime_get_boot_ns();
}

/* Whether this call joins the slot's fold (then it is counted there, and
 * nothing else is to be done for it). The call is compared first: a call
 * that differs (a flood of distinct calls) reads no clock. */
static __always_inline bool fold_join(struct fold_slot *slot, __u32 cpu_slot,
				      const struct shm_args *args, long ret, __u32 tid)
{
	__u64 now;

	if (!slot->fold_id || slot->tid != tid || slot->ret != ret || !same_args(&slot->args, args))
		return false;
	/* Never before the fold's first call: the tick clock runs behind the
	 * precise one by less than a tick, which clock_offset makes up. */
	now = fold_clock() + slot->clock_offset;
	if (now - slot->last_ns >= fold_window_ns)
		return false;
	if (slot->calls == slot->reported)
		slot->pending_ns = now;
	slot->last_ns = now;
	slot->calls += 1;
	if (now - slot->pending_ns >= fold_window_ns)
		fold_flush(slot, cpu_slot);
	return true;
}

/* Closes the slot's fold; with `args`, starts one with this call as its
 * first. Returns the new fold's tag, or 0. */
static __always_inline __u32 fold_start(struct fold_slot *slot, __u32 cpu_slot,
					const struct shm_args *args, long ret, __u64 pid_tgid,
					__u64 now)
{
	__u32 id;

	fold_flush(slot, cpu_slot);
	if (!args) {
		slot->fold_id = 0;
		return 0;
	}
	id = (slot->fold_id + 1) & FOLD_ID_MASK;
	if (!id)
		id = 1;
	slot->args = *args;
	slot->ret = ret;
	slot->tid = (__u32)pid_tgid;
	slot->pid = pid_tgid >> 32;
	slot->calls = 1;
	slot->reported = 1;
	slot->last_ns = now;
	slot->pending_ns = now;
	slot->clock_offset = now - fold_clock();
	slot->fold_id = id;
	return FOLD_TAG(id, cpu_slot);
}

/* Whether the calling process has used its share of a ring buffer under
 * pressure (at least pressure_bytes waiting): then its event is dropped,
 * and counted, so that other processes' events still find room. Each
 * process may add share_records in one spell of pressure, however long it
 * lasts: a reader slower than a flood must not let the flood fill the rest.
 * Costs a query of the ring buffer per event, and a map lookup only under
 * pressure, until a process is over its share: then its calls on that CPU
 * are only counted there (share_drops), until another process or spell
 * takes the CPU's count. Counts the loss of a call it drops. */
static __always_inline bool over_share(__u32 pid)
{
	struct process_share *share, fresh = { .used = 1 };
	struct share_drops *drops;
	__u32 zero = 0;

	if (!pressure_bytes)
		return false;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < pressure_bytes) {
		if (under_pressure) {
			under_pressure = 0;
			pressure_spell += 1;
		}
		return false;
	}
	if (!under_pressure)
		under_pressure = 1;
	drops = bpf_map_lookup_elem(&share_drops, &zero);
	/* pid 0 (idle) makes no calls: a zeroed count matches none. */
	if (drops && drops->pid == pid && drops->spell == pressure_spell) {
		drops->pending += 1;
		count_lost_total(LOST_OVER_SHARE, 1);
		return true;
	}
	fresh.episode = pressure_spell;
	share = bpf_map_lookup_elem(&shares, &pid);
	if (!share) {
		bpf_map_update_elem(&shares, &pid, &fresh, BPF_ANY);
		return false;
	}
	if (share->episode != fresh.episode) {
		share->episode = fresh.episode;
		share->used = 0;
	}
	if (share->used < share_records) {
		__sync_fetch_and_add(&share->used, 1);
		return false;
	}
	/* Over: this CPU's count of another process (or spell) goes to its
	 * process; this call makes the process's entry, with its name. */
	if (drops) {
		if (drops->pending)
			attribute_loss(drops->pid, drops->pending);
		drops->pid = pid;
		drops->spell = pressure_spell;
		drops->pending = 0;
	}
	count_lost(LOST_OVER_SHARE);
	return true;
}

/* The fields every event has, each written (see emit). */
static __always_inline void fill_event(struct shm_event *event, const struct shm_args *args,
				       long ret, __u64 now, __u32 fold_tag)
{
	event->boot_ns = now;
	event->ret = ret;
	event->args = *args;
	describe_task(event);
	event->newest_idx = -1;
	event->seg_found = 0;
	event->seg_uid = 0;
	event->seg_cuid = 0;
	event->seg_cpid = 0;
	event->attach_addr = 0;
	event->attach_addr_from = ADDR_NONE;
	event->fold_tag = fold_tag;
	event->reserved = 0;
}

/* emit_failure's arguments: a global function takes scalars only on 5.10
 * (pointers to memory from 5.12), so the call's arguments pass through
 * here, per CPU (a program runs to its end on one CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shm_args);
} failing SEC(".maps");

/* A failure's event with its details; 0, or -1 where the ring buffer had
 * no room (counted). A global function: the verifier checks it once, on
 * its own, rather than again for every path that reaches emit (the
 * tracepoint program has one per syscall it decodes), which made loading
 * several times slower. */
__noinline int emit_failure(long ret, __u64 now, __u32 fold_tag)
{
	struct shm_failure_event *event;
	const struct shm_args *args;
	__u32 zero = 0;

	args = bpf_map_lookup_elem(&failing, &zero);
	if (!args)
		return 0;
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count_lost(LOST_RINGBUF_FULL);
		return -1;
	}
	fill_event(&event->event, args, ret, now, fold_tag);
	explain(&event->failure, args, ret, lookup_failure(args, ret));
	bpf_ringbuf_submit(event, submit_flags());
	return 0;
}

static __always_inline int emit(const struct shm_args *args, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = pid_tgid, key = tid & (FOLD_SLOTS - 1);
	__u32 cpu_slot = bpf_get_smp_processor_id() * FOLD_SLOTS + key;
	struct fold_slot *slot;
	struct shm_event *event;
	__u32 fold_tag = 0, zero = 0;
	__u64 now;

	if (failed_only && ret >= 0)
		return 0;
	if (filter_errno_on && !errno_listed(ret))
		return 0;
	slot = bpf_map_lookup_elem(&fold_slots, &key);
	/* ipc(SHMAT)'s result is in the caller's memory, not in ret: never
	 * folded. */
	if (slot && args->op == OP_SHMAT && args->call == CALL_IPC) {
		fold_start(slot, cpu_slot, NULL, ret, pid_tgid, 0);
		slot = NULL;
	}
	/* A repeated failure folds as any call: its fold's first event has
	 * the details, read at that call's return. */
	if (slot && fold_join(slot, cpu_slot, args, ret, tid))
		return 0;
	if (over_share(pid_tgid >> 32))
		return 0;
	now = bpf_ktime_get_boot_ns();
	if (slot)
		fold_tag = fold_start(slot, cpu_slot, args, ret, pid_tgid, now);
	/* (Should the arguments not pass, the event goes without details.) */
	if (needs_details(args, ret) && !bpf_map_update_elem(&failing, &zero, args, BPF_ANY)) {
		if (emit_failure(ret, now, fold_tag) && slot)
			slot->fold_id = 0;
		return 0;
	}
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		/* No fold without its first line: the next identical call is
		 * tried as a first again. */
		if (slot)
			slot->fold_id = 0;
		count_lost(LOST_RINGBUF_FULL);
		return 0;
	}
	/* Every field written, in every event: a reserved record holds what
	 * an older one left there, and userspace tells a repeated event by its
	 * bytes. (Field by field: a memset of the whole event cost the flood
	 * about 20 ns an event more.) */
	fill_event(event, args, ret, now, fold_tag);
	if (ret >= 0 && args->op == OP_SHMGET)
		read_segment(event, ret);
	if (args->op == OP_SHMAT)
		attach_address(event, args, ret);
	bpf_ringbuf_submit(event, submit_flags());
	return 0;
}

/* Entry half of a pair: keep the arguments until the call returns. */
static __always_inline int stash(const struct shm_args *args)
{
	__u64 pid_tgid;

	if (!wanted(args))
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
	if (!wanted(args))
		return 0;
	return emit(args, ret);
}


/* Where each field of struct shm_args is among a call's six arguments, by
 * operation and carrier, for every ABI: X(operation, carrier, field,
 * argument). ipc()'s argument 0 is the call number; SHMAT writes the
 * attach address where argument 3 points. */
#define SHM_FIELDS(X)						\
	X(OP_SHMGET, CALL_DIRECT, key, 0)			\
	X(OP_SHMGET, CALL_DIRECT, size, 1)			\
	X(OP_SHMGET, CALL_DIRECT, shmflg, 2)			\
	X(OP_SHMAT, CALL_DIRECT, shmid, 0)			\
	X(OP_SHMAT, CALL_DIRECT, addr, 1)			\
	X(OP_SHMAT, CALL_DIRECT, shmflg, 2)			\
	X(OP_SHMDT, CALL_DIRECT, addr, 0)			\
	X(OP_SHMCTL, CALL_DIRECT, shmid, 0)			\
	X(OP_SHMCTL, CALL_DIRECT, cmd, 1)			\
	X(OP_SHMGET, CALL_IPC, key, 1)				\
	X(OP_SHMGET, CALL_IPC, size, 2)				\
	X(OP_SHMGET, CALL_IPC, shmflg, 3)			\
	X(OP_SHMAT, CALL_IPC, shmid, 1)				\
	X(OP_SHMAT, CALL_IPC, shmflg, 2)			\
	X(OP_SHMAT, CALL_IPC, raddr_ptr, 3)			\
	X(OP_SHMAT, CALL_IPC, addr, 4)				\
	X(OP_SHMDT, CALL_IPC, addr, 4)				\
	X(OP_SHMCTL, CALL_IPC, shmid, 1)			\
	X(OP_SHMCTL, CALL_IPC, cmd, 2)

/* ipc() call numbers (low 16 bits of argument 0; the high ones carry a
 * version), include/uapi/linux/ipc.h: X(call number, operation) */
#define IPC_CALLS(X)						\
	X(21, OP_SHMAT)						\
	X(22, OP_SHMDT)						\
	X(23, OP_SHMGET)					\
	X(24, OP_SHMCTL)

/* Which call the user registers that the syscall entry saved describe, in
 * the tables of syscall_abi.h and above, and its arguments (read directly:
 * callers pass a trusted BTF pointer or a stack copy). Returns 1 for a call
 * to trace, 0 for one to skip (another ipc() call, an operation not asked
 * for) and -1 for registers that are no shared-memory syscall of this ABI
 * at all. */
static __always_inline int decode_call(struct shm_args *args, const struct pt_regs *regs,
				       enum shm_abi abi, bool at_exit)
{
	long nr = syscall_nr(regs);
	enum shm_call call;
	enum shm_op op;
	__u64 arg[6];

	abi = syscall_abi(regs, nr, abi);
#define SYSCALL_CASE(a, number, o, c)				\
	if (abi == a && nr == (number)) {			\
		op = o;						\
		call = c;					\
	} else
	SHM_SYSCALLS(SYSCALL_CASE)
		return -1;
#undef SYSCALL_CASE
	syscall_args(arg, regs, abi, at_exit);
	if (call == CALL_IPC) {
#define IPC_CASE(number, o)					\
		if ((arg[0] & 0xffff) == number)		\
			op = o;					\
		else
		IPC_CALLS(IPC_CASE)
			return 0; /* semaphores, message queues */
#undef IPC_CASE
	}
	args->abi = abi;
	args->call = call;
	args->op = op;
#define FIELD(o, c, field, n)					\
	if (op == o && call == c)				\
		args->field = arg[n];
	SHM_FIELDS(FIELD)
#undef FIELD
	return traced(op);
}

/* ---- kprobe mode ----
 * The syscall entry functions take the saved user registers as their one
 * argument; a stack copy of them is decoded at entry. */

static __always_inline int kprobe_enter(const struct pt_regs *ctx, enum shm_abi abi)
{
	struct shm_args args = {};
	struct pt_regs user_regs;

	bpf_probe_read_kernel(&user_regs, sizeof(user_regs), (const void *)PT_REGS_PARM1(ctx));
	if (decode_call(&args, &user_regs, abi, false) != 1)
		return 0;
	return stash(&args);
}

/* One pair per entry point (entry_points.h). */
#define KPROBE_PAIR(name, function, abi)					\
	SEC("kprobe/" #function)						\
	int kprobe_##name(struct pt_regs *ctx) { return kprobe_enter(ctx, abi); }	\
	SEC("kretprobe/" #function)						\
	int kretprobe_##name(struct pt_regs *ctx) { return unstash(PT_REGS_RC(ctx)); }

SHM_ENTRY_POINTS(KPROBE_PAIR)

/* do_shmat's attach address, for ipc(SHMAT) (see shmat_addr): userspace
 * loads these "helper" programs only with the ia32 ipc() path and shmat
 * traced, and where the kernel has do_shmat. */
static __always_inline void keep_shmat_addr(const void *raddr, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 addr;

	if (ret == 0 && !bpf_probe_read_kernel(&addr, sizeof(addr), raddr))
		bpf_map_update_elem(&shmat_addr, &pid_tgid, &addr, BPF_ANY);
	else
		bpf_map_delete_elem(&shmat_addr, &pid_tgid);
}

/* long do_shmat(int shmid, char __user *shmaddr, int shmflg, ulong *raddr,
 *               unsigned long shmlba) */
SEC("kprobe/do_shmat")
int kprobe_helper_do_shmat(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 raddr = PT_REGS_PARM4(ctx);

	/* Should the return be missed, the ipc() return finds no address
	 * rather than an older call's. */
	bpf_map_delete_elem(&shmat_addr, &pid_tgid);
	bpf_map_update_elem(&shmat_raddr, &pid_tgid, &raddr, BPF_ANY);
	return 0;
}

SEC("kretprobe/do_shmat")
int kretprobe_helper_do_shmat(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 *raddr = bpf_map_lookup_elem(&shmat_raddr, &pid_tgid);

	if (!raddr)
		return 0;
	keep_shmat_addr((const void *)*raddr, PT_REGS_RC(ctx));
	bpf_map_delete_elem(&shmat_raddr, &pid_tgid);
	return 0;
}

/* ---- fentry mode ----
 * The arguments come from the user registers the syscall entry saved,
 * task_pt_regs(current), which is what the wrappers get as their one
 * argument. Not from that argument itself: where the kernel's BTF types it
 * as a pointer to a forward-declared struct pt_regs (Debian's 5.10), the
 * verifier refuses any read of it ("arg0 type FWD is not a struct").
 * Only the return value, ctx[1], is read from the context. */

/* 16 KiB without KASAN: x86_64 (asm/page_64_types.h) and arm64 with 4 KiB
 * pages (asm/memory.h); arm64 has fexit only on 6.12, which has the helper. */
#define FALLBACK_THREAD_SIZE (4096 << 2)

/* Where older kernels' user registers are copied: a per-CPU map, not the
 * stack, of which arm64's struct pt_regs alone would take 336 of the 512
 * bytes a program and the functions it calls may use together. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_regs);
} regs_copy SEC(".maps");

/* NULL where the copy has nowhere to go (never: a per-CPU array's one
 * element always exists). */
static __always_inline const struct pt_regs *syscall_regs(void)
{
	const struct pt_regs *regs;
	struct task_struct *task;
	struct pt_regs *copy;
	__u32 zero = 0;
	void *stack;

	/* 5.15+: the helper knows the stack layout (FRED pads it on 6.9+). */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		regs = (const struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	} else {
		/* Older kernels: pt_regs end the thread's kernel stack, no padding. */
		copy = bpf_map_lookup_elem(&regs_copy, &zero);
		if (!copy)
			return NULL;
		task = (struct task_struct *)bpf_get_current_task();
		stack = BPF_CORE_READ(task, stack);
		bpf_probe_read_kernel(copy, sizeof(*copy),
				      stack + FALLBACK_THREAD_SIZE - bpf_core_type_size(struct pt_regs));
		regs = copy;
	}
	return regs;
}

#define FEXIT_RET(ctx) ((long)(ctx)[1]) /* after the wrapper's one argument */

static __always_inline int fexit_leave(unsigned long long *ctx, enum shm_abi abi)
{
	const struct pt_regs *regs;
	struct shm_args args = {};
	int decoded;

	regs = syscall_regs();
	decoded = regs ? decode_call(&args, regs, abi, true) : -1;
	/* Registers that are no shared-memory syscall, on a function that only
	 * such syscalls reach, were not found where they were looked for (a
	 * kernel stack of another size): count, never print garbage. */
	if (decoded < 0)
		count_lost(LOST_UNREADABLE);
	if (decoded != 1)
		return 0;
	return complete(&args, FEXIT_RET(ctx));
}

/* One program per entry point (entry_points.h). */
#define FEXIT(name, function, abi)						\
	SEC("fexit/" #function)							\
	int fexit_##name(unsigned long long *ctx) { return fexit_leave(ctx, abi); }

SHM_ENTRY_POINTS(FEXIT)

/* raddr (argument 3) is copied out of the context rather than loaded: 5.10's
 * verifier refuses a load of a pointer argument to a type that is not a
 * struct ("arg3 type LONG is not a struct"). */
SEC("fexit/do_shmat")
int fexit_helper_do_shmat(unsigned long long *ctx)
{
	__u64 raddr = 0;

	bpf_probe_read_kernel(&raddr, sizeof(raddr), &ctx[3]);
	keep_shmat_addr((const void *)raddr, (long)ctx[5]);
	return 0;
}

/* ---- tracepoint mode ----
 * Programs on raw_syscalls:sys_exit and sys_enter, through BTF. At exit the
 * user registers that the entry saved still hold the call's arguments (the
 * kernel writes only the return value, to ax), so arguments and result come
 * together, and no tracefs is needed; sys_enter only marks, for threads
 * that ptrace or seccomp could make skip a call, the calls that went
 * through. The syscalls:sys_*_shmget tracepoints would spare the host's
 * other syscalls, but they never fire for compat calls. Both run for every
 * syscall on the host, so the number is tested first, read directly from
 * the trusted regs pointer. */

/* Whether the number is one of ours in any ABI (the operations not asked
 * for fold away at load time). A number the kernel did not dispatch (-1,
 * "no syscall", at the exit of rt_sigreturn or of a call a ptrace tracer
 * skipped) is none of them. */
#define NR_MATCHES(a, number, o, c) || (nr == (number) && (c == CALL_IPC || traced(o)))
#define SHM_NR(nr) (false SHM_SYSCALLS(NR_MATCHES))

/* A thread that a ptrace tracer or a seccomp filter can make skip a call
 * (SECCOMP_RET_ERRNO, _TRACE, _USER_NOTIF, PTRACE_SYSEMU): its sys_exit
 * alone does not tell whether the call ran. */
static __always_inline bool calls_may_be_skipped(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (BPF_CORE_READ(task, ptrace))
		return true;
	if (bpf_core_field_exists(task->seccomp.mode))
		return BPF_CORE_READ(task, seccomp.mode) != 0;
	return false;
}

/* Fires after ptrace and seccomp let a call through, before it runs. */
SEC("tp_btf/sys_enter")
int BPF_PROG(tp_sys_enter, struct pt_regs *regs, long id)
{
	long nr = syscall_nr(regs);
	__u32 tid, value = nr;

	if (!SHM_NR(nr) || !calls_may_be_skipped())
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&dispatched, &tid, &value, BPF_ANY);
	return 0;
}

/* Whether the call this thread leaves ran (a skipped call never reached
 * any shared-memory code: not reported, in any mode). */
static __always_inline bool call_ran(long nr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 *entered;
	bool ran;

	if (!calls_may_be_skipped())
		return true;
	entered = bpf_map_lookup_elem(&dispatched, &tid);
	ran = entered && *entered == (__u32)nr;
	if (entered)
		bpf_map_delete_elem(&dispatched, &tid);
	return ran;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tp_sys_exit, struct pt_regs *regs, long ret)
{
	struct shm_args args = {};
	long nr = syscall_nr(regs);

	if (!SHM_NR(nr))
		return 0;
	/* No shared-memory function returns ENOSYS: the call ran none (an
	 * x32 number on a kernel without x32, a number the kernel refused). */
	if (ret == -ENOSYS || !call_ran(nr))
		return 0;
	if (decode_call(&args, regs, current_abi(), true) != 1)
		return 0;
	return complete(&args, syscall_ret(&args, ret));
}
#undef SHM_NR
#undef NR_MATCHES

char LICENSE[] SEC("license") = "Dual BSD/GPL";
