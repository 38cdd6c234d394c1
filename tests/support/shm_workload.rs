//! shm-workload: makes shmget calls by each entry path, for the tests, the
//! benchmark and the VM kernel matrix. Not part of the tracer.
//!
//! usage: shm-workload [--comm NAME] [--wait] [--keep] STEP...
//!   native:KEY:SIZE:FLAGS       x86_64 shmget
//!   ia32-shmget:KEY:SIZE:FLAGS  i386 shmget (395) through int $0x80
//!   ia32-ipc:KEY:SIZE:FLAGS     i386 ipc(SHMGET) (117/23) through int $0x80
//!   ia32-ipc-shmctl:ID          i386 ipc(SHMCTL, IPC_STAT) on a bad buffer: not a shmget
//!   loop:N                      N x86_64 shmget calls for a missing key, timed
//! Numbers are decimal, 0x hex or 0o octal. Each step prints one JSON line
//! with what the kernel returned. --wait reads one line from stdin first,
//! so a tracer can be started with this process's pid. Segments created
//! are removed at exit, unless --keep (the caller removes them then).

#[path = "syscalls.rs"]
mod syscalls;

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Instant;

use syscalls::*;

/// A key no test creates.
const MISSING_KEY: i32 = 0x7e57_0000;

fn number(s: &str) -> Option<i64> {
    if let Some(hex) = s.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = s.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else {
        s.parse().ok()
    }
}

struct Created {
    ids: Vec<i64>,
    clear_on_drop: bool,
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.clear_on_drop {
            for id in self.ids.drain(..) {
                remove_segment(id);
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mut created = Created {
        ids: vec![],
        clear_on_drop: true,
    };
    let pid = std::process::id();
    let tid = gettid();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--comm" => set_thread_comm(args.next().unwrap_or_default().as_bytes()),
            "--keep" => created.clear_on_drop = false,
            "--wait" => {
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
            }
            step => {
                let parts: Vec<&str> = step.split(':').collect();
                let n = |i: usize| parts.get(i).and_then(|s| number(s));
                let ret = match (parts[0], n(1), n(2), n(3)) {
                    ("native", Some(k), Some(s), Some(f)) => {
                        native_shmget(k as i32, s as u64, f as i32)
                    }
                    ("ia32-shmget", Some(k), Some(s), Some(f)) => {
                        ia32_shmget(k as i32, s as u32, f as i32)
                    }
                    ("ia32-ipc", Some(k), Some(s), Some(f)) => {
                        ia32_ipc_shmget(k as i32, s as u32, f as i32)
                    }
                    ("ia32-ipc-shmctl", Some(id), _, _) => {
                        ia32_ipc(IPCCALL_SHMCTL, id as u32, IPC_STAT as u32, 0)
                    }
                    ("loop", Some(count), _, _) => {
                        let start = Instant::now();
                        for _ in 0..count {
                            native_shmget(MISSING_KEY, 0, 0);
                        }
                        let ns = start.elapsed().as_nanos() as f64 / count.max(1) as f64;
                        println!("{{\"pid\":{pid},\"tid\":{tid},\"calls\":{count},\"ns_per_call\":{ns:.1}}}");
                        continue;
                    }
                    _ => {
                        eprintln!("shm-workload: bad step {step:?} (see the source for usage)");
                        return ExitCode::from(2);
                    }
                };
                if ret >= 0 && parts[0] != "ia32-ipc-shmctl" {
                    created.ids.push(ret);
                }
                println!(
                    "{{\"pid\":{pid},\"tid\":{tid},\"step\":\"{}\",\"ret\":{ret}}}",
                    parts[0]
                );
            }
        }
    }
    ExitCode::SUCCESS
}
