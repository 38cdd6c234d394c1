/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The one definition of what the BPF side hands to userspace; Rust reads the
 * skeleton's generated copy of these types. */
#ifndef SHMGET_TRACE_H
#define SHMGET_TRACE_H

#define TASK_COMM_LEN 16

/* Which system call table the call came through. */
enum shm_abi {
	ABI_X86_64 = 0,
	ABI_IA32 = 1,
	ABI_X32 = 2,	/* x86_64 registers, number | 0x40000000 */
	ABI_AARCH64 = 3,	/* arm64 */
	ABI_ARM = 4,	/* AArch32 (EABI) callers on arm64 */
};

/* Which system call carried the request: the operation's own (shmget,
 * shmat, ...), or the ipc() multiplexer. */
enum shm_call {
	CALL_DIRECT = 0,
	CALL_IPC = 1,
};

/* The operation on a segment; the bit 1 << op of traced_ops selects it. */
enum shm_op {
	OP_SHMGET = 0,
	OP_SHMAT = 1,
	OP_SHMDT = 2,
	OP_SHMCTL = 3,
};

/* Index into the per-CPU `lost` counters. */
enum lost_reason {
	LOST_RINGBUF_FULL = 0,	/* bpf_ringbuf_reserve failed */
	LOST_UNPAIRED = 1,	/* entry could not be stashed for its return */
	LOST_UNREADABLE = 2,	/* the saved registers could not be found */
	LOST_OVER_SHARE = 3,	/* the process was over its share of a ring
				 * buffer under pressure (see over_share) */
	LOST_REASONS = 4,
};

/* Where an event's attach_addr comes from. */
enum attach_addr_source {
	ADDR_NONE = 0,		/* no segment was attached */
	ADDR_KERNEL = 1,	/* from the kernel: shmat's return value, or
				 * (ipc(SHMAT)) what do_shmat stored */
	ADDR_USER = 2,		/* ipc(SHMAT) in a mode that cannot see
				 * do_shmat: read back from the caller's memory
				 * after the call, where another thread may have
				 * changed it */
	ADDR_UNKNOWN = 3,	/* ipc(SHMAT) attached the segment but could not
				 * write the address back (EFAULT), in a mode
				 * that cannot see do_shmat */
};

/* What the entry hook learns; kept per thread until the return hook. */
struct shm_args {
	__u64 size;		/* shmget */
	__u64 addr;		/* shmat: the address asked for; shmdt: the address */
	__u64 raddr_ptr;	/* ipc(SHMAT): where the kernel puts the attach address */
	__s32 key;		/* shmget */
	__s32 shmflg;		/* shmget, shmat */
	__s32 shmid;		/* shmat, shmctl */
	__s32 cmd;		/* shmctl */
	enum shm_abi abi;
	enum shm_call call;
	enum shm_op op;
	__u32 reserved;		/* 0: no byte of an event is left unwritten */
};

/* One call, as it goes through the ring buffer. */
struct shm_event {
	__u64 boot_ns;		/* bpf_ktime_get_boot_ns() at return */
	__u64 cgroup_id;	/* cgroup v2 id */
	__s64 ret;		/* segment id, address, 0, or -errno */
	__u64 attach_addr;	/* where a shmat attached the segment */
	struct shm_args args;
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 pidns;		/* inode numbers of the pid and mount namespaces */
	__u32 mntns;
	/* Of a successful shmget, read in the kernel at return: */
	__s32 newest_idx;	/* index of the segment the caller's ipc namespace
				 * created last; -1 unknown or failed call */
	__u32 seg_found;	/* 1 when the returned id was found (then:) */
	__u32 seg_uid;		/* its owner */
	__u32 seg_cuid;		/* its creator's uid */
	__u32 seg_cpid;		/* its creator's pid */
	enum attach_addr_source attach_addr_from; /* of attach_addr */
	__u32 ipcns;		/* inode number of the caller's ipc namespace */
	__u32 fold_tag;		/* 0, or the fold this call starts (FOLD_TAG) */
	__u32 reserved;		/* 0, as shm_args.reserved */
	char comm[TASK_COMM_LEN];
};

/* Of a failed call whose errno names some state (needs_details in the
 * program), what the kernel held as it returned; the event in the ring
 * buffer is then a struct shm_failure_event, which userspace tells by its
 * length. Raw numbers only: userspace (reason.rs) derives the reason.
 * 0 where not read (`why` says what was). */
struct shm_failure {
	__u64 shmmax;		/* the caller's ipc namespace: kernel.shmmax */
	__u64 shmall;		/* kernel.shmall, pages */
	__u64 shm_tot;		/* pages of segments in it */
	__u64 seg_size;		/* the segment of the key or id: bytes */
	__u64 memlock;		/* the caller's RLIMIT_MEMLOCK (soft), bytes */
	__u32 why;		/* WHY_* bits */
	__s32 shmmni;		/* kernel.shmmni */
	__s32 in_use;		/* segments in the namespace */
	__s32 seg_id;
	__u32 seg_mode;		/* permission bits and SHM_* state */
	__u32 seg_uid;		/* owner */
	__u32 seg_gid;
	__u32 seg_cuid;		/* creator */
	__u32 seg_cgid;
	__u32 seg_cpid;
	__u32 euid;		/* the caller's, as permission checks use them */
	__u32 fsgid;
	__u32 ngroups;		/* supplementary groups (not read) */
	__u32 reserved;		/* 0 */
};

struct shm_failure_event {
	struct shm_event event;
	struct shm_failure failure;
};

/* What was read into a struct shm_failure. */
enum shm_why {
	WHY_NS = 1,		/* the namespace's limits and usage */
	WHY_SEARCHED = 2,	/* the segment of the key or id was looked for */
	WHY_SEG = 4,		/* and found (seg_*) */
	WHY_INEXACT = 8,	/* by key: not found, but the lookup could not
				 * see every segment (a table being resized, a
				 * hash chain longer than it reads) */
	WHY_CRED = 16,		/* the caller's ids, groups, memlock */
	WHY_CAP_IPC_LOCK = 32,	/* CAP_IPC_LOCK effective */
	WHY_CAP_IPC_OWNER = 64,	/* CAP_IPC_OWNER effective */
};

/* No padding the compiler adds: every byte of an event is written, so
 * userspace can tell two events apart by their bytes (it reuses the text
 * of a repeated event). Padding left unwritten holds what an older record
 * left in the ring buffer, and made every event look new. */
_Static_assert(sizeof(struct shm_args) == __builtin_offsetof(struct shm_args, reserved) + 4,
	       "struct shm_args has tail padding");
_Static_assert(sizeof(struct shm_event) ==
		       __builtin_offsetof(struct shm_event, comm) + TASK_COMM_LEN,
	       "struct shm_event has tail padding");
_Static_assert(sizeof(struct shm_failure) ==
		       __builtin_offsetof(struct shm_failure, reserved) + 4,
	       "struct shm_failure has tail padding");
_Static_assert(sizeof(struct shm_failure_event) ==
		       sizeof(struct shm_event) + sizeof(struct shm_failure),
	       "struct shm_failure_event has padding");

/* ---- Folding: a thread's identical calls in quick succession ----
 * The first call of a run goes out as an event whose fold_tag names the
 * fold (slot and id); the calls that repeat it are only counted, in the
 * fold's slot (per CPU, by thread), and go out as struct shm_fold records
 * of the calls they cover. Userspace writes a fold still pending after
 * the fold window (fold_window_ns, set by userspace) itself, from the slot. */
enum fold_layout {
	FOLD_SLOTS = 4,		/* per CPU, by tid */
	FOLD_SLOT_BITS = 14,	/* of a tag: cpu * FOLD_SLOTS + slot (4096 CPUs) */
};
#define FOLD_ID_MASK ((1U << (32 - FOLD_SLOT_BITS)) - 1)
#define FOLD_TAG(id, slot) ((id) << FOLD_SLOT_BITS | (slot))

/* A fold's state; BPF on its CPU writes it, userspace only reads it. */
struct fold_slot {
	__u64 calls;		/* of the fold, its first included */
	__u64 reported;		/* calls already in a line */
	__u64 last_ns;		/* the fold's last call */
	__u64 pending_ns;	/* the first call not in a line yet */
	__u64 clock_offset;	/* boot time minus fold_clock() at the first */
	__s64 ret;
	struct shm_args args;
	__u32 tid;
	__u32 pid;
	__u32 fold_id;		/* 0: no fold */
	__u32 reserved;
};

/* Calls (from, to] of the fold whose first event carried fold_tag. */
struct shm_fold {
	__u64 first_ns;
	__u64 last_ns;
	__u64 from;
	__u64 to;
	__u32 fold_tag;
	__u32 reserved;
};

/* Userspace tells the ring buffer's records apart by their length alone:
 * a fold (40 bytes), an event (168), a failure's event (264). */
_Static_assert(sizeof(struct shm_fold) != sizeof(struct shm_event) &&
		       sizeof(struct shm_fold) != sizeof(struct shm_failure_event),
	       "a fold record's length is an event's");

/* Per process: events it lost (all reasons), and its name when first seen. */
struct process_loss {
	__u64 count;
	char comm[TASK_COMM_LEN];
};

/* Per CPU: calls of process pid dropped over its share in spell `spell`,
 * counted in the totals but not yet in lost_by_process (userspace adds
 * them to the process's count). */
struct share_drops {
	__u64 pending;
	__u32 pid;
	__u32 spell;
};

/* Per process: records it added while the ring buffer was under pressure,
 * in the current spell of pressure (see over_share). */
struct process_share {
	__u64 episode;
	__u64 used;
};

#endif /* SHMGET_TRACE_H */
