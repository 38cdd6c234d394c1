//! What a traced call is, in the tool's own terms: the operation, the ABI
//! and the system call that carried it, and the attach modes. Each is
//! decoded from the BPF side's raw value here and only here; a raw value
//! this build does not know is an error, never a guess.

use std::fmt;

use crate::skel::types::{attach_addr_source, shm_abi, shm_call, shm_op};

/// A System V shared-memory operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Shmget,
    Shmat,
    Shmdt,
    Shmctl,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Shmget, Op::Shmat, Op::Shmdt, Op::Shmctl];

    pub fn name(self) -> &'static str {
        match self {
            Op::Shmget => "shmget",
            Op::Shmat => "shmat",
            Op::Shmdt => "shmdt",
            Op::Shmctl => "shmctl",
        }
    }

    /// Its value on the BPF side, which selects it as bit 1 << value.
    pub fn raw(self) -> u32 {
        match self {
            Op::Shmget => shm_op::OP_SHMGET.0,
            Op::Shmat => shm_op::OP_SHMAT.0,
            Op::Shmdt => shm_op::OP_SHMDT.0,
            Op::Shmctl => shm_op::OP_SHMCTL.0,
        }
    }

    pub fn from_raw(raw: shm_op) -> Result<Op, UnknownRaw> {
        Op::ALL
            .into_iter()
            .find(|op| op.raw() == raw.0)
            .ok_or(UnknownRaw("operation", raw.0))
    }
}

/// The system call table a call came through. x32 calls (the number with
/// bit 30 set, on kernels with CONFIG_X86_X32_ABI) run the x86_64
/// functions, so they have no entry path of their own. Aarch64 and Arm
/// (AArch32 callers) are arm64's; names as the kernel's audit
/// architectures call them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    X86_64,
    Ia32,
    X32,
    Aarch64,
    Arm,
}

impl Abi {
    pub const ALL: [Abi; 5] = [Abi::X86_64, Abi::Ia32, Abi::X32, Abi::Aarch64, Abi::Arm];

    /// The 64-bit ABI of the architecture this binary is built for.
    #[cfg(target_arch = "x86_64")]
    pub const NATIVE: Abi = Abi::X86_64;
    #[cfg(target_arch = "aarch64")]
    pub const NATIVE: Abi = Abi::Aarch64;

    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::Ia32 => "ia32",
            Abi::X32 => "x32",
            Abi::Aarch64 => "aarch64",
            Abi::Arm => "arm",
        }
    }

    fn raw(self) -> u32 {
        match self {
            Abi::X86_64 => shm_abi::ABI_X86_64.0,
            Abi::Ia32 => shm_abi::ABI_IA32.0,
            Abi::X32 => shm_abi::ABI_X32.0,
            Abi::Aarch64 => shm_abi::ABI_AARCH64.0,
            Abi::Arm => shm_abi::ABI_ARM.0,
        }
    }

    pub fn from_raw(raw: shm_abi) -> Result<Abi, UnknownRaw> {
        Abi::ALL
            .into_iter()
            .find(|abi| abi.raw() == raw.0)
            .ok_or(UnknownRaw("ABI", raw.0))
    }
}

/// Which system call carried the operation: its own, or the ipc()
/// multiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    Direct,
    Ipc,
}

impl Carrier {
    pub fn from_raw(raw: shm_call) -> Result<Carrier, UnknownRaw> {
        match raw {
            shm_call::CALL_DIRECT => Ok(Carrier::Direct),
            shm_call::CALL_IPC => Ok(Carrier::Ipc),
            _ => Err(UnknownRaw("call", raw.0)),
        }
    }
}

/// A raw value from the BPF side that this build has no name for: the
/// object and the program disagree, which is a bug, not a call to guess at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRaw(pub &'static str, pub u32);

impl fmt::Display for UnknownRaw {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "unknown {} {} from the BPF program", self.0, self.1)
    }
}

/// How the kernel is hooked (see `attach`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Auto,
    Kprobe,
    Fentry,
    Tracepoint,
}

impl AttachMode {
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Auto => "auto",
            AttachMode::Kprobe => "kprobe",
            AttachMode::Fentry => "fentry",
            AttachMode::Tracepoint => "tracepoint",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_round_trip_and_unknown_ones_are_errors() {
        for op in Op::ALL {
            assert_eq!(Op::from_raw(shm_op(op.raw())), Ok(op));
        }
        for abi in Abi::ALL {
            assert_eq!(Abi::from_raw(shm_abi(abi.raw())), Ok(abi));
        }
        assert_eq!(Op::from_raw(shm_op(99)), Err(UnknownRaw("operation", 99)));
        assert_eq!(Abi::from_raw(shm_abi(7)), Err(UnknownRaw("ABI", 7)));
        assert_eq!(Carrier::from_raw(shm_call(5)), Err(UnknownRaw("call", 5)));
        assert_eq!(
            UnknownRaw("ABI", 7).to_string(),
            "unknown ABI 7 from the BPF program"
        );
    }
}

/// Where a shmat's attach address comes from, for a shmat that attached
/// the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachAddrFrom {
    /// From the kernel: shmat's return value, or ipc(SHMAT)'s do_shmat.
    Kernel,
    /// ipc(SHMAT) where the mode cannot see do_shmat (tracepoint): read
    /// back from the caller's memory after the call, where another thread
    /// may have changed it.
    User,
    /// ipc(SHMAT) attached the segment but failed with EFAULT writing the
    /// address back, in a mode that cannot see do_shmat.
    Unknown,
}

impl AttachAddrFrom {
    pub fn name(self) -> &'static str {
        match self {
            AttachAddrFrom::Kernel => "kernel",
            AttachAddrFrom::User => "user",
            AttachAddrFrom::Unknown => "unknown",
        }
    }

    pub fn address_known(self) -> bool {
        self != AttachAddrFrom::Unknown
    }

    /// None: no segment was attached.
    pub fn from_raw(raw: attach_addr_source) -> Result<Option<AttachAddrFrom>, UnknownRaw> {
        match raw {
            attach_addr_source::ADDR_NONE => Ok(None),
            attach_addr_source::ADDR_KERNEL => Ok(Some(AttachAddrFrom::Kernel)),
            attach_addr_source::ADDR_USER => Ok(Some(AttachAddrFrom::User)),
            attach_addr_source::ADDR_UNKNOWN => Ok(Some(AttachAddrFrom::Unknown)),
            other => Err(UnknownRaw("attach address source", other.0)),
        }
    }
}
