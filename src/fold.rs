//! Folded calls: a thread's identical calls in quick succession are
//! counted in the kernel rather than sent one by one (see the BPF side's
//! `fold_join`). The first call of a run comes as an ordinary event tagged
//! with its fold; the repeats come as fold records of calls (from, to] of
//! that fold, or are read here from the fold's slot once the run has
//! paused for the fold window, or when tracing ends. This keeps, per slot,
//! the fold's first event and how many of its calls are in a line already,
//! so that every call is in exactly one line, whoever reports it.

use std::time::Duration;

use crate::skel::types::{fold_layout, fold_slot, shm_fold};

/// Identical calls further apart than this get lines of their own; a run
/// of repeats gets a line at least this often. Short enough that a person
/// sees a retry loop at once, long enough that a flood costs a few lines
/// a second.
pub const WINDOW: Duration = Duration::from_millis(500);

/// How much longer than the window a slot must be idle before it is read
/// here: the BPF side may still be updating a slot whose run it saw as
/// going on a moment ago.
const MARGIN_NS: u64 = 100_000_000;

pub const SLOTS: usize = fold_layout::FOLD_SLOTS.0 as usize;
const SLOT_BITS: u32 = fold_layout::FOLD_SLOT_BITS.0;

pub use crate::skel::types::fold_slot as RawFoldSlot;
pub use crate::skel::types::shm_fold as RawFold;

// SAFETY: plain integers (shm_args' enums are u32 newtypes), padding spelt
// as fields: any bytes of their size are a valid value.
unsafe impl plain::Plain for shm_fold {}
unsafe impl plain::Plain for fold_slot {}

/// The calls one line stands for: how many, and when the first and the
/// last of them returned (the kernel's boot-time clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

struct Fold {
    id: u32,
    /// The raw bytes of the fold's first event.
    event: Vec<u8>,
    /// Calls of the fold in a line: the first, and those of fold lines.
    accounted: u64,
}

#[derive(Default)]
pub struct Folds {
    /// By slot (cpu * SLOTS + slot): the fold whose first event came last.
    slots: Vec<Option<Fold>>,
}

fn split(tag: u32) -> (usize, u32) {
    ((tag & ((1 << SLOT_BITS) - 1)) as usize, tag >> SLOT_BITS)
}

impl Folds {
    /// An event that starts the fold `tag` (0: none) was written.
    pub fn started(&mut self, tag: u32, event: &[u8]) {
        if tag == 0 {
            return;
        }
        let (slot, id) = split(tag);
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let fold = self.slots[slot].get_or_insert_with(|| Fold {
            id,
            event: Vec::new(),
            accounted: 1,
        });
        fold.id = id;
        fold.event.clear();
        fold.event.extend_from_slice(event);
        fold.accounted = 1;
    }

    /// The line a fold record makes, if any of its calls are not in one
    /// yet: the fold's first event and the calls it stands for.
    pub fn record(&mut self, raw: &RawFold) -> Option<(&[u8], Span)> {
        let (slot, id) = split(raw.fold_tag);
        let fold = self.slots.get_mut(slot)?.as_mut().filter(|f| f.id == id)?;
        let span = take(fold, raw.to, raw.first_ns, raw.last_ns)?;
        Some((&fold.event, span))
    }

    /// The line a fold still pending in the kernel makes: one that has
    /// been idle for the window (whose run is over: a repeat now starts a
    /// new fold), or any, at the end (`now` None).
    pub fn pending(
        &mut self,
        slot: usize,
        state: &RawFoldSlot,
        now: Option<u64>,
    ) -> Option<(&[u8], Span)> {
        let fold = self
            .slots
            .get_mut(slot)?
            .as_mut()
            .filter(|f| f.id == state.fold_id)?;
        if let Some(now) = now {
            let window = WINDOW.as_nanos() as u64;
            if now.saturating_sub(state.last_ns) < window + MARGIN_NS {
                return None;
            }
        }
        let span = take(fold, state.calls, state.pending_ns, state.last_ns)?;
        Some((&fold.event, span))
    }
}

/// Calls up to `to` of `fold` not yet in a line, now accounted for.
fn take(fold: &mut Fold, to: u64, first_ns: u64, last_ns: u64) -> Option<Span> {
    let count = to.checked_sub(fold.accounted).filter(|&n| n > 0)?;
    fold.accounted = to;
    // `first_ns` is of the first call the kernel had not reported; where
    // a line here took some of those already, only a single call's time
    // is known for sure.
    let first_ns = if count == 1 {
        last_ns
    } else {
        first_ns.min(last_ns)
    };
    Some(Span {
        count,
        first_ns,
        last_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(slot: u32, id: u32) -> u32 {
        id << SLOT_BITS | slot
    }

    fn record(tag: u32, from: u64, to: u64) -> RawFold {
        RawFold {
            first_ns: 10 * from,
            last_ns: 10 * to,
            from,
            to,
            fold_tag: tag,
            reserved: 0,
        }
    }

    /// Every call is in one line exactly, whether the BPF side's record or
    /// the read of an idle slot reports it first, and whatever the order.
    #[test]
    fn each_call_is_counted_once() {
        let mut folds = Folds::default();
        folds.started(tag(5, 7), b"first");
        let (event, span) = folds.record(&record(tag(5, 7), 1, 40)).unwrap();
        assert_eq!((event, span.count), (&b"first"[..], 39));
        let state = RawFoldSlot {
            calls: 50,
            reported: 40,
            last_ns: 1_000,
            pending_ns: 500,
            fold_id: 7,
            ..Default::default()
        };
        let idle = Some(1_000 + WINDOW.as_nanos() as u64 + MARGIN_NS);
        assert!(folds.pending(5, &state, Some(1_001)).is_none(), "not idle");
        let (_, span) = folds.pending(5, &state, idle).unwrap();
        assert_eq!(
            span,
            Span {
                count: 10,
                first_ns: 500,
                last_ns: 1_000
            }
        );
        // The BPF side closes it later with the same calls: nothing new.
        assert!(folds.record(&record(tag(5, 7), 40, 50)).is_none());
        // One more call raced in: that one alone, at its time.
        let (_, span) = folds.record(&record(tag(5, 7), 40, 51)).unwrap();
        assert_eq!((span.count, span.first_ns), (1, 510));
        // Another fold's record, or an unknown slot's, makes no line.
        assert!(folds.record(&record(tag(5, 8), 1, 60)).is_none());
        assert!(folds.record(&record(tag(9, 7), 1, 60)).is_none());
        // A new fold in the slot starts from its first event.
        folds.started(tag(5, 8), b"second");
        let (event, span) = folds.record(&record(tag(5, 8), 1, 3)).unwrap();
        assert_eq!((event, span.count), (&b"second"[..], 2));
    }
}
