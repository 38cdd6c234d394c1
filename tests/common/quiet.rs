//! Programs that make no shared-memory call at all, as workload steps
//! (`quiet:NAME`), for the tests that no event is ever invented: each does
//! one of the things whose syscall exits look odd to a tracer (a signal
//! handler's return restores registers that name no syscall, a restarted
//! call, a number that does not exist, a call a ptrace tracer skips). Not
//! one event may come from them.

use std::io::{Read, Write};
use std::process::Command;
use std::thread;
use std::time::Duration;

use nix::libc;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use super::syscalls::*;

/// The steps, by name; each runs on every architecture (ia32 ones on
/// x86_64, where `quiet:all` includes them).
pub const ALL: &[&str] = &[
    "signals",
    "restarted-read",
    "restarted-sleep",
    "fork-and-wait",
    "shell",
    "bad-numbers",
    "ptrace",
    #[cfg(target_arch = "x86_64")]
    "ia32-signals",
    #[cfg(target_arch = "aarch64")]
    "arm32",
];

pub fn run(name: &str) {
    match name {
        "all" => ALL.iter().for_each(|step| run(step)),
        "signals" => signals(),
        "restarted-read" => restarted_read(),
        "restarted-sleep" => restarted_sleep(),
        "fork-and-wait" => fork_and_wait(),
        "shell" => shell(),
        "bad-numbers" => bad_numbers(),
        "ptrace" => ptrace_skips(),
        "ia32-signals" => ia32_signals(),
        "arm32" => arm32(),
        _ => panic!("no quiet step {name:?}"),
    }
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    (read.into(), write.into())
}

extern "C" fn ignore(_: libc::c_int) {}

fn handle(signal: Signal, flags: SaFlags) {
    let action = SigAction::new(SigHandler::Handler(ignore), flags, SigSet::empty());
    // SAFETY: the handler does nothing, so it is async-signal-safe.
    unsafe { signal::sigaction(signal, &action) }.expect("sigaction");
}

fn tgkill(tid: u32, signal: Signal) {
    // SAFETY: takes no pointers.
    unsafe { libc::syscall(libc::SYS_tgkill, std::process::id(), tid, signal as i32) };
}

/// raise() five times with a handler: each handler returns by
/// rt_sigreturn, whose exit restores tgkill's registers (pid, tid, signal).
fn signals() {
    handle(Signal::SIGUSR1, SaFlags::empty());
    for _ in 0..5 {
        signal::raise(Signal::SIGUSR1).expect("raise");
    }
}

/// A read interrupted by a handled signal (SA_RESTART) and restarted.
fn restarted_read() {
    handle(Signal::SIGUSR2, SaFlags::SA_RESTART);
    let (mut reader, mut writer) = pipe();
    let reader_tid = gettid();
    let other = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        tgkill(reader_tid, Signal::SIGUSR2);
        thread::sleep(Duration::from_millis(30));
        writer.write_all(b"x").expect("write to pipe");
    });
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte).expect("restarted read");
    other.join().unwrap();
}

/// A sleep stopped and continued: the kernel resumes it by
/// restart_syscall.
fn restarted_sleep() {
    // SAFETY: the child only sleeps and exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let nap = libc::timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            };
            // SAFETY: a valid timespec; no remainder wanted.
            unsafe { libc::nanosleep(&nap, std::ptr::null_mut()) };
            // SAFETY: exits the forked child without running Rust's exit.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            thread::sleep(Duration::from_millis(50));
            signal::kill(child, Signal::SIGSTOP).expect("SIGSTOP");
            thread::sleep(Duration::from_millis(30));
            signal::kill(child, Signal::SIGCONT).expect("SIGCONT");
            waitpid(child, None).expect("waitpid");
        }
    }
}

/// fork and wait, with a SIGCHLD handler.
fn fork_and_wait() {
    handle(Signal::SIGCHLD, SaFlags::SA_RESTART);
    for _ in 0..3 {
        // SAFETY: the child exits at once.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => unsafe { libc::_exit(0) },
            ForkResult::Parent { child } => {
                waitpid(child, None).expect("waitpid");
            }
        }
    }
    // SAFETY: back to the default disposition.
    unsafe { signal::signal(Signal::SIGCHLD, SigHandler::SigDfl) }.expect("signal");
}

/// A shell loop with a trap and subshells (the guests' busybox sh, the
/// host's /bin/sh).
fn shell() {
    let script = "trap 'n=$((n+1))' USR1; n=0; for i in 1 2 3; do (kill -USR1 $$); \
                  x=$(echo $i); ( : ); done; [ $n = 3 ]";
    let status = Command::new("sh")
        .args(["-c", script])
        .status()
        .expect("sh");
    assert!(status.success(), "the shell loop: {status}");
}

/// Numbers that are no syscall, and numbers of shared-memory calls in the
/// other ABI's table.
fn bad_numbers() {
    let mut numbers = vec![u64::MAX, 0x7fff_ffff];
    if cfg!(target_arch = "x86_64") {
        // 395-398: the ia32 shm calls, none in the x86_64 table; 117:
        // setresuid here (ipc() in ia32's), with -1s that change nothing.
        numbers.extend([395, 396, 397, 398]);
    } else {
        // 305-308: AArch32's shm calls, none in arm64's table.
        numbers.extend([305, 306, 307, 308]);
    }
    for nr in numbers {
        let ret = raw_syscall3(nr, 0, 0, 0);
        assert_eq!(ret, -(libc::ENOSYS as i64), "syscall {nr:#x}");
    }
    if cfg!(target_arch = "x86_64") {
        let same = u32::MAX as u64;
        assert_eq!(
            raw_syscall3(117, same, same, same),
            0,
            "setresuid(-1, -1, -1)"
        );
    }
}

/// i386 calls with a handler: kill() of itself through int $0x80, and an
/// i386 pause() (29, shmget's number in the x86_64 table) that a signal
/// interrupts.
fn ia32_signals() {
    const IA32_GETPID: u32 = 20;
    const IA32_KILL: u32 = 37;
    const IA32_PAUSE: u32 = 29;
    handle(Signal::SIGUSR1, SaFlags::empty());
    let pid = int80(IA32_GETPID, 0, 0, 0, 0, 0) as u32;
    for _ in 0..3 {
        assert_eq!(int80(IA32_KILL, pid, Signal::SIGUSR1 as u32, 0, 0, 0), 0);
    }
    let tid = gettid();
    let other = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        tgkill(tid, Signal::SIGUSR1);
    });
    assert_eq!(int80(IA32_PAUSE, 0, 0, 0, 0, 0), -(libc::EINTR as i64));
    other.join().unwrap();
}

/// The AArch32 workload's quiet mode (tests/support/arm32-workload.c):
/// handlers, an interrupted pause(), numbers that are arm64's shm calls.
fn arm32() {
    let path = super::arm32_workload();
    let status = Command::new(&path)
        .arg("quiet")
        .status()
        .expect("run the AArch32 workload");
    assert!(status.success(), "{path} quiet: {status}");
}

/// A child under ptrace: every syscall stops it twice, a handled signal
/// goes through its tracer, and the tracer skips two of its calls (as
/// `strace -e inject=...` does: the number set to -1 at entry, the result
/// written at exit), one a getppid, one a shmget that therefore never
/// runs. The child checks that both came back with the tracer's EPERM.
fn ptrace_skips() {
    let (mut from_child, mut to_parent) = pipe();
    // SAFETY: the child makes plain syscalls and exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: as above; the child stops itself for its tracer.
            unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
            signal::raise(Signal::SIGSTOP).expect("raise");
            handle(Signal::SIGUSR1, SaFlags::empty());
            signal::raise(Signal::SIGUSR1).expect("raise");
            let skipped_getppid = raw_syscall3(libc::SYS_getppid as u64, 0, 0, 0);
            let skipped_shmget = native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600);
            let ok =
                skipped_getppid == -(libc::EPERM as i64) && skipped_shmget == -(libc::EPERM as i64);
            let _ = to_parent.write_all(if ok { b"ok" } else { b"no" });
            if skipped_shmget >= 0 {
                remove_segment(skipped_shmget);
            }
            // SAFETY: exits the forked child.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            drop(to_parent);
            trace_skipping(child);
            let mut answer = String::new();
            from_child
                .read_to_string(&mut answer)
                .expect("child's answer");
            assert_eq!(answer, "ok", "the tracer's skips came back as EPERM");
        }
    }
}

/// The tracer of [`ptrace_skips`]: runs the child to its end, skipping its
/// getppid and shmget calls.
fn trace_skipping(child: Pid) {
    use nix::sys::ptrace;
    use nix::sys::wait::WaitStatus;
    let skip = [libc::SYS_getppid, libc::SYS_shmget];
    waitpid(child, None).expect("the child's SIGSTOP");
    ptrace::setoptions(child, ptrace::Options::PTRACE_O_TRACESYSGOOD).expect("setoptions");
    ptrace::syscall(child, None).expect("PTRACE_SYSCALL");
    let mut skipping = false;
    let mut signal_to_pass = None;
    loop {
        match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => return,
            WaitStatus::PtraceSyscall(_) => {
                if skipping {
                    set_result(child, -(libc::EPERM as i64));
                    skipping = false;
                } else if skip.contains(&syscall_number(child)) {
                    set_syscall_number(child, -1);
                    skipping = true;
                }
            }
            WaitStatus::Stopped(_, signal) => signal_to_pass = Some(signal),
            _ => {}
        }
        ptrace::syscall(child, signal_to_pass.take()).expect("PTRACE_SYSCALL");
    }
}

#[cfg(target_arch = "x86_64")]
fn syscall_number(child: Pid) -> i64 {
    nix::sys::ptrace::getregs(child).expect("getregs").orig_rax as i64
}

#[cfg(target_arch = "x86_64")]
fn set_syscall_number(child: Pid, nr: i64) {
    let mut regs = nix::sys::ptrace::getregs(child).expect("getregs");
    regs.orig_rax = nr as u64;
    nix::sys::ptrace::setregs(child, regs).expect("setregs");
}

#[cfg(target_arch = "x86_64")]
fn set_result(child: Pid, ret: i64) {
    let mut regs = nix::sys::ptrace::getregs(child).expect("getregs");
    regs.rax = ret as u64;
    nix::sys::ptrace::setregs(child, regs).expect("setregs");
}

/// arm64: the number through the NT_ARM_SYSTEM_CALL regset, the result in
/// x0 of the general registers.
#[cfg(target_arch = "aarch64")]
const NT_ARM_SYSTEM_CALL: libc::c_int = 0x404;

#[cfg(target_arch = "aarch64")]
fn syscall_number(child: Pid) -> i64 {
    let mut nr: libc::c_int = 0;
    regset(child, libc::PTRACE_GETREGSET, NT_ARM_SYSTEM_CALL, &mut nr);
    nr as i64
}

#[cfg(target_arch = "aarch64")]
fn set_syscall_number(child: Pid, nr: i64) {
    let mut nr = nr as libc::c_int;
    regset(child, libc::PTRACE_SETREGSET, NT_ARM_SYSTEM_CALL, &mut nr);
}

#[cfg(target_arch = "aarch64")]
fn set_result(child: Pid, ret: i64) {
    // SAFETY: user_regs_struct is plain data.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    regset(child, libc::PTRACE_GETREGSET, libc::NT_PRSTATUS, &mut regs);
    regs.regs[0] = ret as u64;
    regset(child, libc::PTRACE_SETREGSET, libc::NT_PRSTATUS, &mut regs);
}

#[cfg(target_arch = "aarch64")]
fn regset<T>(child: Pid, request: libc::c_uint, set: libc::c_int, value: &mut T) {
    let mut iov = libc::iovec {
        iov_base: (value as *mut T).cast(),
        iov_len: std::mem::size_of::<T>(),
    };
    // SAFETY: the iovec covers `value`, of the size the regset has.
    let ret = unsafe { libc::ptrace(request, child.as_raw(), set as usize, &mut iov) };
    assert_eq!(ret, 0, "ptrace regset {set:#x}");
}
