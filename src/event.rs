//! Events as they come out of the ring buffer: the skeleton's `shm_event`,
//! checked for size and alignment, with wall-clock time attached.

use nix::time::{clock_gettime, ClockId};

use crate::domain::Op;
pub use crate::skel::types::shm_event as RawEvent;
use crate::skel::types::{shm_abi, shm_call, shm_op};

// SAFETY: shm_event is plain old data (integers, byte arrays, and the C
// enums as newtypes of u32; padding included as explicit fields), so any
// bytes of its size are a valid value.
unsafe impl plain::Plain for RawEvent {}

/// Converts the kernel's boot-time stamps (bpf_ktime_get_boot_ns, which
/// keeps counting through suspend) to wall-clock time. The offset is read
/// once at start: a clock change while tracing is not followed, as in
/// libbpf-tools.
#[derive(Clone, Copy)]
pub struct WallClock {
    realtime_minus_boottime_ns: i128,
}

impl WallClock {
    pub fn now() -> WallClock {
        let ns = |id| {
            let ts = clock_gettime(id).expect("CLOCK_REALTIME and CLOCK_BOOTTIME exist on Linux");
            ts.tv_sec() as i128 * 1_000_000_000 + ts.tv_nsec() as i128
        };
        WallClock {
            realtime_minus_boottime_ns: ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_BOOTTIME),
        }
    }

    pub fn unix_ns(&self, boot_ns: u64) -> u64 {
        (boot_ns as i128 + self.realtime_minus_boottime_ns).max(0) as u64
    }
}

/// One decoded shmget: the raw event and its wall-clock time.
pub struct Event<'a> {
    pub raw: &'a RawEvent,
    pub unix_ns: u64,
}

impl<'a> Event<'a> {
    /// `None` when the sample is too short or misaligned to be an event.
    pub fn from_bytes(data: &'a [u8], clock: &WallClock) -> Option<Event<'a>> {
        let raw = plain::from_bytes::<RawEvent>(data).ok()?;
        Some(Event {
            raw,
            unix_ns: clock.unix_ns(raw.boot_ns),
        })
    }

    /// The thread's name as the kernel has it: up to 15 bytes, any bytes.
    pub fn comm(&self) -> &[u8] {
        comm_bytes(&self.raw.comm)
    }

    pub fn abi(&self) -> &'static str {
        match self.raw.args.abi {
            shm_abi::ABI_IA32 => "ia32",
            _ => "x86_64",
        }
    }

    pub fn op(&self) -> Op {
        match self.raw.args.op {
            shm_op::OP_SHMAT => Op::Shmat,
            shm_op::OP_SHMDT => Op::Shmdt,
            shm_op::OP_SHMCTL => Op::Shmctl,
            _ => Op::Shmget,
        }
    }

    /// The system call that carried it: the operation's own, or `ipc`.
    pub fn call(&self) -> &'static str {
        match self.raw.args.call {
            shm_call::CALL_IPC => "ipc",
            _ => self.op().name(),
        }
    }

    /// Which of the per-operation fields this event has.
    pub fn has(&self, field: Field) -> bool {
        let op = self.op();
        match field {
            Field::Key | Field::Size | Field::Mode => op == Op::Shmget,
            Field::Shmflg => matches!(op, Op::Shmget | Op::Shmat),
            Field::Shmid => matches!(op, Op::Shmat | Op::Shmctl),
            Field::Cmd => op == Op::Shmctl,
            Field::Addr => matches!(op, Op::Shmat | Op::Shmdt),
            Field::AttachAddr => op == Op::Shmat && self.raw.ret >= 0,
        }
    }
}

/// The fields that only some operations have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Key,
    Size,
    Mode,
    /// and the decoded flags
    Shmflg,
    Shmid,
    Cmd,
    Addr,
    AttachAddr,
}

fn comm_bytes(comm: &[i8; 16]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment.
    let bytes: &[u8; 16] = unsafe { &*(comm as *const [i8; 16] as *const [u8; 16]) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..len]
}
