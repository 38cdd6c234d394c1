//! The ways into the kernel that shmget-trace must see, as plain functions:
//! the x86_64 syscall, and the i386 `shmget` and `ipc()` syscalls made with
//! `int $0x80` from this 64-bit process (CONFIG_IA32_EMULATION). Shared by
//! the integration tests and the `shm-workload` binary. Each returns what
//! the kernel returned: an id, or a negative errno.

#![allow(dead_code)]

use nix::libc;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const SHM_HUGETLB: i32 = 0o4000;
pub const SHM_HUGE_2MB: i32 = 21 << 26;
pub const IPC_RMID: i32 = 0;
pub const IPC_STAT: i32 = 2;
pub const IPC_64: i32 = 0x100;
pub const SHM_LOCK: i32 = 11;
pub const SHM_RDONLY: i32 = 0o10000;

/// arch/x86/entry/syscalls/syscall_32.tbl
pub const IA32_NR_IPC: u32 = 117;
pub const IA32_NR_SHMGET: u32 = 395;
pub const IA32_NR_SHMCTL: u32 = 396;
pub const IA32_NR_SHMAT: u32 = 397;
pub const IA32_NR_SHMDT: u32 = 398;
/// ipc() call numbers, include/uapi/linux/ipc.h
pub const IPCCALL_SHMAT: u32 = 21;
pub const IPCCALL_SHMDT: u32 = 22;
pub const IPCCALL_SHMGET: u32 = 23;
pub const IPCCALL_SHMCTL: u32 = 24;

/// A raw x86_64 syscall, -errno on failure.
fn native(ret: i64) -> i64 {
    if ret == -1 {
        -(nix::errno::Errno::last_raw() as i64)
    } else {
        ret
    }
}

/// x86_64 syscall `nr` (all 64 bits of rax, as the caller gives them).
pub fn raw_syscall3(nr: u64, a: u64, b: u64, c: u64) -> i64 {
    // SAFETY: the calls made through this take no pointers.
    native(unsafe { libc::syscall(nr as libc::c_long, a, b, c) })
}

/// The x32 ABI's syscall numbers: the x32 table's number with this bit.
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;

pub fn native_shmget(key: i32, size: u64, shmflg: i32) -> i64 {
    // SAFETY: shmget takes no pointers.
    native(unsafe { libc::syscall(libc::SYS_shmget, key, size, shmflg) })
}

/// Returns the address attached at.
pub fn native_shmat(shmid: i64, shmflg: i32) -> i64 {
    // SAFETY: a new mapping at an address the kernel chooses.
    native(unsafe { libc::syscall(libc::SYS_shmat, shmid, 0, shmflg) })
}

pub fn native_shmdt(addr: i64) -> i64 {
    // SAFETY: detaches a mapping only this test made.
    native(unsafe { libc::syscall(libc::SYS_shmdt, addr) })
}

/// `buf` is an address of at least 4 KiB, or 0 for commands without one.
pub fn native_shmctl(shmid: i64, cmd: i32, buf: u64) -> i64 {
    // SAFETY: the buffer is large enough for struct shmid_ds.
    native(unsafe { libc::syscall(libc::SYS_shmctl, shmid, cmd, buf) })
}

pub fn ia32_shmat(shmid: i64, shmflg: i32) -> i64 {
    // The 32-bit call maps below 4 GiB: the address fills the 32-bit result.
    let ret = int80(IA32_NR_SHMAT, shmid as u32, 0, shmflg as u32, 0, 0);
    if (-4095..0).contains(&ret) {
        ret
    } else {
        ret as u32 as i64
    }
}

pub fn ia32_shmdt(addr: i64) -> i64 {
    int80(IA32_NR_SHMDT, addr as u32, 0, 0, 0, 0)
}

pub fn ia32_shmctl(shmid: i64, cmd: i32, buf: u32) -> i64 {
    int80(IA32_NR_SHMCTL, shmid as u32, cmd as u32, buf, 0, 0)
}

/// ipc(SHMAT): returns 0 and writes the address to `raddr` (32-bit).
pub fn ia32_ipc_shmat(shmid: i64, shmflg: i32, raddr: u32) -> i64 {
    ia32_ipc_shmat_at(shmid, 0, shmflg, raddr)
}

/// ipc(SHMAT) at `shmaddr` (0: any), the address written to `raddr`.
pub fn ia32_ipc_shmat_at(shmid: i64, shmaddr: u32, shmflg: i32, raddr: u32) -> i64 {
    int80(
        IA32_NR_IPC,
        IPCCALL_SHMAT,
        shmid as u32,
        shmflg as u32,
        raddr,
        shmaddr,
    )
}

pub const SHM_REMAP: i32 = 0o40000;

/// Where the segment `shmid` is mapped in this process (/proc/self/maps:
/// a SysV segment's inode is its id).
pub fn segment_mappings(shmid: i64) -> Vec<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, inode, path) = (fields.first()?, fields.get(4)?, fields.get(5)?);
            (path.starts_with("/SYSV") && inode.parse::<i64>().ok()? == shmid)
                .then(|| u64::from_str_radix(range.split('-').next()?, 16).ok())?
        })
        .collect()
}

pub fn ia32_ipc_shmdt(addr: i64) -> i64 {
    int80(IA32_NR_IPC, IPCCALL_SHMDT, 0, 0, 0, addr as u32)
}

pub fn ia32_ipc_shmctl(shmid: i64, cmd: i32, buf: u32) -> i64 {
    int80(
        IA32_NR_IPC,
        IPCCALL_SHMCTL,
        shmid as u32,
        cmd as u32,
        0,
        buf,
    )
}

/// 4 KiB that 32-bit calls can point at (mmap MAP_32BIT; arm64 has no
/// such flag: the first free page from 256 MiB up); never unmapped, it
/// goes with the process.
pub fn low_buffer() -> u32 {
    #[cfg(target_arch = "x86_64")]
    let (mut hint, low) = (0usize, libc::MAP_32BIT);
    #[cfg(not(target_arch = "x86_64"))]
    let (mut hint, low) = (0x1000_0000usize, libc::MAP_FIXED_NOREPLACE);
    let addr = loop {
        // SAFETY: a new anonymous mapping, where nothing is mapped yet.
        let addr = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | low,
                -1,
                0,
            )
        };
        if addr != libc::MAP_FAILED || hint == 0 || hint >= 1 << 32 {
            break addr;
        }
        hint += 4096; // taken (EEXIST): the next page
    };
    assert!(
        addr != libc::MAP_FAILED && (addr as u64) < 1 << 32,
        "MAP_32BIT mapping"
    );
    addr as u64 as u32
}

/// Reads the 32-bit value at a low buffer.
pub fn read_low(addr: u32) -> u32 {
    // SAFETY: `addr` is a low_buffer() mapping.
    unsafe { std::ptr::read_volatile(addr as u64 as *const u32) }
}

pub fn ia32_shmget(key: i32, size: u32, shmflg: i32) -> i64 {
    int80(IA32_NR_SHMGET, key as u32, size, shmflg as u32, 0, 0)
}

pub fn ia32_ipc(call: u32, first: u32, second: u32, third: u32) -> i64 {
    int80(IA32_NR_IPC, call, first, second, third, 0)
}

pub fn ia32_ipc_shmget(key: i32, size: u32, shmflg: i32) -> i64 {
    ia32_ipc(IPCCALL_SHMGET, key as u32, size, shmflg as u32)
}

/// An i386 system call: eax=nr, ebx, ecx, edx, esi, edi. rbx is reserved
/// by Rust, so it is swapped in and out around the trap; the kernel does
/// not preserve r8-r11 across `int $0x80`.
#[cfg(target_arch = "x86_64")]
pub fn int80(nr: u32, bx: u32, cx: u32, dx: u32, si: u32, di: u32) -> i64 {
    let ret: u64;
    // SAFETY: the calls made through this take no pointers, or ones to
    // memory the caller owns; every register the kernel may change is
    // declared.
    unsafe {
        std::arch::asm!(
            "xchg rbx, {bx}",
            "int 0x80",
            "xchg rbx, {bx}",
            bx = inout(reg) u64::from(bx) => _,
            inlateout("rax") u64::from(nr) => ret,
            in("rcx") u64::from(cx),
            in("rdx") u64::from(dx),
            in("rsi") u64::from(si),
            in("rdi") u64::from(di),
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
        );
    }
    // The i386 ABI returns a 32-bit value in eax.
    i64::from(ret as u32 as i32)
}

/// `int $0x80` exists only on x86_64: the tests that make i386 calls run
/// only there (`Test::only_on`), so this is never called elsewhere.
#[cfg(not(target_arch = "x86_64"))]
pub fn int80(nr: u32, _: u32, _: u32, _: u32, _: u32, _: u32) -> i64 {
    panic!("i386 system call {nr}: int $0x80 is x86_64's");
}

/// Removes a segment (IPC_RMID); true if it was there.
pub fn remove_segment(id: i64) -> bool {
    // SAFETY: IPC_RMID does not read the buffer.
    unsafe { libc::shmctl(id as i32, IPC_RMID, std::ptr::null_mut()) == 0 }
}

pub fn gettid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// Sets the calling thread's comm (truncated by the kernel to 15 bytes).
pub fn set_thread_comm(name: &[u8]) {
    let mut buf = [0u8; 16];
    let len = name.len().min(15);
    buf[..len].copy_from_slice(&name[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr()) };
}
