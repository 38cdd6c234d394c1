//! Events as they come out of the ring buffer: the skeleton's `shm_event`,
//! and the clock that turns their boot-time stamps into wall-clock time.

use nix::time::{clock_gettime, ClockId};

use crate::domain::UnknownRaw;
use crate::fold::RawFold;

pub use crate::skel::types::shm_event as RawEvent;
pub use crate::skel::types::shm_failure as RawFailure;

// SAFETY: shm_event and shm_failure are plain old data (integers, byte
// arrays, and the C enums as newtypes of u32; padding included as explicit
// fields), so any bytes of their size are a valid value.
unsafe impl plain::Plain for RawEvent {}
unsafe impl plain::Plain for RawFailure {}

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

    /// The boot-time clock now, as BPF stamps events.
    pub fn boot_ns_now(&self) -> u64 {
        let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME exists on Linux");
        ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
    }

    pub fn unix_ns(&self, boot_ns: u64) -> u64 {
        (boot_ns as i128 + self.realtime_minus_boottime_ns).max(0) as u64
    }
}

/// Where in a raw event's bytes its time stamp (`boot_ns`) lies.
pub const STAMP: std::ops::Range<usize> = {
    let start = std::mem::offset_of!(RawEvent, boot_ns);
    start..start + std::mem::size_of::<u64>()
};

/// A ring-buffer record: an event, with a failure's details where the
/// record has them (a `shm_failure_event`: the event, then its
/// `shm_failure`), or a fold's calls. Told apart by length alone.
pub enum RawRecord<'a> {
    Event(&'a RawEvent, Option<&'a RawFailure>),
    Fold(&'a RawFold),
}

const EVENT: usize = std::mem::size_of::<RawEvent>();
const FAILURE_EVENT: usize = EVENT + std::mem::size_of::<RawFailure>();
const FOLD: usize = std::mem::size_of::<RawFold>();
const _: () = assert!(FOLD != EVENT && FOLD != FAILURE_EVENT && EVENT != FAILURE_EVENT);

/// The record in a ring buffer's bytes; an error for a record of another
/// size, or misaligned.
pub fn raw_record(data: &[u8]) -> Result<RawRecord<'_>, UnknownRaw> {
    let misaligned = |_| UnknownRaw("record alignment", 0);
    let event = |data| plain::from_bytes::<RawEvent>(data).map_err(misaligned);
    Ok(match data.len() {
        EVENT => RawRecord::Event(event(data)?, None),
        FAILURE_EVENT => RawRecord::Event(
            event(&data[..EVENT])?,
            Some(plain::from_bytes::<RawFailure>(&data[EVENT..]).map_err(misaligned)?),
        ),
        FOLD => RawRecord::Fold(plain::from_bytes::<RawFold>(data).map_err(misaligned)?),
        n => return Err(UnknownRaw("record size", n as u32)),
    })
}

/// The raw event in a ring-buffer record (see [`raw_record`]); an error
/// for a fold's record.
pub fn raw_event(data: &[u8]) -> Result<(&RawEvent, Option<&RawFailure>), UnknownRaw> {
    match raw_record(data)? {
        RawRecord::Event(event, failure) => Ok((event, failure)),
        RawRecord::Fold(_) => Err(UnknownRaw("record size", data.len() as u32)),
    }
}

/// A raw event's bytes, as the ring buffer hands them over, with a
/// failure's details where given (for tests).
#[cfg(test)]
pub fn bytes_of(raw: &RawEvent, failure: Option<&RawFailure>) -> Vec<u8> {
    // SAFETY: the skeleton's types spell their padding as fields, so every
    // byte of a value is initialized.
    let mut bytes = unsafe { plain::as_bytes(raw) }.to_vec();
    if let Some(failure) = failure {
        bytes.extend_from_slice(unsafe { plain::as_bytes(failure) });
    }
    bytes
}
