//! What a successful shmget did: created a segment, or opened one that
//! existed, and then whose it was.
//!
//! The flags decide most calls: IPC_PRIVATE and IPC_CREAT|IPC_EXCL only
//! ever create, a call without IPC_CREAT only ever opens. IPC_CREAT alone on
//! a key does either. For every successful call the kernel side reads, at
//! return, the segment's owner and creator and which segment the caller's
//! ipc namespace created last: IPC_CREAT alone created the segment when it
//! is that newest one and the caller's process created it. (So a process
//! that opens again, with IPC_CREAT, a segment it created itself, with no
//! segment created in between, is reported as creating it.)

use crate::domain::Op;
use crate::event::RawEvent;

// include/uapi/linux/ipc.h
const IPC_PRIVATE: i32 = 0;
const IPC_CREAT: i32 = 0o1000;
const IPC_EXCL: i32 = 0o2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Created,
    Opened,
    /// IPC_CREAT on a key, and the segment was removed before the call
    /// returned.
    Unknown,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Created => "created",
            Origin::Opened => "opened",
            Origin::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub origin: Origin,
    /// Of an opened segment.
    pub owner_uid: Option<u32>,
    pub creator_pid: Option<u32>,
    /// IPC_CREAT without IPC_EXCL opened a segment that another uid
    /// created: someone may have put it there first (squatting).
    pub squat: bool,
}

/// `None` for a failed call, or one that is not a shmget.
pub fn outcome(event: &RawEvent, op: Op) -> Option<Outcome> {
    if event.ret < 0 || op != Op::Shmget {
        return None;
    }
    let (key, flags) = (event.args.key, event.args.shmflg);
    let found = event.seg_found != 0;
    let origin = if key == IPC_PRIVATE || flags & (IPC_CREAT | IPC_EXCL) == IPC_CREAT | IPC_EXCL {
        Origin::Created
    } else if flags & IPC_CREAT == 0 {
        Origin::Opened
    } else if !found {
        Origin::Unknown
    } else {
        // ipcmni_extend makes the index 24 bits wide instead of 15.
        let id = event.ret as i32;
        let newest = event.newest_idx >= 0
            && [0x7fff, 0xff_ffff]
                .iter()
                .any(|mask| id & mask == event.newest_idx);
        if newest && event.seg_cpid == event.pid {
            Origin::Created
        } else {
            Origin::Opened
        }
    };
    let opened = origin == Origin::Opened && found;
    Some(Outcome {
        origin,
        owner_uid: opened.then_some(event.seg_uid),
        creator_pid: opened.then_some(event.seg_cpid),
        squat: opened
            && key != IPC_PRIVATE
            && flags & (IPC_CREAT | IPC_EXCL) == IPC_CREAT
            && event.seg_cuid != event.uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A successful call by pid 1200, uid 0, for a segment with the given
    /// creator; the segment is the namespace's newest when `newest`.
    fn event(key: i32, shmflg: i32, creator: Option<(u32, u32)>, newest: bool) -> RawEvent {
        let mut event = RawEvent::default();
        event.args.key = key;
        event.args.shmflg = shmflg;
        event.ret = 32769; // index 1
        event.newest_idx = if newest { 1 } else { 7 };
        event.pid = 1200;
        event.uid = 0;
        if let Some((cpid, cuid)) = creator {
            event.seg_found = 1;
            event.seg_cpid = cpid;
            event.seg_cuid = cuid;
            event.seg_uid = cuid;
        }
        event
    }

    fn outcome_of(event: &RawEvent) -> Option<Outcome> {
        outcome(event, Op::Shmget)
    }

    #[test]
    fn flags_decide_most_calls() {
        let created = outcome_of(&event(0, IPC_CREAT | 0o600, Some((1200, 0)), true)).unwrap();
        assert_eq!(
            created,
            Outcome {
                origin: Origin::Created,
                owner_uid: None,
                creator_pid: None,
                squat: false
            }
        );
        let excl = outcome_of(&event(5, IPC_CREAT | IPC_EXCL, Some((1200, 0)), true)).unwrap();
        assert_eq!(excl.origin, Origin::Created);
        let opened = outcome_of(&event(5, 0o600, Some((1300, 1000)), true)).unwrap();
        assert_eq!(
            opened,
            Outcome {
                origin: Origin::Opened,
                owner_uid: Some(1000),
                creator_pid: Some(1300),
                squat: false // without IPC_CREAT nothing is squatted
            }
        );
        let mut failed = event(5, 0, None, false);
        failed.ret = -2;
        assert_eq!(outcome_of(&failed), None);
    }

    #[test]
    fn ipc_creat_alone() {
        // Another uid's segment: opened, squatted, newest or not.
        for newest in [true, false] {
            let squat =
                outcome_of(&event(5, IPC_CREAT | 0o600, Some((1300, 1000)), newest)).unwrap();
            assert_eq!(squat.origin, Origin::Opened);
            assert_eq!(
                (squat.owner_uid, squat.creator_pid, squat.squat),
                (Some(1000), Some(1300), true)
            );
        }
        // Same uid, other process: opened, not squatted.
        let peer = outcome_of(&event(5, IPC_CREAT, Some((1300, 0)), false)).unwrap();
        assert_eq!((peer.origin, peer.squat), (Origin::Opened, false));
        // The newest, created by the caller: created.
        let mine = outcome_of(&event(5, IPC_CREAT, Some((1200, 0)), true)).unwrap();
        assert_eq!(mine.origin, Origin::Created);
        // Created by the caller but not the newest: an earlier segment, opened.
        let earlier = outcome_of(&event(5, IPC_CREAT, Some((1200, 0)), false)).unwrap();
        assert_eq!(earlier.origin, Origin::Opened);
        // Removed before the call returned.
        assert_eq!(
            outcome_of(&event(5, IPC_CREAT, None, true)).unwrap().origin,
            Origin::Unknown
        );
    }
}
