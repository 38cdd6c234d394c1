//! Choosing how to hook the kernel, and doing it.
//!
//! What each BPF program is for is read from the object itself: its
//! section names the hook and the kernel function (`kprobe/__x64_sys_shmget`,
//! `fexit/...`, `tp_btf/sys_exit`), its name the entry path and operation
//! (`kprobe_x64_shmget`, `fexit_ia32_ipc`), as the one list in
//! `src/bpf/entry_points.h` makes them. `auto` tries the modes from the
//! cheapest for the host to the dearest and takes the first that loads and
//! attaches in full; a mode the kernel cannot do is ruled out first by
//! cheap checks (`kernel`), without loading the object. An explicitly
//! requested mode that cannot work is an error that says why.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::thread::JoinHandle;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use crate::cgroup;
use crate::cli::Cli;
use crate::domain::{Abi, AttachMode, Carrier, Op};
use crate::error::Error;
use crate::event::RawEvent;
use crate::fold::{self, RawFoldSlot};
use crate::kernel::{self, FexitRefused, Survey, VmlinuxBtf};
use crate::skel::types::{lost_reason, process_loss, share_drops};
use crate::skel::{OpenShmgetTraceSkel, ShmgetTraceSkel, ShmgetTraceSkelBuilder};

/// Cheapest first: fexit runs one trampoline and needs no pairing map;
/// kprobe+kretprobe pays for two probes and a map; tracepoint mode puts a
/// program on every system call of the host to see the ia32 ones. (Per
/// traced call tracepoint mode can beat kprobes, as the VM matrix's timings
/// suggest, but every other process on the host pays for it.)
const AUTO_ORDER: [AttachMode; 3] = [
    AttachMode::Fentry,
    AttachMode::Kprobe,
    AttachMode::Tracepoint,
];

/// The prefixes of the program names for each ABI (entry_points.h).
const ABI_PREFIXES: [(&str, Abi); 4] = [
    ("x64", Abi::X86_64),
    ("ia32", Abi::Ia32),
    ("aarch64", Abi::Aarch64),
    ("arm", Abi::Arm),
];

/// A way into the kernel: an ABI's syscall table, and the call that
/// carries the operation (its own, or ipc()).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryPath {
    abi: usize, // index into Abi::ALL, so that paths sort by ABI
    ipc: bool,
}

impl EntryPath {
    fn new(abi: Abi, carrier: Carrier) -> EntryPath {
        EntryPath {
            abi: Abi::ALL
                .iter()
                .position(|a| *a == abi)
                .expect("in Abi::ALL"),
            ipc: carrier == Carrier::Ipc,
        }
    }

    fn abi(self) -> Abi {
        Abi::ALL[self.abi]
    }

    /// `x86_64 shmget`, `ia32 shmget/shmat`, `ia32 ipc`
    fn describe(self, ops: &[Op]) -> String {
        let abi = self.abi().name();
        if self.ipc {
            return format!("{abi} ipc");
        }
        let ops = ops.iter().map(|op| op.name()).collect::<Vec<_>>().join("/");
        format!("{abi} {ops}")
    }
}

/// One BPF program of the object, understood from its name and section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRole {
    pub name: String,
    pub mode: AttachMode,
    /// The kernel function it attaches to; None for the tracepoint, which
    /// sees every path and operation.
    pub function: Option<String>,
    /// The entry path and the operations it sees (the ipc() path carries
    /// all four).
    pub path: Option<EntryPath>,
    pub ops: Vec<Op>,
    /// A helper (`kprobe_helper_do_shmat`): hooks no syscall, but completes
    /// the events of this path (ipc(SHMAT)'s attach address from do_shmat).
    /// Loaded where that path is covered and the kernel has its function;
    /// without it the events say that they lack what it gives.
    pub helps: Option<EntryPath>,
}

impl ProgramRole {
    /// `kprobe_x64_shmget` in `kprobe/__x64_sys_shmget`, and so on; an
    /// error names what is not understood.
    pub fn parse(name: &str, section: &str) -> Result<ProgramRole, String> {
        let (hook, target) = section
            .split_once('/')
            .ok_or_else(|| format!("program {name}: section {section:?} names no hook"))?;
        let mode = match hook {
            "kprobe" | "kretprobe" => AttachMode::Kprobe,
            "fexit" => AttachMode::Fentry,
            "tp_btf" => {
                return Ok(ProgramRole {
                    name: name.into(),
                    mode: AttachMode::Tracepoint,
                    function: None,
                    path: None,
                    ops: Op::ALL.to_vec(),
                    helps: None,
                })
            }
            _ => return Err(format!("program {name}: unknown hook {hook:?}")),
        };
        let stem = name
            .strip_prefix(hook)
            .and_then(|rest| rest.strip_prefix('_'))
            .ok_or_else(|| format!("program {name}: the name does not start with {hook}_"))?;
        if let Some(function) = stem.strip_prefix("helper_") {
            // The one helper: do_shmat, for ipc(SHMAT).
            if function != "do_shmat" || target != function {
                return Err(format!("program {name}: unknown helper in {section:?}"));
            }
            return Ok(ProgramRole {
                name: name.into(),
                mode,
                function: Some(target.into()),
                path: None,
                ops: vec![Op::Shmat],
                helps: Some(EntryPath::new(Abi::Ia32, Carrier::Ipc)),
            });
        }
        let (abi, what) = ABI_PREFIXES
            .iter()
            .find_map(|(prefix, abi)| Some((*abi, stem.strip_prefix(prefix)?.strip_prefix('_')?)))
            .ok_or_else(|| format!("program {name}: no known ABI prefix in {stem:?}"))?;
        let (carrier, ops) = if what == "ipc" {
            (Carrier::Ipc, Op::ALL.to_vec())
        } else {
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == what)
                .ok_or_else(|| format!("program {name}: unknown operation {what:?}"))?;
            (Carrier::Direct, vec![op])
        };
        if target.is_empty() {
            return Err(format!(
                "program {name}: section {section:?} names no function"
            ));
        }
        Ok(ProgramRole {
            name: name.into(),
            mode,
            function: Some(target.into()),
            path: Some(EntryPath::new(abi, carrier)),
            ops,
            helps: None,
        })
    }

    /// Whether it serves one of `ops`.
    fn serves(&self, ops: &[Op]) -> bool {
        self.ops.iter().any(|op| ops.contains(op))
    }
}

/// The object's programs, each understood.
fn program_roles(open_skel: &OpenShmgetTraceSkel) -> Result<Vec<ProgramRole>, String> {
    open_skel
        .open_object()
        .progs()
        .map(|p| ProgramRole::parse(&p.name().to_string_lossy(), &p.section().to_string_lossy()))
        .collect()
}

/// What this kernel offers, read once before any mode is tried.
struct KernelInfo {
    /// BTF ids of the entry functions the kernel has (ia32 ones only with
    /// CONFIG_IA32_EMULATION); None when its BTF could not be read, which
    /// leaves it to the load to find out.
    functions: Option<HashMap<String, u32>>,
    kprobe_pmu: bool,
    lockdown: Option<String>,
    /// The BTF id of struct task_struct (0: unknown).
    task_struct_id: u32,
    /// See [`kernel::ipc_id_index_bits`].
    ipc_id_index_bits: u32,
}

impl KernelInfo {
    /// `survey`: what the kernel's BTF says, where it could be read.
    fn probe(survey: Option<Survey>) -> KernelInfo {
        let task_struct_id = survey.as_ref().and_then(|s| s.task_struct_id).unwrap_or(0);
        KernelInfo {
            functions: survey.map(|s| s.functions),
            kprobe_pmu: kernel::has_kprobes(),
            lockdown: kernel::lockdown(),
            task_struct_id,
            ipc_id_index_bits: kernel::ipc_id_index_bits(),
        }
    }

    fn has_function(&self, function: &str) -> bool {
        self.functions
            .as_ref()
            .is_none_or(|found| found.contains_key(function))
    }
}

/// The entry paths this kernel has for `ops`: those whose functions (of
/// the entry-point programs, kprobe and fexit alike) all exist.
fn covered_paths(roles: &[ProgramRole], ops: &[Op], kernel: &KernelInfo) -> Vec<EntryPath> {
    let paths: BTreeSet<EntryPath> = roles.iter().filter_map(|r| r.path).collect();
    paths
        .into_iter()
        .filter(|path| {
            roles
                .iter()
                .filter(|r| r.path == Some(*path) && r.serves(ops))
                .all(|r| kernel.has_function(r.function.as_deref().unwrap_or_default()))
        })
        .collect()
}

/// A loaded, attached BPF object.
pub struct Tracer {
    pub skel: ShmgetTraceSkel<'static>,
    links: Vec<Link>,
    pub mode: AttachMode,
    covered: Vec<EntryPath>,
    ops: Vec<Op>,
    /// Probe misses of the links before they were dropped.
    misses_at_detach: u64,
    /// The BPF side's `reader_asleep`, in the skeleton's mapping of .bss.
    reader_asleep: NonNull<u32>,
}

impl Tracer {
    /// The flag the reader raises while it sleeps, so that the BPF side
    /// wakes it only then.
    pub fn reader_asleep(&self) -> &AtomicU32 {
        // SAFETY: the flag lives in the .bss mapping that the skeleton keeps
        // for as long as `self`; it is aligned, and only atomics touch it here.
        unsafe { AtomicU32::from_ptr(self.reader_asleep.as_ptr()) }
    }

    /// `x86_64 shmget, ia32 shmget, ia32 ipc`
    pub fn coverage(&self) -> String {
        let mut text = self
            .covered
            .iter()
            .map(|p| p.describe(&self.ops))
            .collect::<Vec<_>>()
            .join(", ");
        if !self.covered.iter().any(|p| p.abi() != Abi::NATIVE) {
            text.push_str(if Abi::NATIVE == Abi::X86_64 {
                " (this kernel has no ia32 system calls)"
            } else {
                " (this kernel has no 32-bit system calls)"
            });
        }
        text
    }

    /// Stops new events; what is in the ring buffer stays readable.
    pub fn detach(&mut self) {
        self.misses_at_detach += self.probe_misses();
        self.links.clear();
    }

    /// Calls the kernel did not run a kprobe or kretprobe for (a kretprobe
    /// runs out of instances when many calls are in flight): each is an
    /// event lost. Kernels before 6.7 do not report these.
    fn probe_misses(&self) -> u64 {
        use libbpf_rs::query::{LinkTypeInfo, PerfEventType};
        self.links
            .iter()
            .filter_map(|link| link.info().ok())
            .map(|info| match info.info {
                LinkTypeInfo::PerfEvent(perf) => match perf.event_type {
                    PerfEventType::Kprobe { missed, .. } => missed,
                    _ => 0,
                },
                _ => 0,
            })
            .sum()
    }

    /// Events dropped in the kernel so far, by reason, all CPUs.
    pub fn lost(&self) -> Result<Lost, Error> {
        let lost = &self.skel.maps.lost;
        let mut counts = [0u64; LOST_REASONS];
        for (reason, count) in counts.iter_mut().enumerate() {
            let per_cpu = lost
                .lookup_percpu(&(reason as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| Error::Bpf {
                    context: "reading the lost-event counters",
                    source,
                })?
                .unwrap_or_default();
            *count = per_cpu
                .iter()
                .filter_map(|bytes| bytes.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                .sum::<u64>();
        }
        Ok(Lost {
            ringbuf_full: counts[lost_reason::LOST_RINGBUF_FULL.0 as usize],
            unpaired: counts[lost_reason::LOST_UNPAIRED.0 as usize],
            unreadable: counts[lost_reason::LOST_UNREADABLE.0 as usize],
            over_share: counts[lost_reason::LOST_OVER_SHARE.0 as usize],
            probe_misses: self.misses_at_detach + self.probe_misses(),
        })
    }

    /// Events lost so far by each process that lost any (those the kernel
    /// side counted; kprobe misses are not attributed), most first.
    pub fn lost_by_process(&self) -> Vec<ProcessLoss> {
        let map = &self.skel.maps.lost_by_process;
        let mut losses: Vec<ProcessLoss> = map
            .keys()
            .filter_map(|key| {
                let value = map.lookup(&key, MapFlags::ANY).ok()??;
                let loss = plain::from_bytes::<process_loss>(&value).ok()?;
                let pid = u32::from_ne_bytes(key.get(..4)?.try_into().ok()?);
                Some(ProcessLoss {
                    pid,
                    comm: comm_text(&loss.comm),
                    count: loss.count,
                })
            })
            .collect();
        // What each CPU counted for the process it is dropping calls of,
        // not yet in the map (share_drops on the BPF side). The process's
        // entry was made with its first such call, unless evicted since.
        if let Ok(Some(per_cpu)) = self
            .skel
            .maps
            .share_drops
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        {
            for bytes in &per_cpu {
                let Ok(drops) = plain::from_bytes::<share_drops>(bytes) else {
                    continue;
                };
                if drops.pending == 0 {
                    continue;
                }
                match losses.iter_mut().find(|loss| loss.pid == drops.pid) {
                    Some(loss) => loss.count += drops.pending,
                    None => losses.push(ProcessLoss {
                        pid: drops.pid,
                        comm: String::new(),
                        count: drops.pending,
                    }),
                }
            }
        }
        losses.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
        losses
    }

    /// Each CPU's fold slots, by slot number (cpu * SLOTS + slot).
    pub fn fold_slots(&self) -> Vec<(usize, RawFoldSlot)> {
        let map = &self.skel.maps.fold_slots;
        let mut slots = vec![];
        for key in 0..fold::SLOTS {
            let Ok(Some(per_cpu)) = map.lookup_percpu(&(key as u32).to_ne_bytes(), MapFlags::ANY)
            else {
                continue;
            };
            for (cpu, bytes) in per_cpu.iter().enumerate() {
                let mut slot = RawFoldSlot::default();
                if plain::copy_from_bytes(&mut slot, bytes).is_ok() {
                    slots.push((cpu * fold::SLOTS + key, slot));
                }
            }
        }
        slots
    }
}

// SAFETY: a u64 and a byte array: any bytes of its size are a value.
unsafe impl plain::Plain for process_loss {}
// SAFETY: integers only.
unsafe impl plain::Plain for share_drops {}

fn comm_text(comm: &[i8; 16]) -> String {
    let bytes: Vec<u8> = comm
        .iter()
        .map(|&b| b as u8)
        .take_while(|&b| b != 0)
        .collect();
    let mut text = Vec::new();
    crate::decode::write_escaped(&mut text, &bytes);
    String::from_utf8(text).unwrap_or_default()
}

/// Events one process lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessLoss {
    pub pid: u32,
    /// Its name (escaped) when it first lost one; empty if unknown.
    pub comm: String,
    pub count: u64,
}

/// `1234 (flood) 5000, 77 (bash) 3`: the processes that lost the most,
/// at most `max` of them, and how many others.
pub fn describe_losses(losses: &[ProcessLoss], max: usize) -> String {
    let mut text = losses
        .iter()
        .take(max)
        .map(|l| format!("{} ({}) {}", l.pid, l.comm, l.count))
        .collect::<Vec<_>>()
        .join(", ");
    if losses.len() > max {
        text.push_str(&format!(" and {} more processes", losses.len() - max));
    }
    text
}

/// An event's room in the ring buffer, with its 8-byte header.
const RECORD_BYTES: u64 = (std::mem::size_of::<RawEvent>() + 8).next_multiple_of(8) as u64;

/// The kernel side's loss counters (`enum lost_reason`).
const LOST_REASONS: usize = lost_reason::LOST_REASONS.0 as usize;

/// Events the kernel side could not deliver, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    /// No room in the ring buffer (bpf_ringbuf_reserve failed).
    pub ringbuf_full: u64,
    /// kprobe mode: an entry that could not be kept for its return (the
    /// pairing map full).
    pub unpaired: u64,
    /// fentry mode: the saved user registers could not be found (kernels
    /// before 5.15, where they are looked for at the top of the stack).
    pub unreadable: u64,
    /// kprobe mode: calls the kernel ran no kprobe or kretprobe for
    /// (reported by kernels 6.7 and later).
    pub probe_misses: u64,
    /// Dropped while the ring buffer was under pressure and the process
    /// over its share (see `over_share` on the BPF side).
    pub over_share: u64,
}

impl Lost {
    pub fn total(&self) -> u64 {
        self.ringbuf_full + self.unpaired + self.unreadable + self.probe_misses + self.over_share
    }

    /// `12 ring buffer full, 3 kprobe misses`: the reasons with a count,
    /// in this order; empty when nothing was lost.
    pub fn reasons(&self) -> String {
        [
            (self.ringbuf_full, "ring buffer full"),
            (self.unpaired, "entry not paired (kprobe map full)"),
            (self.unreadable, "registers unreadable (fentry fallback)"),
            (self.probe_misses, "kprobe misses"),
            (self.over_share, "over the process's share under pressure"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What every mode is loaded with.
struct Plan<'a> {
    cli: &'a Cli,
    wakeup_bytes: u64,
    /// The --cgroup directory, open, for the cgroup_filter map.
    cgroup: Option<File>,
    kernel: KernelInfo,
    roles: Vec<ProgramRole>,
    /// The ring buffer, being made on another thread meanwhile (zeroing
    /// 32 MiB of pages costs the kernel about 9 ms); each load reuses it.
    ringbuf: RingBuf,
}

enum RingBuf {
    Making(JoinHandle<Result<OwnedFd, String>>),
    Made(OwnedFd),
    Failed(String),
}

impl RingBuf {
    fn make(size: u32) -> RingBuf {
        RingBuf::Making(std::thread::spawn(move || {
            let name = c"events";
            // SAFETY: a plain map creation; the fd returned is ours.
            let fd = unsafe {
                libbpf_sys::bpf_map_create(
                    libbpf_sys::BPF_MAP_TYPE_RINGBUF,
                    name.as_ptr(),
                    0,
                    0,
                    size,
                    std::ptr::null(),
                )
            };
            if fd < 0 {
                return Err(format!(
                    "creating the ring buffer failed: {}",
                    std::io::Error::from_raw_os_error(-fd)
                ));
            }
            // SAFETY: a new fd that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }))
    }

    fn get(&mut self) -> Result<&OwnedFd, String> {
        if let RingBuf::Making(_) = self {
            let RingBuf::Making(thread) = std::mem::replace(self, RingBuf::Failed(String::new()))
            else {
                unreachable!()
            };
            *self = match thread.join() {
                Ok(Ok(fd)) => RingBuf::Made(fd),
                Ok(Err(reason)) => RingBuf::Failed(reason),
                Err(_) => RingBuf::Failed("creating the ring buffer panicked".into()),
            };
        }
        match self {
            RingBuf::Made(fd) => Ok(fd),
            RingBuf::Failed(reason) => Err(reason.clone()),
            RingBuf::Making(_) => unreachable!(),
        }
    }
}

/// `core_btf`: the BTF that libbpf relocates against instead of the
/// kernel's (see `CoreBtf`); it is read at load, not at open.
fn open_skel(core_btf: Option<&CStr>) -> Result<OpenShmgetTraceSkel<'static>, libbpf_rs::Error> {
    // The skeleton borrows its object storage for its whole life; a mode
    // that fails is dropped and the next one gets fresh storage. Leaking
    // the few bytes of each is simpler than threading lifetimes through
    // the retries.
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let Some(path) = core_btf else {
        return ShmgetTraceSkelBuilder::default().open(storage);
    };
    let opts = libbpf_sys::bpf_object_open_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _,
        btf_custom_path: path.as_ptr(),
        ..Default::default()
    };
    ShmgetTraceSkelBuilder::default().open_opts(opts, storage)
}

/// The kernel's BTF cut down to the types the object's CO-RE relocations
/// can start from (`VmlinuxBtf::core_subset`), in a memfd that libbpf
/// reads by path at load. Libbpf takes the path at open, so the file is
/// made first and filled once the object's type names are known.
struct CoreBtf {
    file: File,
    path: CString,
}

impl CoreBtf {
    fn new() -> Option<CoreBtf> {
        use nix::sys::memfd::{memfd_create, MFdFlags};
        let fd = memfd_create(c"shmget-trace-core-btf", MFdFlags::MFD_CLOEXEC).ok()?;
        let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        Some(CoreBtf {
            file: File::from(fd),
            path,
        })
    }

    /// The survey's subset; the whole kernel BTF where there is none, so
    /// that libbpf always finds one.
    fn fill(&mut self, survey: Option<&Survey>, vmlinux: &VmlinuxBtf) -> std::io::Result<()> {
        let bytes = match survey {
            Some(survey) => survey.core_subset.as_slice(),
            None => vmlinux.bytes(),
        };
        self.file.write_all(bytes)
    }
}

/// The names of the structs, unions, enums and typedefs in the object's
/// BTF: what its CO-RE relocations can start from (flavors `name___x`
/// reduced to `name`, as libbpf matches them).
fn local_type_names(open_skel: &OpenShmgetTraceSkel) -> HashSet<Vec<u8>> {
    use libbpf_rs::AsRawLibbpf;
    let mut names = HashSet::new();
    let obj = open_skel.open_object().as_libbpf_object();
    // SAFETY: the object and its BTF live as long as `open_skel`; libbpf
    // returns valid types and NUL-terminated names for ids below the count.
    unsafe {
        let btf = libbpf_sys::bpf_object__btf(obj.as_ptr());
        if btf.is_null() {
            return names;
        }
        for id in 1..libbpf_sys::btf__type_cnt(btf) {
            let t = libbpf_sys::btf__type_by_id(btf, id);
            if t.is_null() {
                continue;
            }
            let kind = ((*t).info >> 24) & 0x1f;
            // struct, union, enum, fwd, typedef, enum64
            if ![4, 5, 6, 7, 8, 19].contains(&kind) || (*t).name_off == 0 {
                continue;
            }
            let name = CStr::from_ptr(libbpf_sys::btf__name_by_offset(btf, (*t).name_off));
            let name = name.to_bytes();
            let essential = match name.windows(3).position(|w| w == b"___") {
                Some(at) => &name[..at],
                None => name,
            };
            names.insert(essential.to_vec());
        }
    }
    names
}

/// `wakeup_bytes`: how much may wait in the ring buffer before the reader
/// is woken; 0 wakes it for each event (see the BPF side).
pub fn start(cli: &Cli, wakeup_bytes: u64) -> Result<Tracer, Error> {
    if !Path::new(kernel::VMLINUX_BTF).exists() {
        return Err(Error::NoBtf);
    }
    if !has_bpf_privileges() {
        return Err(Error::Privileges);
    }
    let ringbuf = RingBuf::make(cli.ringbuf_size);
    let cgroup = match &cli.cgroup {
        Some(path) => {
            let dir = cgroup::cgroup_dir(path).map_err(Error::Cgroup)?;
            let file =
                File::open(&dir).map_err(|e| Error::Cgroup(format!("{}: {e}", dir.display())))?;
            Some(file)
        }
        None => None,
    };
    let bpf_error = |context| move |source| Error::Bpf { context, source };
    let vmlinux = VmlinuxBtf::open().ok();
    let mut core_btf = vmlinux.as_ref().and_then(|_| CoreBtf::new());
    let mut first = open_skel(core_btf.as_ref().map(|c| c.path.as_c_str()))
        .map_err(bpf_error("opening the BPF object"))?;
    let roles = program_roles(&first)
        .map_err(|e| {
            libbpf_rs::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .map_err(bpf_error("reading the BPF object's programs"))?;
    let survey = vmlinux.as_ref().and_then(|btf| {
        let mut functions: Vec<&str> = roles.iter().filter_map(|r| r.function.as_deref()).collect();
        functions.extend(kernel::ARCH_MARKERS.iter().map(|(_, function)| *function));
        functions.sort_unstable();
        functions.dedup();
        btf.survey(&functions, &local_type_names(&first)).ok()
    });
    if let Some(arch) = survey.as_ref().and_then(kernel::foreign_arch) {
        return Err(Error::ForeignKernel(arch));
    }
    if let (Some(core), Some(vmlinux)) = (&mut core_btf, &vmlinux) {
        // The cut-down copy only saves time: where it cannot be written
        // (a file-size limit, no memfd), libbpf reads the kernel's own.
        if core.fill(survey.as_ref(), vmlinux).is_err() {
            core_btf = None;
            first = open_skel(None).map_err(bpf_error("opening the BPF object"))?;
        }
    }
    let mut plan = Plan {
        cli,
        wakeup_bytes,
        cgroup,
        kernel: KernelInfo::probe(survey),
        roles,
        ringbuf,
    };
    drop(vmlinux);
    let mut unused = Some(first);
    let mut attempt = |mode: AttachMode| {
        let result = precheck(mode, &plan).and_then(|()| {
            let open_skel = match unused.take() {
                Some(open_skel) => open_skel,
                None => open_skel(core_btf.as_ref().map(|c| c.path.as_c_str()))
                    .map_err(|e| format!("opening the BPF object failed: {e}"))?,
            };
            try_mode(mode, open_skel, &mut plan)
        });
        if cli.verbose > 0 {
            match &result {
                Ok(_) => crate::note!("{}: used", mode.name()),
                Err(reason) => crate::note!("{}: not used: {reason}", mode.name()),
            }
        }
        result
    };
    if cli.attach != AttachMode::Auto {
        return attempt(cli.attach).map_err(|reason| Error::ModeUnavailable {
            mode: cli.attach.name(),
            reason,
        });
    }
    let mut reasons = vec![];
    for (i, mode) in AUTO_ORDER.into_iter().enumerate() {
        match attempt(mode) {
            Ok(tracer) => {
                if cli.verbose > 0 {
                    for later in &AUTO_ORDER[i + 1..] {
                        crate::note!("{}: not tried: {} is used", later.name(), mode.name());
                    }
                }
                return Ok(tracer);
            }
            Err(reason) => reasons.push(format!("{}: {reason}", mode.name())),
        }
    }
    Err(Error::NoUsableHook(reasons.join("; ")))
}

/// The programs of `mode` that the paths this kernel has for `ops` need.
fn needed<'r>(mode: AttachMode, plan: &'r Plan) -> impl Iterator<Item = &'r ProgramRole> {
    let ops = &plan.cli.events.0;
    let covered = covered_paths(&plan.roles, ops, &plan.kernel);
    plan.roles.iter().filter(move |r| {
        r.mode == mode
            && match (r.path, r.helps) {
                (Some(path), _) => covered.contains(&path) && r.serves(ops),
                (None, Some(path)) => {
                    covered.contains(&path)
                        && r.serves(ops)
                        && plan
                            .kernel
                            .has_function(r.function.as_deref().unwrap_or_default())
                }
                (None, None) => true,
            }
    })
}

/// What can be told without loading the object: a mode this kernel cannot
/// do is ruled out here, with the reason.
fn precheck(mode: AttachMode, plan: &Plan) -> Result<(), String> {
    let kernel = &plan.kernel;
    let lockdown = match &kernel.lockdown {
        Some(level) => format!("; kernel lockdown is '{level}'"),
        None => String::new(),
    };
    match mode {
        AttachMode::Kprobe if !kernel.kprobe_pmu => {
            Err("the kernel has no kprobes (no kprobe PMU: CONFIG_KPROBES is not set)".into())
        }
        AttachMode::Kprobe | AttachMode::Fentry if needed(mode, plan).next().is_none() => {
            Err("the kernel has none of the system calls' entry functions".into())
        }
        AttachMode::Fentry => {
            // One fexit program on one of the functions the mode needs.
            let Some((function, id)) = needed(mode, plan).find_map(|r| {
                let function = r.function.as_deref()?;
                Some((function, *kernel.functions.as_ref()?.get(function)?))
            }) else {
                return Ok(()); // no BTF ids: the load will tell
            };
            match kernel::try_fexit(id) {
                Ok(()) => Ok(()),
                Err(FexitRefused::Load(e)) if e.raw_os_error() == Some(1) => Err(format!(
                    "the kernel refused to load fentry/fexit programs (EPERM{lockdown}; \
                     BPF trampolines are not allowed here)"
                )),
                Err(FexitRefused::Load(e)) => Err(format!(
                    "the kernel refused to load an fexit program on {function}: {}{lockdown}",
                    kernel::errno_text(&e)
                )),
                Err(FexitRefused::Attach(e)) => Err(format!(
                    "the kernel cannot attach fexit programs (on {function}: {}; BPF trampolines \
                     need CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS on some architectures)",
                    kernel::errno_text(&e)
                )),
            }
        }
        _ => Ok(()),
    }
}

fn try_mode(
    mode: AttachMode,
    mut open_skel: OpenShmgetTraceSkel<'static>,
    plan: &mut Plan,
) -> Result<Tracer, String> {
    let kernel = &plan.kernel;
    let ops = &plan.cli.events.0;
    let covered = covered_paths(&plan.roles, ops, kernel);
    let wanted_names: Vec<String> = needed(mode, plan).map(|r| r.name.clone()).collect();
    let wanted = |name: &str| wanted_names.iter().any(|n| n == name);

    configure(&mut open_skel, plan)?;
    for mut prog in open_skel.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(wanted(&name));
        if plan.cli.verbose >= 2 {
            // The verifier's statistics (instructions processed), which
            // libbpf prints with its debug messages.
            prog.set_log_level(4);
        }
    }
    // A hash map allocates all its entries when it is made (about 0.4 ms
    // for 10240): the maps that only some programs use get one entry where
    // none of those is loaded.
    let helpers = needed(mode, plan).any(|r| r.helps.is_some());
    let maps = &mut open_skel.maps;
    for (map, used) in [
        (&mut maps.inflight, mode == AttachMode::Kprobe),
        (&mut maps.shmat_raddr, mode == AttachMode::Kprobe && helpers),
        (&mut maps.shmat_addr, helpers),
    ] {
        if !used {
            map.set_max_entries(1)
                .map_err(|e| format!("sizing an unused map failed: {e}"))?;
        }
    }
    let ringbuf = plan.ringbuf.get()?;
    open_skel
        .maps
        .events
        .reuse_fd(ringbuf.as_fd())
        .map_err(|e| format!("reusing the ring buffer failed: {e}"))?;
    let mut skel = open_skel
        .load()
        .map_err(|e| load_failure(mode, &e, &plan.kernel))?;
    if let Some(cgroup) = &plan.cgroup {
        let slot = 0u32.to_ne_bytes();
        skel.maps
            .cgroup_filter
            .update(&slot, &cgroup.as_raw_fd().to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| format!("setting the cgroup filter failed: {e}"))?;
    }

    let bss = skel
        .maps
        .bss_data
        .as_deref_mut()
        .ok_or("the BPF object's .bss is not mapped")?;
    let reader_asleep = NonNull::from(&mut bss.reader_asleep);

    let mut links = vec![];
    for prog in skel.object().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if !wanted(&name) {
            continue;
        }
        let link = prog
            .attach()
            .map_err(|e| format!("attaching {name} failed: {e}"))?;
        links.push(link);
    }
    Ok(Tracer {
        skel,
        links,
        mode,
        covered,
        ops: ops.clone(),
        misses_at_detach: 0,
        reader_asleep,
    })
}

/// Filters and the ring buffer size go into the object before load.
fn configure(open_skel: &mut OpenShmgetTraceSkel<'static>, plan: &Plan) -> Result<(), String> {
    let cli = plan.cli;
    open_skel
        .maps
        .events
        .set_max_entries(cli.ringbuf_size)
        .map_err(|e| format!("sizing the ring buffer failed: {e}"))?;
    let rodata = open_skel
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or("the BPF object has no read-only data section")?;
    // cli checks the counts; the slots are the BPF side's.
    rodata.filter_pid_count = cli.pid.len() as u32;
    for (slot, pid) in rodata.filter_pids.iter_mut().zip(&cli.pid) {
        *slot = *pid;
    }
    rodata.filter_tid = cli.tid.unwrap_or(0);
    rodata.filter_uid_count = cli.uid.len() as u32;
    for (slot, uid) in rodata.filter_uids.iter_mut().zip(&cli.uid) {
        *slot = *uid;
    }
    if let Some(key) = cli.key {
        rodata.filter_key_on = true;
        rodata.filter_key = key;
    }
    if let Some((name, exact)) = cli.name_filter() {
        rodata.filter_comm_on = true;
        rodata.filter_comm_exact = exact;
        rodata.filter_comm_len = name.len() as u32;
        for (slot, byte) in rodata.filter_comm.iter_mut().zip(name.bytes()) {
            *slot = byte as i8;
        }
    }
    for errno in &cli.errno {
        rodata.filter_errno_on = true;
        rodata.filter_errnos[*errno as usize / 64] |= 1 << (errno % 64);
    }
    rodata.failed_only = cli.failed;
    rodata.traced_ops = cli.events.0.iter().fold(0, |mask, op| mask | 1 << op.raw());
    rodata.filter_cgroup_on = plan.cgroup.is_some();
    rodata.wakeup_bytes = plan.wakeup_bytes;
    // Fairness: with half the ring buffer waiting, each process may add
    // at most an eighth of it until less waits again.
    rodata.pressure_bytes = u64::from(cli.ringbuf_size) / 2;
    rodata.share_records = u64::from(cli.ringbuf_size) / 8 / RECORD_BYTES;
    rodata.fold_window_ns = fold::WINDOW.as_nanos() as u64;
    rodata.task_struct_btf_id = plan.kernel.task_struct_id;
    rodata.ipc_idx_mask = (1 << plan.kernel.ipc_id_index_bits) - 1;
    Ok(())
}

fn load_failure(mode: AttachMode, err: &libbpf_rs::Error, kernel: &KernelInfo) -> String {
    // EPERM is the kernel refusing the program type (lockdown); EACCES, the
    // verifier rejecting the program. libbpf-rs maps both to PermissionDenied
    // and keeps no errno, so the text of the OS error tells them apart.
    let refused = err.kind() == libbpf_rs::ErrorKind::PermissionDenied
        && format!("{err:#}").contains("(os error 1)");
    let lockdown = match &kernel.lockdown {
        Some(level) => format!("; kernel lockdown is '{level}'"),
        None => String::new(),
    };
    match mode {
        AttachMode::Fentry if refused => format!(
            "the kernel refused to load fentry/fexit programs (EPERM{lockdown}; \
             BPF trampolines are not allowed here)"
        ),
        _ => format!("loading the BPF programs failed: {err}{lockdown} (-v shows libbpf's log)"),
    }
}

/// CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN, in the effective set.
fn has_bpf_privileges() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let Some(effective) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
    else {
        return true; // cannot tell: let the kernel decide
    };
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    (has(CAP_BPF) && has(CAP_PERFMON)) || has(CAP_SYS_ADMIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<ProgramRole> {
        let open_skel = open_skel(None).expect("open skeleton");
        program_roles(&open_skel).expect("every program is understood")
    }

    /// Every program in the BPF object is understood: each mode has
    /// programs, every kprobe has its kretprobe and its fexit on the same
    /// function, and each entry path of each operation has one function.
    #[test]
    fn every_program_in_the_object_is_understood() {
        let roles = roles();
        for mode in AUTO_ORDER {
            assert!(
                roles.iter().any(|r| r.mode == mode),
                "no program for {mode:?}"
            );
        }
        let functions = |prefix: &str| -> BTreeSet<(String, String)> {
            roles
                .iter()
                .filter_map(|r| {
                    let stem = r.name.strip_prefix(prefix)?;
                    Some((stem.to_string(), r.function.clone()?))
                })
                .collect()
        };
        let kprobes = functions("kprobe_");
        assert!(!kprobes.is_empty());
        assert_eq!(kprobes, functions("kretprobe_"));
        assert_eq!(kprobes, functions("fexit_"));
        let paths: BTreeSet<EntryPath> = roles.iter().filter_map(|r| r.path).collect();
        for path in &paths {
            for op in Op::ALL {
                let serving: BTreeSet<&str> = roles
                    .iter()
                    .filter(|r| r.mode == AttachMode::Fentry && r.path == Some(*path))
                    .filter(|r| r.ops.contains(&op))
                    .filter_map(|r| r.function.as_deref())
                    .collect();
                // arm64: AArch32 shmget and shmdt run the native functions,
                // whose programs see both ABIs.
                let by_native = path.abi() == Abi::Arm && [Op::Shmget, Op::Shmdt].contains(&op);
                let want = if by_native { 0 } else { 1 };
                assert_eq!(serving.len(), want, "{path:?} {op:?}: {serving:?}");
            }
        }
    }

    #[test]
    fn program_names_and_sections() {
        let role = ProgramRole::parse("kretprobe_ia32_shmat", "kretprobe/__ia32_compat_sys_shmat")
            .unwrap();
        assert_eq!(role.mode, AttachMode::Kprobe);
        assert_eq!(role.function.as_deref(), Some("__ia32_compat_sys_shmat"));
        assert_eq!(role.path, Some(EntryPath::new(Abi::Ia32, Carrier::Direct)));
        assert_eq!(role.ops, [Op::Shmat]);
        let ipc = ProgramRole::parse("fexit_ia32_ipc", "fexit/__ia32_compat_sys_ipc").unwrap();
        assert_eq!(ipc.path, Some(EntryPath::new(Abi::Ia32, Carrier::Ipc)));
        assert_eq!(ipc.ops, Op::ALL);
        let tp = ProgramRole::parse("tp_sys_exit", "tp_btf/sys_exit").unwrap();
        assert_eq!((tp.mode, tp.path), (AttachMode::Tracepoint, None));
        let helper = ProgramRole::parse("fexit_helper_do_shmat", "fexit/do_shmat").unwrap();
        assert_eq!((helper.mode, helper.path), (AttachMode::Fentry, None));
        assert_eq!(helper.helps, Some(EntryPath::new(Abi::Ia32, Carrier::Ipc)));
        assert_eq!(helper.ops, [Op::Shmat]);
        for (name, section) in [
            ("fexit_x64_shmfoo", "fexit/__x64_sys_shmfoo"),
            ("fexit_sparc_shmget", "fexit/__sparc_sys_shmget"),
            ("kprobe_x64_shmget", "uprobe/x"),
            ("kprobe_x64_shmget", "kprobe/"),
            ("fexit_x64_shmget", "kprobe/__x64_sys_shmget"),
            ("fexit_helper_do_shmdt", "fexit/do_shmdt"),
            ("fexit_helper_do_shmat", "fexit/do_shmdt"),
        ] {
            assert!(
                ProgramRole::parse(name, section).is_err(),
                "{name} {section}"
            );
        }
    }

    #[test]
    fn coverage_lines() {
        let ops = [Op::Shmget];
        let x64 = EntryPath::new(Abi::X86_64, Carrier::Direct);
        let ia32 = EntryPath::new(Abi::Ia32, Carrier::Direct);
        let ipc = EntryPath::new(Abi::Ia32, Carrier::Ipc);
        assert_eq!(x64.describe(&ops), "x86_64 shmget");
        assert_eq!(ipc.describe(&Op::ALL), "ia32 ipc");
        assert_eq!(ia32.describe(&Op::ALL), "ia32 shmget/shmat/shmdt/shmctl");
        assert!(x64 < ia32 && ia32 < ipc);
    }

    /// The limits cli checks are the sizes of the BPF side's filters.
    #[test]
    fn filter_limits_are_the_bpf_sides() {
        let mut open_skel = open_skel(None).expect("open skeleton");
        let rodata = open_skel.maps.rodata_data.as_deref_mut().unwrap();
        assert_eq!(rodata.filter_pids.len(), crate::cli::MAX_FILTER_IDS);
        assert_eq!(rodata.filter_uids.len(), crate::cli::MAX_FILTER_IDS);
        assert_eq!(
            rodata.filter_errnos.len() as u32 * 64,
            crate::cli::MAX_FILTER_ERRNO
        );
    }

    /// Without 32-bit entry functions (ia32, AArch32) only the native path
    /// is covered.
    #[test]
    fn paths_follow_the_kernels_functions() {
        #[cfg(target_arch = "x86_64")]
        let (paths, native) = (3, "__x64");
        #[cfg(target_arch = "aarch64")]
        let (paths, native) = (2, "__arm64_sys");
        let roles = roles();
        let mut kernel = KernelInfo {
            functions: None,
            kprobe_pmu: true,
            lockdown: None,
            task_struct_id: 0,
            ipc_id_index_bits: 15,
        };
        assert_eq!(covered_paths(&roles, &Op::ALL, &kernel).len(), paths);
        let only_native: HashMap<String, u32> = roles
            .iter()
            .filter_map(|r| r.function.clone())
            .filter(|f| f.starts_with(native))
            .map(|f| (f, 1))
            .collect();
        kernel.functions = Some(only_native);
        assert_eq!(
            covered_paths(&roles, &Op::ALL, &kernel),
            [EntryPath::new(Abi::NATIVE, Carrier::Direct)]
        );
    }
}
