//! What the running kernel offers, found cheaply before any BPF object is
//! loaded: which kernel functions exist (from its BTF, not /proc/kallsyms,
//! which took most of the start-up time), whether it has kprobes, its
//! lockdown level, and whether it lets an fexit program load and attach (a
//! one-instruction program on one function, instead of loading the whole
//! object to find out).

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;

use libbpf_rs::libbpf_sys;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The kernel's BTF, mapped (kernels from 6.16 on allow it: no copy) or
/// read (a page per read(2) on older ones).
pub struct VmlinuxBtf {
    ptr: Option<NonNull<std::ffi::c_void>>,
    len: usize,
    copy: Vec<u8>,
}

impl Drop for VmlinuxBtf {
    fn drop(&mut self) {
        if let Some(ptr) = self.ptr {
            // SAFETY: the mapping made in open(), no longer borrowed.
            let _ = unsafe { munmap(ptr, self.len) };
        }
    }
}

/// Where the parts of a raw BTF blob are (include/uapi/linux/btf.h).
struct Layout {
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
}

const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// Bytes after a type's 12-byte header.
fn extra_len(kind: u32, vlen: usize) -> io::Result<usize> {
    Ok(match kind {
        1 | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
        KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
        KIND_PTR | KIND_FWD..=KIND_FUNC | 16 | 18 => 0,
        _ => return Err(bad(&format!("unknown BTF kind {kind}"))),
    })
}

fn u32_at(btf: &[u8], off: usize) -> io::Result<u32> {
    btf.get(off..off + 4)
        .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| bad("truncated"))
}

fn layout(btf: &[u8]) -> io::Result<Layout> {
    const BTF_MAGIC: u16 = 0xeb9f;
    if btf.len() < 24 || u16::from_ne_bytes([btf[0], btf[1]]) != BTF_MAGIC {
        return Err(bad("no BTF header (or not in this machine's byte order)"));
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
    let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
    let layout = Layout {
        types: hdr_len + type_off..hdr_len + type_off + type_len,
        strings: hdr_len + str_off..hdr_len + str_off + str_len,
    };
    if layout.types.end > btf.len() || layout.strings.end > btf.len() {
        return Err(bad("sections out of bounds"));
    }
    Ok(layout)
}

/// Names to find among a BTF blob's many (about 150,000 types in a
/// kernel's): a name's first two bytes rule out most other names before
/// one is looked up in full.
struct NameSet<'n> {
    index: HashMap<&'n [u8], usize>,
    /// One bit per possible pair of first bytes (a one-byte name's second
    /// byte is its NUL).
    first_two: Vec<u64>,
}

impl<'n> NameSet<'n> {
    fn new(names: impl IntoIterator<Item = &'n [u8]>) -> NameSet<'n> {
        let mut index = HashMap::new();
        let mut first_two = vec![0u64; 1 << 10];
        for (i, name) in names.into_iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            index.entry(name).or_insert(i);
            let pair = Self::pair(name[0], name.get(1).copied().unwrap_or(0));
            first_two[pair / 64] |= 1 << (pair % 64);
        }
        NameSet { index, first_two }
    }

    fn pair(first: u8, second: u8) -> usize {
        (first as usize) << 8 | second as usize
    }

    /// The index among the names given of the name at `off` in `strings`,
    /// if it is one of them.
    fn find(&self, strings: &[u8], off: u32) -> Option<usize> {
        let at = strings.get(off as usize..)?;
        let pair = Self::pair(*at.first()?, at.get(1).copied().unwrap_or(0));
        if self.first_two[pair / 64] & (1 << (pair % 64)) == 0 {
            return None;
        }
        self.index.get(string_at(strings, off)).copied()
    }
}

/// The NUL-terminated string at `off` (without its NUL).
fn string_at(strings: &[u8], off: u32) -> &[u8] {
    let rest = strings.get(off as usize..).unwrap_or_default();
    &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
}

/// Offsets of the types, by id (index 0 is void, offset 0 unused): for
/// tests (the survey finds them as it goes).
#[cfg(test)]
fn type_offsets(btf: &[u8], layout: &Layout) -> io::Result<Vec<usize>> {
    let mut offsets = vec![0];
    let mut off = layout.types.start;
    while off < layout.types.end {
        offsets.push(off);
        let info = u32_at(btf, off + 4)?;
        off += 12 + extra_len((info >> 24) & 0x1f, (info & 0xffff) as usize)?;
    }
    Ok(offsets)
}

impl VmlinuxBtf {
    pub fn open() -> io::Result<VmlinuxBtf> {
        let file = File::open(VMLINUX_BTF)?;
        let len = file.metadata()?.len() as usize;
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
                return Ok(VmlinuxBtf {
                    ptr: Some(ptr),
                    len,
                    copy: vec![],
                });
            }
        }
        let mut copy = Vec::with_capacity(len);
        (&file).read_to_end(&mut copy)?;
        Ok(VmlinuxBtf {
            ptr: None,
            len: copy.len(),
            copy,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        match self.ptr {
            // SAFETY: `len` bytes are mapped at `ptr` for as long as self.
            Some(ptr) => unsafe { std::slice::from_raw_parts(ptr.as_ptr() as *const u8, self.len) },
            None => &self.copy,
        }
    }

    /// What start-up needs of the kernel's BTF, in one pass over its
    /// types (bound by memory latency: about 1.5 ms for the 126,000 types
    /// here, each pass). `functions`: the kernel functions to look for;
    /// `core_names`: the types CO-RE relocations may start from.
    pub fn survey(&self, functions: &[&str], core_names: &HashSet<Vec<u8>>) -> io::Result<Survey> {
        let btf = self.bytes();
        let layout = layout(btf)?;
        let strings = &btf[layout.strings.clone()];
        let function_names = NameSet::new(functions.iter().map(|f| f.as_bytes()));
        let core_names = NameSet::new(core_names.iter().map(Vec::as_slice));
        let mut found = HashMap::new();
        let mut task_struct_id = None;
        let mut roots = vec![];
        let mut offsets = vec![0];
        let mut off = layout.types.start;
        while off < layout.types.end {
            let id = offsets.len();
            offsets.push(off);
            let name_off = u32_at(btf, off)?;
            let info = u32_at(btf, off + 4)?;
            let kind = (info >> 24) & 0x1f;
            match kind {
                KIND_FUNC => {
                    if let Some(which) = function_names.find(strings, name_off) {
                        found.insert(functions[which].to_string(), id as u32);
                    }
                }
                KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FWD | KIND_TYPEDEF => {
                    if task_struct_id.is_none()
                        && kind == KIND_STRUCT
                        && string_at(strings, name_off) == b"task_struct"
                    {
                        task_struct_id = Some(id as u32);
                    }
                    if core_names.find(strings, name_off).is_some() {
                        roots.push(id);
                    }
                }
                _ => {}
            }
            off += 12 + extra_len(kind, (info & 0xffff) as usize)?;
        }
        Ok(Survey {
            functions: found,
            task_struct_id,
            core_subset: core_subset(btf, strings, &offsets, roots)?,
        })
    }
}

/// What [`VmlinuxBtf::survey`] finds.
pub struct Survey {
    /// The BTF type ids of the kernel functions (`BTF_KIND_FUNC`) asked
    /// for that the kernel's BTF has. A function missing from the BTF is
    /// one the kernel was built without (ia32 entry points without
    /// CONFIG_IA32_EMULATION), or one no fentry and no CO-RE tool could
    /// use.
    pub functions: HashMap<String, u32>,
    /// The id of struct task_struct.
    pub task_struct_id: Option<u32>,
    /// See [`core_subset`].
    pub core_subset: Vec<u8>,
}

/// A BTF blob with only the types `work` (the ids of the types named in
/// the survey's `core_names`) and what they embed (members, array
/// elements, typedef and modifier targets), for libbpf's CO-RE relocations (its `btf_custom_path`): libbpf searches
/// all of the kernel's types once for each type a relocation starts
/// from, about 2 ms each here, which was a third of the start-up.
/// Pointers stay pointers but to void: CO-RE compares a pointer field
/// only by kind, and a relocation never goes through a pointer.
/// The ids are not the kernel's: relocations that want a kernel type
/// id must not use this.
fn core_subset(
    btf: &[u8],
    strings: &[u8],
    offsets: &[usize],
    mut work: Vec<usize>,
) -> io::Result<Vec<u8>> {
    let header = |id: usize| -> io::Result<(u32, u32, usize, usize)> {
        let off = offsets[id];
        let info = u32_at(btf, off + 4)?;
        Ok((
            u32_at(btf, off)?,
            (info >> 24) & 0x1f,
            (info & 0xffff) as usize,
            off,
        ))
    };
    // The type ids a type refers to (pointer targets not followed).
    let refs = |id: usize| -> io::Result<Vec<u32>> {
        let (_, kind, vlen, off) = header(id)?;
        let at = |i: usize| u32_at(btf, off + i);
        Ok(match kind {
            KIND_TYPEDEF | 9 | 10 | 11 | 18 | KIND_FUNC | KIND_VAR | KIND_DECL_TAG => {
                vec![at(8)?]
            }
            KIND_ARRAY => vec![at(12)?, at(16)?],
            KIND_STRUCT | KIND_UNION => (0..vlen)
                .map(|m| at(12 + m * 12 + 4))
                .collect::<io::Result<_>>()?,
            KIND_FUNC_PROTO => std::iter::once(at(8))
                .chain((0..vlen).map(|p| at(12 + p * 8 + 4)))
                .collect::<io::Result<_>>()?,
            KIND_DATASEC => (0..vlen)
                .map(|v| at(12 + v * 12))
                .collect::<io::Result<_>>()?,
            _ => vec![],
        })
    };
    let mut keep = vec![false; offsets.len()];
    for id in &work {
        keep[*id] = true;
    }
    while let Some(id) = work.pop() {
        if header(id)?.1 == KIND_PTR {
            continue;
        }
        for target in refs(id)? {
            let target = target as usize;
            if target != 0 && target < keep.len() && !keep[target] {
                keep[target] = true;
                work.push(target);
            }
        }
    }
    // Renumber in the kernel's order; copy the strings used.
    let mut new_id = vec![0u32; offsets.len()];
    let mut next = 1;
    for id in 1..offsets.len() {
        if keep[id] {
            new_id[id] = next;
            next += 1;
        }
    }
    let mut new_strings = vec![0u8];
    let mut string_ids: HashMap<u32, u32> = HashMap::new();
    let mut string = |off: u32| -> u32 {
        if off == 0 {
            return 0;
        }
        *string_ids.entry(off).or_insert_with(|| {
            let at = new_strings.len() as u32;
            new_strings.extend_from_slice(string_at(strings, off));
            new_strings.push(0);
            at
        })
    };
    let mut types: Vec<u32> = vec![];
    for id in (1..offsets.len()).filter(|id| keep[*id]) {
        let (name_off, kind, vlen, off) = header(id)?;
        let at = |i: usize| u32_at(btf, off + i);
        let remap = |t: u32| new_id.get(t as usize).copied().unwrap_or(0);
        types.push(string(name_off));
        types.push(at(4)?);
        let size_type = at(8)?;
        types.push(match kind {
            KIND_PTR => 0,
            KIND_TYPEDEF | 9 | 10 | 11 | 18 | KIND_FUNC | KIND_VAR | KIND_DECL_TAG
            | KIND_FUNC_PROTO => remap(size_type),
            _ => size_type,
        });
        match kind {
            KIND_ARRAY => types.extend([remap(at(12)?), remap(at(16)?), at(20)?]),
            KIND_STRUCT | KIND_UNION => {
                for m in 0..vlen {
                    let base = 12 + m * 12;
                    types.extend([string(at(base)?), remap(at(base + 4)?), at(base + 8)?]);
                }
            }
            KIND_ENUM => {
                for v in 0..vlen {
                    types.extend([string(at(12 + v * 8)?), at(12 + v * 8 + 4)?]);
                }
            }
            KIND_ENUM64 => {
                for v in 0..vlen {
                    let base = 12 + v * 12;
                    types.extend([string(at(base)?), at(base + 4)?, at(base + 8)?]);
                }
            }
            KIND_FUNC_PROTO => {
                for p in 0..vlen {
                    types.extend([string(at(12 + p * 8)?), remap(at(12 + p * 8 + 4)?)]);
                }
            }
            KIND_DATASEC => {
                for v in 0..vlen {
                    let base = 12 + v * 12;
                    types.extend([remap(at(base)?), at(base + 4)?, at(base + 8)?]);
                }
            }
            _ => {
                for i in 0..extra_len(kind, vlen)? / 4 {
                    types.push(at(12 + i * 4)?);
                }
            }
        }
    }
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::with_capacity(24 + type_len as usize + new_strings.len());
    out.extend(0xeb9fu16.to_ne_bytes());
    out.extend([1, 0]);
    for word in [24, 0, type_len, type_len, new_strings.len() as u32] {
        out.extend(word.to_ne_bytes());
    }
    out.extend(types.iter().flat_map(|w| w.to_ne_bytes()));
    out.extend(new_strings);
    Ok(out)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{VMLINUX_BTF}: {what}"))
}

/// Whether the kernel has kprobes (CONFIG_KPROBES gives the kprobe PMU).
/// Per architecture, a function that only its kernels have: the syscall
/// wrappers' prefixes differ. A binary run under emulation (qemu-user) on
/// a kernel of another architecture must not decode that kernel's
/// registers and syscall numbers as its own.
pub const ARCH_MARKERS: [(&str, &str); 2] = [
    ("x86_64", "__x64_sys_read"),
    ("aarch64", "__arm64_sys_read"),
];

/// The kernel's architecture, when it is another one than this binary's
/// (`std::env::consts::ARCH`), as the survey of its BTF found it.
pub fn foreign_arch(survey: &Survey) -> Option<&'static str> {
    let own = std::env::consts::ARCH;
    let has = |arch: &str| {
        ARCH_MARKERS
            .iter()
            .any(|(a, f)| *a == arch && survey.functions.contains_key(*f))
    };
    if has(own) {
        return None;
    }
    ARCH_MARKERS
        .iter()
        .map(|(arch, _)| *arch)
        .find(|arch| *arch != own && has(arch))
}

pub fn has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
}

/// The bits of an ipc id that index its namespace's id tree: 15, or 24
/// where the kernel was booted with `ipcmni_extend` (ipc/util.h; the rest
/// of an id is a sequence number).
pub fn ipc_id_index_bits() -> u32 {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if cmdline.split_whitespace().any(|w| w == "ipcmni_extend") {
        24
    } else {
        15
    }
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
        let btf = |bytes: Vec<u8>| VmlinuxBtf {
            ptr: None,
            len: bytes.len(),
            copy: bytes,
        };
        let wanted = ["__x64_sys_shmget", "x", "absent", "f_on"];
        let survey = btf(blob()).survey(&wanted, &HashSet::new()).unwrap();
        // "x" names a parameter, no FUNC; "f_on" is only the start of one.
        assert_eq!(survey.functions.len(), 1, "{:?}", survey.functions);
        assert_eq!(survey.functions["__x64_sys_shmget"], 4);
        assert_eq!(survey.task_struct_id, None);
        assert!(btf(blob()[..30].to_vec())
            .survey(&["x"], &HashSet::new())
            .is_err());
    }

    /// The cut-down BTF keeps the named types and what they embed, with
    /// pointers to void, and parses as BTF again.
    #[test]
    fn core_subset_of_the_running_kernel() {
        if !Path::new(VMLINUX_BTF).exists() {
            return;
        }
        let vmlinux = VmlinuxBtf::open().unwrap();
        let names: HashSet<Vec<u8>> = [b"task_struct".to_vec()].into();
        // This architecture's own syscall wrapper.
        let (_, own) = ARCH_MARKERS
            .iter()
            .find(|(arch, _)| *arch == std::env::consts::ARCH)
            .unwrap();
        let survey = vmlinux.survey(&[own, "no_such_function"], &names).unwrap();
        assert!(
            survey.functions.contains_key(*own),
            "{:?}",
            survey.functions
        );
        assert!(!survey.functions.contains_key("no_such_function"));
        assert!(survey.task_struct_id.is_some());
        let subset = survey.core_subset;
        assert!(subset.len() < vmlinux.bytes().len() / 4, "{}", subset.len());
        let layout = layout(&subset).unwrap();
        let offsets = type_offsets(&subset, &layout).unwrap();
        let strings = &subset[layout.strings.clone()];
        let kinds_named = |kind: u32, name: &[u8]| {
            offsets[1..].iter().any(|&off| {
                let info = u32_at(&subset, off + 4).unwrap();
                (info >> 24) & 0x1f == kind
                    && string_at(strings, u32_at(&subset, off).unwrap()) == name
            })
        };
        assert!(kinds_named(KIND_STRUCT, b"task_struct"));
        assert!(kinds_named(KIND_STRUCT, b"thread_info")); // embedded
        assert!(!kinds_named(KIND_STRUCT, b"cred")); // only pointed to
        for &off in &offsets[1..] {
            let info = u32_at(&subset, off + 4).unwrap();
            if (info >> 24) & 0x1f == KIND_PTR {
                assert_eq!(u32_at(&subset, off + 8).unwrap(), 0);
            }
        }
    }

    /// A kernel of another architecture is told apart by its syscall
    /// wrappers; one of this architecture, or one without BTF markers, is
    /// not refused.
    #[test]
    fn foreign_arch_by_the_syscall_wrappers() {
        let own = std::env::consts::ARCH;
        let marker = |own_arch: bool| {
            ARCH_MARKERS
                .iter()
                .find(|(arch, _)| (*arch == own) == own_arch)
                .unwrap()
        };
        let survey = |names: &[&str]| Survey {
            functions: names.iter().map(|n| (n.to_string(), 1)).collect(),
            task_struct_id: None,
            core_subset: vec![],
        };
        let (other, other_fn) = marker(false);
        assert_eq!(foreign_arch(&survey(&[other_fn])), Some(*other));
        assert_eq!(foreign_arch(&survey(&[other_fn, marker(true).1])), None);
        assert_eq!(foreign_arch(&survey(&[])), None);
    }
}
