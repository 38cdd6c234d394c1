//! Choosing how to hook the kernel, and doing it.
//!
//! Each attach mode names its BPF programs per entry path and operation.
//! `auto` tries the modes from the cheapest for the host to the dearest and
//! takes the first that loads and attaches in full; an explicitly requested
//! mode that cannot is an error that says why.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use crate::cgroup;
use crate::cli::Cli;
use crate::domain::{AttachMode, Op};
use crate::error::Error;
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

/// The ways into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPath {
    X64,
    Ia32,
    Ia32Ipc,
}

impl EntryPath {
    const ALL: [EntryPath; 3] = [EntryPath::X64, EntryPath::Ia32, EntryPath::Ia32Ipc];

    /// The kernel function that a call of `op` by this path enters, on
    /// x86_64: ia32 shmat and shmctl have compat versions.
    fn entry_function(self, op: Op) -> &'static str {
        use Op::*;
        match (self, op) {
            (EntryPath::X64, Shmget) => "__x64_sys_shmget",
            (EntryPath::X64, Shmat) => "__x64_sys_shmat",
            (EntryPath::X64, Shmdt) => "__x64_sys_shmdt",
            (EntryPath::X64, Shmctl) => "__x64_sys_shmctl",
            (EntryPath::Ia32, Shmget) => "__ia32_sys_shmget",
            (EntryPath::Ia32, Shmat) => "__ia32_compat_sys_shmat",
            (EntryPath::Ia32, Shmdt) => "__ia32_sys_shmdt",
            (EntryPath::Ia32, Shmctl) => "__ia32_compat_sys_shmctl",
            (EntryPath::Ia32Ipc, _) => "__ia32_compat_sys_ipc",
        }
    }

    /// The part of the BPF program names for this path and operation.
    fn program_stem(self, op: Op) -> String {
        match self {
            EntryPath::X64 => format!("x64_{}", op.name()),
            EntryPath::Ia32 => format!("ia32_{}", op.name()),
            EntryPath::Ia32Ipc => "ia32_ipc".into(),
        }
    }

    /// `x86_64 shmget`, `ia32 shmget/shmat`, `ia32 ipc`
    fn describe(self, ops: &[Op]) -> String {
        let ops = ops.iter().map(|op| op.name()).collect::<Vec<_>>().join("/");
        match self {
            EntryPath::X64 => format!("x86_64 {ops}"),
            EntryPath::Ia32 => format!("ia32 {ops}"),
            EntryPath::Ia32Ipc => "ia32 ipc".into(),
        }
    }
}

/// The programs of `mode` for one entry path and operation.
fn programs(mode: AttachMode, path: EntryPath, op: Op) -> Vec<String> {
    let stem = path.program_stem(op);
    match mode {
        AttachMode::Kprobe => vec![format!("kprobe_{stem}"), format!("kretprobe_{stem}")],
        AttachMode::Fentry => vec![format!("fexit_{stem}")],
        // One program on every syscall's exit sees all paths and operations.
        AttachMode::Tracepoint | AttachMode::Auto => vec!["tp_sys_exit".into()],
    }
}

/// What this kernel offers, read once before any mode is tried.
struct KernelInfo {
    /// The entry functions of the operations asked for that exist here
    /// (ia32 ones only with CONFIG_IA32_EMULATION).
    functions: HashSet<String>,
    kprobe_pmu: bool,
    lockdown: Option<String>,
}

impl KernelInfo {
    fn probe(ops: &[Op]) -> KernelInfo {
        let wanted: HashSet<&str> = EntryPath::ALL
            .iter()
            .flat_map(|path| ops.iter().map(|op| path.entry_function(*op)))
            .collect();
        KernelInfo {
            functions: kernel_functions_present(&wanted),
            kprobe_pmu: Path::new("/sys/bus/event_source/devices/kprobe/type").exists(),
            lockdown: fs::read_to_string("/sys/kernel/security/lockdown")
                .ok()
                .and_then(|s| {
                    let active = s.split_whitespace().find(|w| w.starts_with('['))?;
                    Some(active.trim_matches(['[', ']']).to_string()).filter(|m| m != "none")
                }),
        }
    }

    /// Whether the kernel has this path at all. The x86_64 functions
    /// always exist (their symbols can be hidden from us); the ia32 ones
    /// only with 32-bit emulation.
    fn has_path(&self, path: EntryPath, ops: &[Op]) -> bool {
        path == EntryPath::X64
            || ops
                .iter()
                .all(|op| self.functions.contains(path.entry_function(*op)))
    }
}

fn kernel_functions_present(wanted: &HashSet<&str>) -> HashSet<String> {
    let Ok(file) = fs::File::open("/proc/kallsyms") else {
        return HashSet::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| line.split_whitespace().nth(2).map(str::to_string))
        .filter(|symbol| wanted.contains(symbol.as_str()))
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
        if !self.covered.iter().any(|p| *p != EntryPath::X64) {
            text.push_str(" (this kernel has no ia32 system calls)");
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

    /// Events dropped in the kernel so far, all reasons, all CPUs.
    pub fn lost(&self) -> Result<u64, Error> {
        let lost = &self.skel.maps.lost;
        let mut total = self.misses_at_detach + self.probe_misses();
        for reason in 0..lost.max_entries() {
            let per_cpu = lost
                .lookup_percpu(&reason.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| Error::Bpf {
                    context: "reading the lost-event counters",
                    source,
                })?
                .unwrap_or_default();
            total += per_cpu
                .iter()
                .filter_map(|bytes| bytes.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                .sum::<u64>();
        }
        Ok(total)
    }
}

/// What every mode is loaded with.
struct Plan<'a> {
    cli: &'a Cli,
    wakeup_bytes: u64,
    /// The --cgroup directory, open, for the cgroup_filter map.
    cgroup: Option<File>,
    kernel: KernelInfo,
}

/// `wakeup_bytes`: how much may wait in the ring buffer before the reader
/// is woken; 0 wakes it for each event (see the BPF side).
pub fn start(cli: &Cli, wakeup_bytes: u64) -> Result<Tracer, Error> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Error::NoBtf);
    }
    if !has_bpf_privileges() {
        return Err(Error::Privileges);
    }
    let cgroup = match &cli.cgroup {
        Some(path) => {
            let dir = cgroup::cgroup_dir(path).map_err(Error::Cgroup)?;
            let file =
                File::open(&dir).map_err(|e| Error::Cgroup(format!("{}: {e}", dir.display())))?;
            Some(file)
        }
        None => None,
    };
    let plan = Plan {
        cli,
        wakeup_bytes,
        cgroup,
        kernel: KernelInfo::probe(&cli.events.0),
    };
    let attempt = |mode: AttachMode| {
        let result = try_mode(mode, &plan);
        if cli.verbose {
            match &result {
                Ok(_) => eprintln!("shmget-trace: {}: used", mode.name()),
                Err(reason) => eprintln!("shmget-trace: {}: not used: {reason}", mode.name()),
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
    for mode in AUTO_ORDER {
        match attempt(mode) {
            Ok(tracer) => return Ok(tracer),
            Err(reason) => reasons.push(format!("{}: {reason}", mode.name())),
        }
    }
    Err(Error::NoUsableHook(reasons.join("; ")))
}

fn try_mode(mode: AttachMode, plan: &Plan) -> Result<Tracer, String> {
    let kernel = &plan.kernel;
    if mode == AttachMode::Kprobe && !kernel.kprobe_pmu {
        return Err("the kernel has no kprobes (no kprobe PMU: CONFIG_KPROBES is not set)".into());
    }
    // Probes on missing functions cannot load (fentry) or attach (kprobe).
    let ops = &plan.cli.events.0;
    let covered: Vec<EntryPath> = EntryPath::ALL
        .into_iter()
        .filter(|path| kernel.has_path(*path, ops))
        .collect();
    let needed: HashSet<String> = covered
        .iter()
        .flat_map(|path| ops.iter().flat_map(|op| programs(mode, *path, *op)))
        .collect();
    let wanted = |name: &str| needed.contains(name);

    // The skeleton borrows its object storage for its whole life; a mode
    // that fails is dropped and the next one gets fresh storage. Leaking
    // the few bytes of each is simpler than threading lifetimes through
    // the retries.
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open_skel = ShmgetTraceSkelBuilder::default()
        .open(storage)
        .map_err(|e| format!("opening the BPF object failed: {e}"))?;
    configure(&mut open_skel, plan)?;
    for mut prog in open_skel.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(wanted(&name));
    }
    let mut skel = open_skel
        .load()
        .map_err(|e| load_failure(mode, &e, kernel))?;
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
    rodata.filter_pid = cli.pid.unwrap_or(0);
    rodata.filter_tid = cli.tid.unwrap_or(0);
    if let Some(uid) = cli.uid {
        rodata.filter_uid_on = true;
        rodata.filter_uid = uid;
    }
    if let Some(key) = cli.key {
        rodata.filter_key_on = true;
        rodata.filter_key = key;
    }
    if let Some(name) = &cli.name {
        rodata.filter_comm_on = true;
        for (slot, byte) in rodata.filter_comm.iter_mut().zip(name.bytes()) {
            *slot = byte as i8;
        }
    }
    rodata.failed_only = cli.failed;
    rodata.traced_ops = cli.events.0.iter().fold(0, |mask, op| mask | 1 << op.raw());
    rodata.filter_cgroup_on = plan.cgroup.is_some();
    rodata.wakeup_bytes = plan.wakeup_bytes;
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
    let Some(effective) = fs::read_to_string("/proc/self/status")
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

    /// Every program the modes name exists in the BPF object, and every
    /// program in the object belongs to a mode.
    #[test]
    fn mode_tables_match_the_bpf_object() {
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let open_skel = ShmgetTraceSkelBuilder::default()
            .open(storage)
            .expect("open skeleton");
        let in_object: HashSet<String> = open_skel
            .open_object()
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        let named: HashSet<String> = AUTO_ORDER
            .iter()
            .flat_map(|mode| {
                EntryPath::ALL.iter().flat_map(move |path| {
                    Op::ALL
                        .iter()
                        .flat_map(move |op| programs(*mode, *path, *op))
                })
            })
            .collect();
        assert_eq!(in_object, named);
    }

    #[test]
    fn coverage_lines() {
        let ops = [Op::Shmget];
        assert_eq!(EntryPath::X64.describe(&ops), "x86_64 shmget");
        assert_eq!(EntryPath::Ia32Ipc.describe(&Op::ALL), "ia32 ipc");
        assert_eq!(
            EntryPath::Ia32.describe(&Op::ALL),
            "ia32 shmget/shmat/shmdt/shmctl"
        );
    }
}
