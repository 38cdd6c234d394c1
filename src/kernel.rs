//! What the running kernel offers, found cheaply before any BPF object is
//! loaded: which kernel functions exist (from its BTF, not /proc/kallsyms,
//! which took most of the start-up time), whether it has kprobes, its
//! lockdown level, and whether it lets an fexit program load and attach (a
//! one-instruction program on one function, instead of loading the whole
//! object to find out).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;

use libbpf_rs::libbpf_sys;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The BTF type ids of the kernel functions (`BTF_KIND_FUNC`) among
/// `wanted` that the kernel's BTF has. A function missing from the BTF is
/// one the kernel was built without (ia32 entry points without
/// CONFIG_IA32_EMULATION), or one no fentry and no CO-RE tool could use.
pub fn btf_functions(wanted: &[&str]) -> io::Result<HashMap<String, u32>> {
    let file = File::open(VMLINUX_BTF)?;
    let len = file.metadata()?.len() as usize;
    // Kernels from 6.16 on let the BTF be mapped (no copy); older ones are
    // read, a page per read(2).
    if let Some(size) = NonZeroUsize::new(len) {
        // SAFETY: a private read-only mapping of a file that is never written.
        if let Ok(ptr) = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE,
                file.as_fd(),
                0,
            )
        } {
            // SAFETY: `len` bytes are mapped at `ptr` until the munmap below.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr() as *const u8, len) };
            let found = scan_functions(bytes, wanted);
            // SAFETY: the mapping made above, no longer borrowed.
            let _ = unsafe { munmap(ptr, len) };
            return found;
        }
    }
    let mut bytes = Vec::with_capacity(len);
    (&file).read_to_end(&mut bytes)?;
    scan_functions(&bytes, wanted)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{VMLINUX_BTF}: {what}"))
}

/// One pass over a raw BTF blob's types (include/uapi/linux/btf.h).
fn scan_functions(btf: &[u8], wanted: &[&str]) -> io::Result<HashMap<String, u32>> {
    const BTF_MAGIC: u16 = 0xeb9f;
    const KIND_FUNC: u32 = 12;
    let u32_at = |off: usize| -> io::Result<u32> {
        btf.get(off..off + 4)
            .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| bad("truncated"))
    };
    if btf.len() < 24 || u16::from_ne_bytes([btf[0], btf[1]]) != BTF_MAGIC {
        return Err(bad("no BTF header (or not in this machine's byte order)"));
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
    let types = hdr_len + type_off;
    let strings = btf
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or_else(|| bad("string section out of bounds"))?;
    let mut found = HashMap::new();
    let (mut off, end, mut id) = (types, types + type_len, 1u32);
    if end > btf.len() {
        return Err(bad("type section out of bounds"));
    }
    while off < end {
        let name_off = u32_at(off)?;
        let info = u32_at(off + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if kind == KIND_FUNC {
            let name = strings.get(name_off as usize..).unwrap_or_default();
            if let Some(hit) = wanted.iter().find(|w| {
                name.len() > w.len() && name[w.len()] == 0 && name.starts_with(w.as_bytes())
            }) {
                found.insert(hit.to_string(), id);
            }
        }
        off += 12
            + match kind {
                1 | 14 | 17 => 4,        // INT, VAR, DECL_TAG
                3 => 12,                 // ARRAY
                4 | 5 | 15 => vlen * 12, // STRUCT, UNION, DATASEC
                6 | 13 => vlen * 8,      // ENUM, FUNC_PROTO
                19 => vlen * 12,         // ENUM64
                2 | 7..=12 | 16 | 18 => 0,
                _ => return Err(bad(&format!("unknown BTF kind {kind}"))),
            };
        id += 1;
    }
    Ok(found)
}

/// Whether the kernel has kprobes (CONFIG_KPROBES gives the kprobe PMU).
pub fn has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
}

/// The active lockdown level, unless it is `none` or unknown.
pub fn lockdown() -> Option<String> {
    let text = fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    let active = text.split_whitespace().find(|w| w.starts_with('['))?;
    Some(active.trim_matches(['[', ']']).to_string()).filter(|m| m != "none")
}

/// Why fexit programs cannot be used here.
#[derive(Debug)]
pub enum FexitRefused {
    /// BPF_PROG_LOAD of a tracing program failed.
    Load(io::Error),
    /// It loaded, but attaching it (the trampoline) failed.
    Attach(io::Error),
}

/// Loads a one-instruction fexit program (`return 0`) on the kernel
/// function with BTF id `btf_id`, attaches it and closes both: what the
/// full object needs of the kernel for fentry mode, at the cost of two
/// system calls.
pub fn try_fexit(btf_id: u32) -> Result<(), FexitRefused> {
    // r0 = 0; exit
    let insns = [
        libbpf_sys::bpf_insn {
            code: 0xb7, // BPF_ALU64 | BPF_MOV | BPF_K
            ..Default::default()
        },
        libbpf_sys::bpf_insn {
            code: 0x95, // BPF_JMP | BPF_EXIT
            ..Default::default()
        },
    ];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_FEXIT,
        attach_btf_id: btf_id,
        ..Default::default()
    };
    let name = CString::new("shm_fexit_probe").expect("no NUL");
    let license = CString::new("GPL").expect("no NUL");
    // SAFETY: valid pointers for the call's duration; the fd returned is ours.
    let prog = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_TRACING,
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if prog < 0 {
        return Err(FexitRefused::Load(io::Error::from_raw_os_error(-prog)));
    }
    // SAFETY: a new fd that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog) };
    // SAFETY: as above. A NULL name attaches a tracing program to its
    // target (5.5+; what libbpf falls back to where BPF links lack it).
    let link = unsafe {
        libbpf_sys::bpf_raw_tracepoint_open(
            std::ptr::null(),
            std::os::fd::AsRawFd::as_raw_fd(&prog),
        )
    };
    if link < 0 {
        return Err(FexitRefused::Attach(io::Error::from_raw_os_error(-link)));
    }
    // SAFETY: as above; dropping it detaches the probe.
    drop(unsafe { OwnedFd::from_raw_fd(link) });
    Ok(())
}

/// `ENOTSUPP` (524) and friends have no name in std.
pub fn errno_text(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(1) => "EPERM".into(),
        Some(13) => "EACCES".into(),
        Some(22) => "EINVAL".into(),
        Some(95) => "EOPNOTSUPP".into(),
        Some(524) => "ENOTSUPP".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob: int, a FUNC_PROTO with one param, two FUNCs.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0f_one\0__x64_sys_shmget\0x\0".to_vec();
        let mut types: Vec<u32> = vec![];
        types.extend([1, 1 << 24, 4, 32]); // [1] int: INT, size 4, +4
        types.extend([0, (13 << 24) | 1, 1, 28, 1]); // [2] proto(int x)
        types.extend([5, 12 << 24, 2]); // [3] FUNC f_one
        types.extend([11, 12 << 24, 2]); // [4] FUNC __x64_sys_shmget
        let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut out = vec![];
        out.extend(0xeb9fu16.to_ne_bytes());
        out.extend([1, 0]);
        for w in [
            24u32,
            0,
            type_bytes.len() as u32,
            type_bytes.len() as u32,
            strings.len() as u32,
        ] {
            out.extend(w.to_ne_bytes());
        }
        out.extend(type_bytes);
        out.extend(strings);
        out
    }

    #[test]
    fn finds_functions_by_name_with_their_ids() {
        let found = scan_functions(&blob(), &["__x64_sys_shmget", "x", "absent"]).unwrap();
        assert_eq!(found.len(), 1, "{found:?}"); // "x" names a parameter, no FUNC
        assert_eq!(found["__x64_sys_shmget"], 4);
        assert!(scan_functions(&blob()[..30], &["x"]).is_err());
    }

    #[test]
    fn the_running_kernels_btf_parses() {
        if !Path::new(VMLINUX_BTF).exists() {
            return;
        }
        let found = btf_functions(&["__x64_sys_shmget", "no_such_function"]).unwrap();
        assert!(found.contains_key("__x64_sys_shmget"), "{found:?}");
        assert!(!found.contains_key("no_such_function"));
    }
}
