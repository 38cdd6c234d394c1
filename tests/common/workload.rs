//! The test binary as its own workload: started again with
//! SHMGET_TRACE_TEST_WORKLOAD=1, it makes the calls it is given instead of
//! running tests, so that a test can move it into a cgroup, run it as
//! another uid or name it, and needs no helper binary (in a VM guest
//! either).
//!
//! Arguments: [--comm NAME] [--uid UID] [--memlock BYTES] [--unshare-ipc]
//! [--wait] [--keep] STEP... or --exec-without-capabilities PROGRAM ARGS...
//!   native:KEY:SIZE:FLAGS       x86_64 shmget
//!   ia32-shmget:KEY:SIZE:FLAGS  i386 shmget (395) through int $0x80
//!   ia32-ipc:KEY:SIZE:FLAGS     i386 ipc(SHMGET) (117/23) through int $0x80
//!   shmat:SHMID:FLAGS           x86_64 shmat (detached again at once);
//!                               SHMID `last`: the segment made last
//!   shmctl:SHMID:CMD            x86_64 shmctl, no buffer; SHMID as shmat
//!   quiet:NAME                  a program that makes no shared-memory
//!                               call (tests/common/quiet.rs), or all
//!   seccomp-refuses-shmget      from here on a seccomp filter fails every
//!                               shmget with EPERM (ia32 ipc() too)
//!   sysctl:NAME:VALUE           writes /proc/sys/kernel/NAME (shmmax,
//!                               shmmni, shmall): with --unshare-ipc, the
//!                               private namespace's own
//! --unshare-ipc moves the process into a new ipc namespace (gone with it,
//! and its segments with it); --memlock sets RLIMIT_MEMLOCK.
//! Numbers are decimal, 0x hex or 0o octal. Each step prints one JSON line
//! with what the kernel returned, and the inode of the ipc namespace. --wait reads one line from stdin first,
//! so a tracer can be started with this process's pid. Segments created
//! are removed at exit, unless --keep (the caller removes them then).

use std::ffi::CString;
use std::io::{BufRead, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::libc;
use serde_json::Value;

use super::syscalls::*;
use super::{wait_with_timeout, EXIT_TIMEOUT};

const ENV: &str = "SHMGET_TRACE_TEST_WORKLOAD";

/// The name workloads run under, unless told otherwise.
pub const COMM: &str = "shm-workload";

fn number(s: &str) -> Option<i64> {
    if let Some(hex) = s.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = s.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else {
        s.parse().ok()
    }
}

/// In a workload process: does its steps and exits; otherwise returns.
pub fn run_if_asked() {
    if std::env::var_os(ENV).is_none() {
        return;
    }
    set_thread_comm(COMM.as_bytes());
    let mut args = std::env::args().skip(1);
    let mut created = vec![];
    let mut keep = false;
    let (pid, tid) = (std::process::id(), gettid());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--comm" => set_thread_comm(args.next().unwrap_or_default().as_bytes()),
            "--keep" => keep = true,
            "--uid" => become_user(args.next().and_then(|u| u.parse().ok()).expect("--uid N")),
            // SAFETY: takes no pointers.
            "--unshare-ipc" => assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWIPC) }, 0),
            "--memlock" => {
                let bytes = args.next().and_then(|b| number(&b)).expect("--memlock N") as u64;
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                // SAFETY: a valid rlimit.
                assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) }, 0);
            }
            "--wait" => {
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
            }
            "--exec-without-capabilities" => exec_without_capabilities(args.collect()),
            step if step.starts_with("quiet:") => super::quiet::run(&step["quiet:".len()..]),
            "seccomp-refuses-shmget" => seccomp_refuses_shmget(),
            step => {
                let parts: Vec<&str> = step.split(':').collect();
                let n = |i: usize| parts.get(i).and_then(|s| number(s));
                let ret = match (parts[0], n(1), n(2), n(3)) {
                    ("sysctl", _, Some(value), _) => {
                        let path = format!("/proc/sys/kernel/{}", parts[1]);
                        std::fs::write(&path, value.to_string())
                            .unwrap_or_else(|e| panic!("write {path}: {e}"));
                        continue;
                    }
                    (call @ ("shmat" | "shmctl"), id, Some(n), None) => {
                        let id = match parts[1] {
                            "last" => *created.last().expect("a segment made before"),
                            _ => id.expect("shmat:SHMID:FLAGS, shmctl:SHMID:CMD"),
                        };
                        if call == "shmctl" {
                            native_shmctl(id, n as i32, 0)
                        } else {
                            let addr = native_shmat(id, n as i32);
                            if addr >= 0 {
                                native_shmdt(addr);
                            }
                            addr
                        }
                    }
                    ("native", Some(k), Some(s), Some(f)) => {
                        native_shmget(k as i32, s as u64, f as i32)
                    }
                    ("ia32-shmget", Some(k), Some(s), Some(f)) => {
                        ia32_shmget(k as i32, s as u32, f as i32)
                    }
                    ("ia32-ipc", Some(k), Some(s), Some(f)) => {
                        ia32_ipc_shmget(k as i32, s as u32, f as i32)
                    }
                    _ => {
                        eprintln!("workload: bad step {step:?}");
                        std::process::exit(2);
                    }
                };
                if ret >= 0 && !matches!(parts[0], "shmat" | "shmctl") {
                    created.push(ret);
                }
                let ipcns = ipc_namespace();
                println!(
                    "{{\"pid\":{pid},\"tid\":{tid},\"step\":\"{}\",\"ret\":{ret},\"ipcns\":{ipcns}}}",
                    parts[0]
                );
            }
        }
    }
    if !keep {
        for id in created {
            remove_segment(id);
        }
    }
    std::process::exit(0);
}

/// The inode number of this process's ipc namespace.
fn ipc_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/ipc").map_or(0, |m| m.ino())
}

/// Gives up root for `uid` (and the same gid, no supplementary groups).
fn become_user(uid: u32) {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let (gid, uid) = (Gid::from_raw(uid), Uid::from_raw(uid));
    setgroups(&[]).expect("setgroups");
    setresgid(gid, gid, gid).expect("setresgid");
    setresuid(uid, uid, uid).expect("setresuid");
}

/// Runs PROGRAM as this uid with no capabilities at all, even as root: the
/// bounding set is emptied first, so exec grants none back.
fn exec_without_capabilities(argv: Vec<String>) -> ! {
    const CAP_LAST: libc::c_ulong = 63;
    for cap in 0..=CAP_LAST {
        // SAFETY: drops one capability from the bounding set (EINVAL past
        // the kernel's last one is fine).
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [[0u32; 3]; 2]; // effective, permitted, inheritable: none
                               // SAFETY: capset with a v3 header and two data words, as the ABI wants.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    assert_eq!(ret, 0, "capset");
    let argv: Vec<CString> = argv.into_iter().map(|a| CString::new(a).unwrap()).collect();
    let err = nix::unistd::execv(&argv[0], &argv).unwrap_err();
    panic!("exec {:?}: {err}", argv[0]);
}

/// This test binary, started as a workload.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own executable"));
    command.env(ENV, "1").args(args);
    command
}

/// Runs a workload to its end; returns its result lines.
pub fn run(args: &[&str]) -> Vec<Value> {
    let out = command(args).output().expect("run workload");
    assert!(out.status.success(), "workload {args:?} failed: {out:?}");
    parse_lines(&out.stdout)
}

fn parse_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("workload JSON"))
        .collect()
}

/// A workload that waits on stdin before making its calls, so that it can
/// be moved into a cgroup, or a tracer started with its pid, first.
pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Workload {
    pub fn spawn_waiting(args: &[&str]) -> Workload {
        let mut child = command(&["--wait"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn workload");
        let stdin = child.stdin.take();
        Workload { child, stdin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it run; returns its result lines once it has exited.
    pub fn go(mut self) -> Vec<Value> {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").expect("write to workload");
        drop(stdin);
        let mut out = Vec::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut out)
            .expect("workload stdout");
        let status = wait_with_timeout(&mut self.child, EXIT_TIMEOUT);
        assert!(status.success(), "workload failed: {status}");
        parse_lines(&out)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs a seccomp filter that fails every shmget of this process with
/// EPERM (SECCOMP_RET_ERRNO), and the ia32 ipc() and shmget calls too: the
/// kernel answers them without running any shared-memory code.
fn seccomp_refuses_shmget() {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const NR: u32 = 0; // offsets in struct seccomp_data
    const ARCH: u32 = 4;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_W_ABS, 0, 0, ARCH),
        op(JEQ_K, 0, 2, AUDIT_ARCH_NATIVE),
        op(LD_W_ABS, 0, 0, NR),
        op(JEQ_K, 4, 5, libc::SYS_shmget as u32),
        op(JEQ_K, 0, 4, AUDIT_ARCH_I386),
        op(LD_W_ABS, 0, 0, NR),
        op(JEQ_K, 1, 0, IA32_NR_IPC),
        op(JEQ_K, 0, 1, IA32_NR_SHMGET),
        op(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: a valid filter program that outlives the call (the kernel
    // copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program),
            0,
            "seccomp filter"
        );
    }
}
