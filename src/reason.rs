//! Why a call failed: the kernel's state that the BPF side read as the call
//! returned (`explain_failure`: the caller's ipc namespace's limits and
//! usage, the segment the key or id names, the caller's ids), turned into a
//! stable code and a text with the numbers. Where the state does not settle
//! the cause, the text says what is known and that it is not exact.
//!
//! The host's own settings that no event carries (`vm.hugetlb_shm_group`,
//! free huge pages) are read when such an event is decoded, after the call:
//! those texts say so.

use std::fmt::Write;
use std::sync::OnceLock;

use crate::domain::Op;
use crate::event::RawEvent;
use crate::skel::types::shm_why;

// include/uapi/linux/ipc.h, shm.h, errno-base.h
const IPC_CREAT: i32 = 0o1000;
const SHM_HUGETLB: i32 = 0o4000;
const SHM_HUGE_SHIFT: i32 = 26;
const SHM_HUGE_MASK: i32 = 0x3f;
const SHM_RDONLY: i32 = 0o10000;
const SHM_EXEC: i32 = 0o100000;
const SHM_LOCK: i32 = 11;
const IPC_64: i32 = 0x100;
const EPERM: i64 = 1;
const ENOENT: i64 = 2;
const ENOMEM: i64 = 12;
const EACCES: i64 = 13;
const EEXIST: i64 = 17;
const EINVAL: i64 = 22;
const ENOSPC: i64 = 28;
/// ipc/util.h: at most this many ids per namespace (without ipcmni_extend).
const IPCMNI: i64 = 1 << 15;
/// The BPF side looks for a key at this many indexes (KEY_SCAN_SLOTS).
const KEY_SCAN_MAX: u32 = 32;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// Stable, for filtering: see [`CODES`].
    pub code: &'static str,
    /// With the numbers; ASCII, no tab or newline.
    pub text: String,
}

/// Every code, as the README lists them.
pub const CODES: [&str; 14] = [
    "shmmin",
    "shmmax",
    "shmall",
    "shmmni",
    "no_key",
    "exists",
    "too_small",
    "mode",
    "hugetlb_perm",
    "hugetlb_pages",
    "hugetlb_size",
    "memlock",
    "no_id",
    "unknown",
];

/// The reason of a failed call; `None` for a successful one, and for a
/// failed shmat, shmdt or shmctl whose cause is not cheap and exact to know.
pub fn explain(raw: &RawEvent, op: Op) -> Option<Reason> {
    if raw.ret >= 0 {
        return None;
    }
    let err = -raw.ret;
    match op {
        Op::Shmget => Some(shmget(raw, err)),
        Op::Shmat => shmat(raw, err),
        Op::Shmctl => shmctl(raw, err),
        Op::Shmdt => None,
    }
}

fn has(raw: &RawEvent, bit: shm_why) -> bool {
    raw.why & bit.0 != 0
}

fn reason(code: &'static str, text: String) -> Reason {
    Reason { code, text }
}

fn page_size() -> u64 {
    static SIZE: OnceLock<u64> = OnceLock::new();
    *SIZE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |s| s as u64)
    })
}

fn shmget(raw: &RawEvent, err: i64) -> Reason {
    let (key, size, flags) = (raw.args.key, raw.args.size, raw.args.shmflg);
    let found = has(raw, shm_why::WHY_SEG);
    // A key the BPF side could not look for everywhere may name a segment.
    let unsure = key != 0 && !found && has(raw, shm_why::WHY_SCAN_CUT);
    let unsure_note = if unsure {
        format!(" (not exact: the key was looked for at the first {KEY_SCAN_MAX} indexes only)")
    } else {
        String::new()
    };
    let huge = flags & SHM_HUGETLB != 0;
    match err {
        ENOENT if flags & IPC_CREAT == 0 => reason(
            "no_key",
            format!(
                "no segment with key 0x{:08x} in ipc namespace {}, and no IPC_CREAT",
                key as u32, raw.ipcns
            ),
        ),
        ENOENT if huge => reason(
            "hugetlb_size",
            format!(
                "no hugetlbfs for huge pages of {} (inferred from ENOENT with SHM_HUGETLB; not read)",
                huge_size_text(flags)
            ),
        ),
        EEXIST if found => reason(
            "exists",
            format!(
                "segment 0x{:08x} exists: id {}, owner uid {}, created by pid {} (uid {})",
                key as u32, raw.seg_id, raw.seg_uid, raw.seg_cpid, raw.seg_cuid
            ),
        ),
        EEXIST => reason(
            "exists",
            format!(
                "a segment with key 0x{:08x} exists (IPC_CREAT|IPC_EXCL); it could not be read{unsure_note}",
                key as u32
            ),
        ),
        EINVAL if found && size > raw.seg_size => reason(
            "too_small",
            format!(
                "segment 0x{:08x} has {} bytes, {size} asked",
                key as u32, raw.seg_size
            ),
        ),
        EINVAL if found => reason(
            "unknown",
            format!(
                "segment 0x{:08x} exists with {} bytes, {size} asked: EINVAL not explained",
                key as u32, raw.seg_size
            ),
        ),
        EINVAL if size < 1 => reason("shmmin", format!("size {size} < shmmin 1{unsure_note}")),
        EINVAL if size > raw.ns_shmmax => reason(
            "shmmax",
            format!("size {size} > shmmax {}{unsure_note}", raw.ns_shmmax),
        ),
        EINVAL if huge => reason(
            "hugetlb_size",
            format!(
                "huge pages of {} not supported (inferred: the size is within shmmax {}; not read){unsure_note}",
                huge_size_text(flags),
                raw.ns_shmmax
            ),
        ),
        ENOSPC => {
            let pages = size.div_ceil(page_size());
            let (tot, all) = (raw.ns_shm_tot, raw.ns_shmall);
            let (in_use, mni) = (i64::from(raw.ns_in_use), i64::from(raw.ns_shmmni));
            if tot.saturating_add(pages) > all {
                reason(
                    "shmall",
                    format!("shmall: {tot} of {all} pages in use, {pages} asked"),
                )
            } else if in_use >= mni.min(IPCMNI) {
                reason(
                    "shmmni",
                    format!("shmmni: {in_use} of {mni} segments in use"),
                )
            } else {
                reason(
                    "unknown",
                    format!(
                        "neither shmall ({tot} of {all} pages in use, {pages} asked) nor shmmni \
                         ({in_use} of {mni} segments) reached at return (not exact: changed meanwhile?)"
                    ),
                )
            }
        }
        EACCES if found => permission(
            raw,
            requested(flags),
            &format!("0x{:08x} (id {})", key as u32, raw.seg_id),
        ),
        EPERM if huge => hugetlb_perm(raw),
        ENOMEM if huge => hugetlb_pages(raw),
        ENOMEM => reason(
            "unknown",
            "out of memory for the segment (kernel memory or the overcommit limit; not read)"
                .into(),
        ),
        _ => {
            reason(
                "unknown",
                format!(
                    "{} not explained by the state read{unsure_note}",
                    crate::decode::errno_name(raw.ret).unwrap_or("error")
                ),
            )
        }
    }
}

/// The permission bits a shmget asks for, as ipcperms folds them: rwx of
/// any class.
fn requested(flags: i32) -> u32 {
    let flags = flags as u32;
    ((flags >> 6) | (flags >> 3) | flags) & 7
}

fn rwx(bits: u32) -> String {
    let mut s = String::with_capacity(3);
    for (bit, c) in [(4, 'r'), (2, 'w'), (1, 'x')] {
        s.push(if bits & bit != 0 { c } else { '-' });
    }
    s
}

/// EACCES: the segment's mode and owner against the caller's ids, as
/// ipcperms checks them.
fn permission(raw: &RawEvent, asked: u32, segment: &str) -> Reason {
    let mode = raw.seg_mode & 0o777;
    let (class, granted) = if raw.euid == raw.seg_cuid || raw.euid == raw.seg_uid {
        ("owner", mode >> 6)
    } else if raw.fsgid == raw.seg_cgid || raw.fsgid == raw.seg_gid {
        ("group", mode >> 3)
    } else {
        ("other", mode)
    };
    let granted = granted & 7;
    let who = format!(
        "segment {segment} mode 0{mode:03o}, owner uid {} gid {}, creator uid {} gid {}: \
         euid {} gid {} is {class}, granted {}, asked {}",
        raw.seg_uid,
        raw.seg_gid,
        raw.seg_cuid,
        raw.seg_cgid,
        raw.euid,
        raw.fsgid,
        rwx(granted),
        rwx(asked)
    );
    if asked & !granted == 0 || has(raw, shm_why::WHY_CAP_IPC_OWNER) {
        return reason(
            "unknown",
            format!(
                "{who}: the mode allows it; refused by something not read (a security module?)"
            ),
        );
    }
    let groups = if class == "other" && raw.ngroups > 0 {
        format!(
            " (not exact: {} supplementary groups not read)",
            raw.ngroups
        )
    } else {
        String::new()
    };
    reason("mode", format!("{who}{groups}"))
}

/// `2MB`, from SHM_HUGE_* bits, or the default huge page size.
fn huge_size_text(flags: i32) -> String {
    let kb = huge_kb(flags);
    match kb {
        Some(kb) if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}GB", kb >> 20),
        Some(kb) if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}MB", kb >> 10),
        Some(kb) => format!("{kb}kB"),
        None => "the default size".into(),
    }
}

/// The huge page size asked for, in kB: from the flags, or the host's
/// default (`Hugepagesize` of /proc/meminfo).
fn huge_kb(flags: i32) -> Option<u64> {
    let log = (flags >> SHM_HUGE_SHIFT) & SHM_HUGE_MASK;
    if log >= 10 {
        return Some(1u64 << (log - 10));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Hugepagesize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// EPERM with SHM_HUGETLB: hugetlb_file_setup refuses a caller that has
/// neither CAP_IPC_LOCK nor the group `vm.hugetlb_shm_group`.
fn hugetlb_perm(raw: &RawEvent) -> Reason {
    let group = read_number("/proc/sys/vm/hugetlb_shm_group");
    let lock = has(raw, shm_why::WHY_CAP_IPC_LOCK);
    let in_group = group == Some(u64::from(raw.fsgid));
    if lock || in_group {
        return reason(
            "unknown",
            format!(
                "EPERM with SHM_HUGETLB, though the caller {} (not explained)",
                if lock {
                    "has CAP_IPC_LOCK"
                } else {
                    "is in vm.hugetlb_shm_group"
                }
            ),
        );
    }
    let group = group.map_or("unreadable".to_string(), |g| g.to_string());
    let groups = if raw.ngroups > 0 {
        format!(
            " (not exact: {} supplementary groups not read)",
            raw.ngroups
        )
    } else {
        String::new()
    };
    reason(
        "hugetlb_perm",
        format!(
            "no CAP_IPC_LOCK, and gid {} is not vm.hugetlb_shm_group {group} (read after the call){groups}; \
             RLIMIT_MEMLOCK {} bytes, {} asked (older kernels allowed huge pages within it)",
            raw.fsgid, raw.memlock, raw.args.size
        ),
    )
}

/// ENOMEM with SHM_HUGETLB: not enough free huge pages of the size to
/// reserve. The counts are the host's, read when the event is decoded.
fn hugetlb_pages(raw: &RawEvent) -> Reason {
    let flags = raw.args.shmflg;
    let Some(kb) = huge_kb(flags) else {
        return reason(
            "hugetlb_pages",
            "no huge page size known on this host (not exact: read after the call)".into(),
        );
    };
    let pages = raw.args.size.div_ceil(kb * 1024);
    let dir = format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB");
    let count = |name: &str| {
        read_number(&format!("{dir}/{name}")).map_or("?".to_string(), |n| n.to_string())
    };
    let mut text = format!(
        "huge pages of {}: {pages} asked; {} free, {} reserved",
        huge_size_text(flags),
        count("free_hugepages"),
        count("resv_hugepages")
    );
    let _ = write!(text, " (not exact: read after the call)");
    reason("hugetlb_pages", text)
}

fn no_id(raw: &RawEvent) -> Option<Reason> {
    (has(raw, shm_why::WHY_SEARCHED) && !has(raw, shm_why::WHY_SEG)).then(|| {
        reason(
            "no_id",
            format!(
                "no segment with id {} in ipc namespace {}",
                raw.args.shmid, raw.ipcns
            ),
        )
    })
}

fn shmat(raw: &RawEvent, err: i64) -> Option<Reason> {
    let flags = raw.args.shmflg;
    match err {
        EINVAL => no_id(raw),
        EACCES if has(raw, shm_why::WHY_SEG) => {
            // do_shmat: read, and write unless SHM_RDONLY, and exec with SHM_EXEC.
            let mut asked = if flags & SHM_RDONLY != 0 { 4 } else { 6 };
            if flags & SHM_EXEC != 0 {
                asked |= 1;
            }
            Some(permission(raw, asked, &format!("id {}", raw.args.shmid)))
        }
        _ => None,
    }
}

fn shmctl(raw: &RawEvent, err: i64) -> Option<Reason> {
    let cmd = raw.args.cmd & !IPC_64;
    match err {
        EINVAL => no_id(raw),
        ENOMEM if cmd == SHM_LOCK && has(raw, shm_why::WHY_SEG) => Some(reason(
            "memlock",
            format!(
                "SHM_LOCK of {} bytes, RLIMIT_MEMLOCK {} bytes (not exact: what the user has \
                 locked already is not read)",
                raw.seg_size, raw.memlock
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skel::types::shm_op;

    fn failed(key: i32, size: u64, shmflg: i32, errno: i64) -> RawEvent {
        let mut raw = RawEvent::default();
        raw.args.op = shm_op::OP_SHMGET;
        raw.args.key = key;
        raw.args.size = size;
        raw.args.shmflg = shmflg;
        raw.ret = -errno;
        raw.ipcns = 4026531839;
        raw.why = shm_why::WHY_NS.0;
        raw.ns_shmmax = 8192;
        raw.ns_shmall = 2048;
        raw.ns_shm_tot = 100;
        raw.ns_shmmni = 32;
        raw.ns_in_use = 3;
        raw
    }

    fn code_and_text(raw: &RawEvent) -> (&'static str, String) {
        let r = explain(raw, Op::Shmget).unwrap();
        (r.code, r.text)
    }

    #[test]
    fn limits_with_their_numbers() {
        let raw = failed(0, 9000, IPC_CREAT, EINVAL);
        assert_eq!(
            code_and_text(&raw),
            ("shmmax", "size 9000 > shmmax 8192".into())
        );
        let raw = failed(0, 0, IPC_CREAT, EINVAL);
        assert_eq!(code_and_text(&raw).0, "shmmin");
        let mut raw = failed(0, 4 * page_size(), IPC_CREAT, ENOSPC);
        raw.ns_shm_tot = 2048;
        assert_eq!(
            code_and_text(&raw),
            (
                "shmall",
                "shmall: 2048 of 2048 pages in use, 4 asked".into()
            )
        );
        let mut raw = failed(0, 4096, IPC_CREAT, ENOSPC);
        raw.ns_in_use = 32;
        assert_eq!(
            code_and_text(&raw),
            ("shmmni", "shmmni: 32 of 32 segments in use".into())
        );
        let raw = failed(0, 4096, IPC_CREAT, ENOSPC);
        assert_eq!(code_and_text(&raw).0, "unknown");
    }

    #[test]
    fn the_segment_of_the_key() {
        let mut raw = failed(0x1234, 8192, 0, EINVAL);
        raw.why |= shm_why::WHY_SEARCHED.0 | shm_why::WHY_SEG.0;
        raw.seg_size = 4096;
        assert_eq!(
            code_and_text(&raw),
            (
                "too_small",
                "segment 0x00001234 has 4096 bytes, 8192 asked".into()
            )
        );
        raw.ret = -EEXIST;
        raw.args.shmflg = IPC_CREAT | 0o2000;
        (raw.seg_id, raw.seg_uid, raw.seg_cpid, raw.seg_cuid) = (65585, 65534, 5946, 65534);
        assert_eq!(
            code_and_text(&raw),
            (
                "exists",
                "segment 0x00001234 exists: id 65585, owner uid 65534, created by pid 5946 (uid 65534)"
                    .into()
            )
        );
        let raw = failed(0x1234, 0, 0, ENOENT);
        assert_eq!(code_and_text(&raw).0, "no_key");
        // Not found where not every index was read: the text says so.
        let mut raw = failed(0x1234, 9000, IPC_CREAT, EINVAL);
        raw.why |= shm_why::WHY_SEARCHED.0 | shm_why::WHY_SCAN_CUT.0;
        assert!(code_and_text(&raw).1.contains("not exact"));
    }

    #[test]
    fn mode_against_the_callers_ids() {
        let mut raw = failed(0x1234, 0, 0o600, EACCES);
        raw.why |= shm_why::WHY_SEARCHED.0 | shm_why::WHY_SEG.0 | shm_why::WHY_CRED.0;
        (raw.seg_mode, raw.seg_id) = (0o600, 7);
        (raw.euid, raw.fsgid) = (65534, 65534);
        let (code, text) = code_and_text(&raw);
        assert_eq!(code, "mode");
        assert!(
            text.ends_with("euid 65534 gid 65534 is other, granted ---, asked rw-"),
            "{text}"
        );
        raw.ngroups = 2;
        assert!(code_and_text(&raw).1.contains("not exact"));
        // The mode allows it: not blamed on the mode.
        raw.seg_mode = 0o666;
        assert_eq!(code_and_text(&raw).0, "unknown");
    }

    #[test]
    fn every_failed_shmget_has_a_reason_and_others_only_where_known() {
        for errno in [1, 2, 12, 13, 17, 22, 28, 5] {
            let raw = failed(0x1234, 4096, IPC_CREAT, errno);
            let r = explain(&raw, Op::Shmget).unwrap();
            assert!(CODES.contains(&r.code), "{r:?}");
            assert!(!r.text.contains(['\t', '\n']));
        }
        let mut raw = failed(0, 0, 0, EINVAL);
        raw.args.op = shm_op::OP_SHMAT;
        raw.args.shmid = 99;
        assert_eq!(explain(&raw, Op::Shmat), None, "not looked for");
        raw.why = (shm_why::WHY_SEARCHED).0;
        assert_eq!(explain(&raw, Op::Shmat).unwrap().code, "no_id");
        raw.ret = 0;
        assert_eq!(explain(&raw, Op::Shmat), None);
    }
}
