//! Why a call failed: the kernel's state that the BPF side read as the call
//! returned (`explain`, into a failure's details, [`RawFailure`]: the
//! caller's ipc namespace's limits and usage, the segment the key or id
//! names, the caller's ids), turned into a stable code and a text with the
//! numbers. Where the state does not settle the cause, the text says what
//! is known and that it is not exact.
//!
//! The host's own settings that no event carries (`vm.hugetlb_shm_group`,
//! free huge pages) are read when such an event is decoded, after the call:
//! those texts say so.

use std::fmt::Write;
use std::sync::OnceLock;

use crate::domain::Op;
use crate::event::{RawEvent, RawFailure};
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
/// Why a key lookup that found nothing is not exact (`WHY_INEXACT`).
const INEXACT: &str = " (not exact: no segment with the key was found, but the kernel's \
                       key table could not be read in full: nested, a long hash chain, \
                       or resized over and over)";

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

/// The reason of a failed call, from its event and the details the BPF
/// side read for it (`needs_details` there says for which); `None` for a
/// successful call, and for a failed shmat, shmdt or shmctl whose cause is
/// not cheap and exact to know.
pub fn explain(raw: &RawEvent, failure: Option<&RawFailure>, op: Op) -> Option<Reason> {
    if raw.ret >= 0 {
        return None;
    }
    let err = -raw.ret;
    match (op, failure) {
        (Op::Shmget, _) => Some(shmget(raw, failure, err)),
        (Op::Shmat, Some(f)) => shmat(raw, f, err),
        (Op::Shmctl, Some(f)) => shmctl(raw, f, err),
        _ => None,
    }
}

fn has(f: &RawFailure, bit: shm_why) -> bool {
    f.why & bit.0 != 0
}

fn reason(code: &'static str, text: String) -> Reason {
    Reason { code, text }
}

/// ipc/util.h: at most this many ids per namespace, whatever shmmni says.
fn ipc_mni() -> i64 {
    static MNI: OnceLock<i64> = OnceLock::new();
    *MNI.get_or_init(|| 1 << crate::kernel::ipc_id_index_bits())
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

fn shmget(raw: &RawEvent, failure: Option<&RawFailure>, err: i64) -> Reason {
    let (key, flags) = (raw.args.key, raw.args.shmflg);
    let huge = flags & SHM_HUGETLB != 0;
    match (err, failure) {
        (ENOENT, _) if flags & IPC_CREAT == 0 => reason(
            "no_key",
            format!(
                "no segment with key 0x{:08x} in ipc namespace {}, and no IPC_CREAT",
                key as u32, raw.ipcns
            ),
        ),
        (ENOENT, _) if huge => reason(
            "hugetlb_size",
            format!(
                "no hugetlbfs for huge pages of {} (inferred from ENOENT with SHM_HUGETLB; not read)",
                huge_size_text(flags)
            ),
        ),
        (ENOMEM, _) if !huge => reason(
            "unknown",
            "out of memory for the segment (kernel memory or the overcommit limit; not read)"
                .into(),
        ),
        (_, Some(f)) => shmget_by_state(raw, f, err),
        _ => reason(
            "unknown",
            format!(
                "{} not explained (no state is read for it)",
                crate::decode::errno_name(raw.ret).unwrap_or("error")
            ),
        ),
    }
}

/// A failed shmget whose errno names some state, with that state.
fn shmget_by_state(raw: &RawEvent, f: &RawFailure, err: i64) -> Reason {
    let (key, size, flags) = (raw.args.key, raw.args.size, raw.args.shmflg);
    let found = has(f, shm_why::WHY_SEG);
    // No segment found for a key where the lookup could not see all: the
    // key may have one, and a reason drawn from the limits may be wrong.
    let inexact = if key != 0 && !found && has(f, shm_why::WHY_INEXACT) {
        INEXACT
    } else {
        ""
    };
    let huge = flags & SHM_HUGETLB != 0;
    match err {
        EEXIST if found => reason(
            "exists",
            format!(
                "segment 0x{:08x} exists: id {}, owner uid {}, created by pid {} (uid {})",
                key as u32, f.seg_id, f.seg_uid, f.seg_cpid, f.seg_cuid
            ),
        ),
        EEXIST => reason(
            "exists",
            format!(
                "a segment with key 0x{:08x} exists (IPC_CREAT|IPC_EXCL); it was gone at return{inexact}",
                key as u32
            ),
        ),
        EINVAL if found && size > f.seg_size => reason(
            "too_small",
            format!(
                "segment 0x{:08x} has {} bytes, {size} asked",
                key as u32, f.seg_size
            ),
        ),
        EINVAL if found => reason(
            "unknown",
            format!(
                "segment 0x{:08x} exists with {} bytes, {size} asked: EINVAL not explained",
                key as u32, f.seg_size
            ),
        ),
        EINVAL if size < 1 => reason("shmmin", format!("size {size} < shmmin 1{inexact}")),
        EINVAL if size > f.shmmax => reason(
            "shmmax",
            format!("size {size} > shmmax {}{inexact}", f.shmmax),
        ),
        EINVAL if huge => reason(
            "hugetlb_size",
            format!(
                "huge pages of {} not supported (inferred: the size is within shmmax {}; not read){inexact}",
                huge_size_text(flags),
                f.shmmax
            ),
        ),
        ENOSPC => {
            let pages = size.div_ceil(page_size());
            let (tot, all) = (f.shm_tot, f.shmall);
            let (in_use, mni) = (i64::from(f.in_use), i64::from(f.shmmni));
            if tot.saturating_add(pages) > all {
                reason(
                    "shmall",
                    format!("shmall: {tot} of {all} pages in use, {pages} asked"),
                )
            } else if in_use >= mni.min(ipc_mni()) {
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
            f,
            requested(flags),
            &format!("0x{:08x} (id {})", key as u32, f.seg_id),
        ),
        EPERM if huge => hugetlb_perm(raw, f),
        ENOMEM if huge => hugetlb_pages(raw),
        _ => reason(
            "unknown",
            format!(
                "{} not explained by the state read{inexact}",
                crate::decode::errno_name(raw.ret).unwrap_or("error")
            ),
        ),
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
fn permission(f: &RawFailure, asked: u32, segment: &str) -> Reason {
    let mode = f.seg_mode & 0o777;
    let (class, granted) = if f.euid == f.seg_cuid || f.euid == f.seg_uid {
        ("owner", mode >> 6)
    } else if f.fsgid == f.seg_cgid || f.fsgid == f.seg_gid {
        ("group", mode >> 3)
    } else {
        ("other", mode)
    };
    let granted = granted & 7;
    let who = format!(
        "segment {segment} mode 0{mode:03o}, owner uid {} gid {}, creator uid {} gid {}: \
         euid {} gid {} is {class}, granted {}, asked {}",
        f.seg_uid,
        f.seg_gid,
        f.seg_cuid,
        f.seg_cgid,
        f.euid,
        f.fsgid,
        rwx(granted),
        rwx(asked)
    );
    if asked & !granted == 0 || has(f, shm_why::WHY_CAP_IPC_OWNER) {
        return reason(
            "unknown",
            format!(
                "{who}: the mode allows it; refused by something not read (a security module?)"
            ),
        );
    }
    let groups = if class == "other" && f.ngroups > 0 {
        format!(" (not exact: {} supplementary groups not read)", f.ngroups)
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
fn hugetlb_perm(raw: &RawEvent, f: &RawFailure) -> Reason {
    let group = read_number("/proc/sys/vm/hugetlb_shm_group");
    let lock = has(f, shm_why::WHY_CAP_IPC_LOCK);
    let in_group = group == Some(u64::from(f.fsgid));
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
    let groups = if f.ngroups > 0 {
        format!(" (not exact: {} supplementary groups not read)", f.ngroups)
    } else {
        String::new()
    };
    reason(
        "hugetlb_perm",
        format!(
            "no CAP_IPC_LOCK, and gid {} is not vm.hugetlb_shm_group {group} (read after the call){groups}; \
             RLIMIT_MEMLOCK {} bytes, {} asked (older kernels allowed huge pages within it)",
            f.fsgid, f.memlock, raw.args.size
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

fn no_id(raw: &RawEvent, f: &RawFailure) -> Option<Reason> {
    (has(f, shm_why::WHY_SEARCHED) && !has(f, shm_why::WHY_SEG)).then(|| {
        reason(
            "no_id",
            format!(
                "no segment with id {} in ipc namespace {}",
                raw.args.shmid, raw.ipcns
            ),
        )
    })
}

fn shmat(raw: &RawEvent, f: &RawFailure, err: i64) -> Option<Reason> {
    let flags = raw.args.shmflg;
    match err {
        EINVAL => no_id(raw, f),
        EACCES if has(f, shm_why::WHY_SEG) => {
            // do_shmat: read, and write unless SHM_RDONLY, and exec with SHM_EXEC.
            let mut asked = if flags & SHM_RDONLY != 0 { 4 } else { 6 };
            if flags & SHM_EXEC != 0 {
                asked |= 1;
            }
            Some(permission(f, asked, &format!("id {}", raw.args.shmid)))
        }
        _ => None,
    }
}

fn shmctl(raw: &RawEvent, f: &RawFailure, err: i64) -> Option<Reason> {
    let cmd = raw.args.cmd & !IPC_64;
    match err {
        EINVAL => no_id(raw, f),
        ENOMEM if cmd == SHM_LOCK && has(f, shm_why::WHY_SEG) => Some(reason(
            "memlock",
            format!(
                "SHM_LOCK of {} bytes, RLIMIT_MEMLOCK {} bytes (not exact: what the user has \
                 locked already is not read)",
                f.seg_size, f.memlock
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skel::types::shm_op;

    /// A failed shmget and its details, with the limits of a namespace.
    fn failed(key: i32, size: u64, shmflg: i32, errno: i64) -> (RawEvent, RawFailure) {
        let mut raw = RawEvent::default();
        raw.args.op = shm_op::OP_SHMGET;
        raw.args.key = key;
        raw.args.size = size;
        raw.args.shmflg = shmflg;
        raw.ret = -errno;
        raw.ipcns = 4026531839;
        let f = RawFailure {
            why: shm_why::WHY_NS.0,
            shmmax: 8192,
            shmall: 2048,
            shm_tot: 100,
            shmmni: 32,
            in_use: 3,
            ..Default::default()
        };
        (raw, f)
    }

    fn code_and_text((raw, f): &(RawEvent, RawFailure)) -> (&'static str, String) {
        let r = explain(raw, Some(f), Op::Shmget).unwrap();
        (r.code, r.text)
    }

    #[test]
    fn limits_with_their_numbers() {
        let failure = failed(0, 9000, IPC_CREAT, EINVAL);
        assert_eq!(
            code_and_text(&failure),
            ("shmmax", "size 9000 > shmmax 8192".into())
        );
        let failure = failed(0, 0, IPC_CREAT, EINVAL);
        assert_eq!(code_and_text(&failure).0, "shmmin");
        let mut failure = failed(0, 4 * page_size(), IPC_CREAT, ENOSPC);
        failure.1.shm_tot = 2048;
        assert_eq!(
            code_and_text(&failure),
            (
                "shmall",
                "shmall: 2048 of 2048 pages in use, 4 asked".into()
            )
        );
        let mut failure = failed(0, 4096, IPC_CREAT, ENOSPC);
        failure.1.in_use = 32;
        assert_eq!(
            code_and_text(&failure),
            ("shmmni", "shmmni: 32 of 32 segments in use".into())
        );
        let failure = failed(0, 4096, IPC_CREAT, ENOSPC);
        assert_eq!(code_and_text(&failure).0, "unknown");
    }

    #[test]
    fn the_segment_of_the_key() {
        let mut failure = failed(0x1234, 8192, 0, EINVAL);
        failure.1.why |= shm_why::WHY_SEARCHED.0 | shm_why::WHY_SEG.0;
        failure.1.seg_size = 4096;
        assert_eq!(
            code_and_text(&failure),
            (
                "too_small",
                "segment 0x00001234 has 4096 bytes, 8192 asked".into()
            )
        );
        let (raw, f) = &mut failure;
        raw.ret = -EEXIST;
        raw.args.shmflg = IPC_CREAT | 0o2000;
        (f.seg_id, f.seg_uid, f.seg_cpid, f.seg_cuid) = (65585, 65534, 5946, 65534);
        assert_eq!(
            code_and_text(&failure),
            (
                "exists",
                "segment 0x00001234 exists: id 65585, owner uid 65534, created by pid 5946 (uid 65534)"
                    .into()
            )
        );
        // ENOENT without IPC_CREAT: the flags say why, no details needed.
        let (raw, _) = failed(0x1234, 0, 0, ENOENT);
        let r = explain(&raw, None, Op::Shmget).unwrap();
        assert_eq!(
            (r.code, r.text.as_str()),
            (
                "no_key",
                "no segment with key 0x00001234 in ipc namespace 4026531839, and no IPC_CREAT"
            )
        );
        // Not found where the lookup could not see every segment: the
        // limit is named, and the text says it is not exact.
        let mut failure = failed(0x1234, 9000, IPC_CREAT, EINVAL);
        failure.1.why |= shm_why::WHY_SEARCHED.0 | shm_why::WHY_INEXACT.0;
        let (code, text) = code_and_text(&failure);
        assert_eq!(code, "shmmax");
        assert!(
            text.starts_with("size 9000 > shmmax 8192 (not exact: "),
            "{text}"
        );
        // Found exactly nothing: the limit, no note.
        failure.1.why &= !shm_why::WHY_INEXACT.0;
        assert_eq!(code_and_text(&failure).1, "size 9000 > shmmax 8192");
    }

    #[test]
    fn mode_against_the_callers_ids() {
        let mut failure = failed(0x1234, 0, 0o600, EACCES);
        let f = &mut failure.1;
        f.why |= shm_why::WHY_SEARCHED.0 | shm_why::WHY_SEG.0 | shm_why::WHY_CRED.0;
        (f.seg_mode, f.seg_id) = (0o600, 7);
        (f.euid, f.fsgid) = (65534, 65534);
        let (code, text) = code_and_text(&failure);
        assert_eq!(code, "mode");
        assert!(
            text.ends_with("euid 65534 gid 65534 is other, granted ---, asked rw-"),
            "{text}"
        );
        failure.1.ngroups = 2;
        assert!(code_and_text(&failure).1.contains("not exact"));
        // The mode allows it: not blamed on the mode.
        failure.1.seg_mode = 0o666;
        assert_eq!(code_and_text(&failure).0, "unknown");
    }

    #[test]
    fn every_failed_shmget_has_a_reason_and_others_only_where_known() {
        for errno in [1, 2, 12, 13, 17, 22, 28, 5] {
            let (raw, f) = failed(0x1234, 4096, IPC_CREAT, errno);
            for details in [Some(&f), None] {
                let r = explain(&raw, details, Op::Shmget).unwrap();
                assert!(CODES.contains(&r.code), "{r:?}");
                assert!(!r.text.contains(['\t', '\n']));
            }
        }
        let (mut raw, mut f) = failed(0, 0, 0, EINVAL);
        raw.args.op = shm_op::OP_SHMAT;
        raw.args.shmid = 99;
        assert_eq!(explain(&raw, None, Op::Shmat), None, "not looked for");
        f.why = shm_why::WHY_SEARCHED.0;
        assert_eq!(explain(&raw, Some(&f), Op::Shmat).unwrap().code, "no_id");
        raw.ret = 0;
        assert_eq!(explain(&raw, Some(&f), Op::Shmat), None);
    }
}
