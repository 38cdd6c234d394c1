//! Least privilege: once the programs are loaded and attached and the ring
//! buffer is mapped, the tracer keeps only the capabilities its reading side
//! uses, so a bug in it (it parses what any process on the host chose to
//! name itself) holds as little power as can be.
//!
//! What stays, where the process had it:
//! - CAP_BPF: reading the loss counters and the probes' miss counts uses
//!   bpf(2), which kernels before 6.4 refuse without it when unprivileged
//!   BPF is disabled (Debian's default);
//! - CAP_DAC_READ_SEARCH: opening a cgroup by its id (open_by_handle_at),
//!   to name the cgroup of a call.

use std::io;

use nix::libc;

const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_BPF: u32 = 39;
/// The capabilities kept, as a 64-bit set.
pub const KEPT: u64 = 1 << CAP_DAC_READ_SEARCH | 1 << CAP_BPF;

/// include/uapi/linux/capability.h, version 3: two 32-bit words a set.
#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

/// Drops every capability but [`KEPT`] from the effective, permitted and
/// inheritable sets (and so the ambient one).
pub fn drop_all_but_kept() -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with a v3 header fills two Data words.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let permitted = u64::from(data[0].permitted) | u64::from(data[1].permitted) << 32;
    let kept = permitted & KEPT;
    for (word, data) in data.iter_mut().enumerate() {
        let bits = (kept >> (32 * word)) as u32;
        *data = Data {
            effective: bits,
            permitted: bits,
            inheritable: 0,
        };
    }
    // SAFETY: capset with a v3 header and two Data words; it only lowers.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
