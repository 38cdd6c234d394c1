//! One call, decoded once: every field the output formats show, from the
//! raw ring-buffer event. The table, TSV and JSON writers only pick and lay
//! out these values; none of them decodes anything itself.

use serde::{Serialize, Serializer};

use crate::cgroup::CgroupPaths;
use crate::decode::{self, TimeFormatter, TimeMode};
use crate::domain::{Abi, AttachAddrFrom, Carrier, Op, UnknownRaw};
use crate::event::{self, WallClock};
use crate::fold::Span;
use crate::reason::{self, Reason};
use crate::{cgroup, segment};

/// A value shown as `0x` hex: flags and addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub u64);

/// A System V key, as ipcs shows it: `0x%08x` (IPC_PRIVATE is 0x00000000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(pub i32);

/// Permission bits: `0600` in text; a number in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Mode(pub u32);

impl Hex {
    pub fn write(self, out: &mut Vec<u8>) {
        decode::write_hex(out, self.0, 0);
    }
}

impl Key {
    pub fn write(self, out: &mut Vec<u8>) {
        decode::write_key(out, self.0);
    }
}

impl Mode {
    pub fn write(self, out: &mut Vec<u8>) {
        decode::write_mode(out, self.0);
    }
}

/// Serializes a value as the text its `write` gives.
fn as_text<S: Serializer>(
    write: impl FnOnce(&mut Vec<u8>),
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut text = Vec::with_capacity(24);
    write(&mut text);
    serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        as_text(|out| self.write(out), serializer)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        as_text(|out| self.write(out), serializer)
    }
}

impl Serialize for Abi {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One traced call. Field order and names are the TSV columns and JSON
/// keys; `None` is a field the call does not have (`-` in TSV, left out of
/// JSON), except `errno`, which JSON gives as null on success. Text fields
/// are escaped already: none holds a tab, newline or control byte.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// RFC 3339 with nanoseconds, UTC or local, or seconds since the
    /// start (`decode::TimeFormatter`).
    pub time: &'a str,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: &'a str,
    pub abi: Abi,
    /// The system call that carried it: the operation's own name, or `ipc`.
    pub call: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmflg: Option<Hex>,
    /// shmget's or shmat's flags by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Segment id, address, 0, or -errno.
    pub ret: i64,
    /// `ret` is the address a shmat attached at: hex in text, as strace
    /// shows it (a JSON number has no base).
    #[serde(skip)]
    pub ret_is_address: bool,
    pub errno: Option<&'static str>,
    pub cgroup: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<&'a str>,
    pub pidns: u32,
    pub mntns: u32,
    /// What a successful shmget did (see `segment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub squat: Option<bool>,
    #[serde(rename = "event")]
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmid: Option<i32>,
    /// shmctl's command by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<Hex>,
    /// Where a shmat attached the segment, where that is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_addr: Option<Hex>,
    /// Present when a shmat attached the segment: where `attach_addr`
    /// comes from (`kernel`, `user`), or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_addr_from: Option<&'static str>,
    /// The calls this line stands for: 1, or a fold's repeats (`fold`).
    pub count: u64,
    /// Of a fold line: when the last call it covers returned (`time` is
    /// the first's); none for a single call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<&'a str>,
    /// The inode number of the caller's ipc namespace.
    pub ipcns: u32,
    /// Of a caller in a container: whether it shares the host's ipc
    /// namespace (the one of pid 1 as the tracer sees it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ipc: Option<bool>,
    /// Why a call failed (`reason`); absent on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'static str>,
    /// Not a field: changes whenever any field but `time` differs from
    /// the previous record's, so that a writer may reuse text meanwhile.
    #[serde(skip)]
    pub generation: u64,
}

/// A text decoded from one input, kept while that input repeats (a flood
/// repeats names, flags and commands): the decoder is a pure function of
/// the input, so equal inputs give equal text.
struct Memo<K> {
    input: Option<K>,
    text: String,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Memo {
            input: None,
            text: String::new(),
        }
    }
}

impl<K: PartialEq + Copy> Memo<K> {
    fn get(&mut self, input: K, decode: impl FnOnce(&mut Vec<u8>, K)) -> &str {
        if self.input != Some(input) {
            let mut bytes = std::mem::take(&mut self.text).into_bytes();
            bytes.clear();
            decode(&mut bytes, input);
            // The decoders write ASCII or escaped, valid UTF-8 only.
            self.text = String::from_utf8(bytes).unwrap_or_default();
            self.input = Some(input);
        }
        &self.text
    }
}

/// Text decoded for the current record.
#[derive(Default)]
struct Scratch {
    time: String,
    last_time: String,
    comm: Memo<[i8; 16]>,
    flags: Memo<(Op, i32)>,
    cmd: Memo<i32>,
}

/// Turns raw events into records, keeping what outlives one event: the
/// clock offset, the last second formatted, the cgroup paths seen.
pub struct Decoder {
    clock: WallClock,
    time: TimeFormatter,
    cgroups: CgroupPaths,
    scratch: Scratch,
    /// What the last record was made of, but its time: the raw event's
    /// bytes with its stamp cleared, and whether its cgroup's path was
    /// known.
    previous: (Vec<u8>, bool),
    generation: u64,
    /// The last record's reason: made anew only when the record changes.
    reason: Option<Reason>,
    /// See [`host_ipc_namespace`].
    host_ipcns: Option<u64>,
}

/// The host's ipc namespace: pid 1's, as the tracer sees it (read at
/// start, before capabilities are dropped). The tracer is assumed to run
/// in the host's pid namespace, as it must to see the host's processes;
/// its own namespace where pid 1's cannot be read.
fn host_ipc_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    ["/proc/1/ns/ipc", "/proc/self/ns/ipc"]
        .iter()
        .find_map(|path| std::fs::metadata(path).ok())
        .map(|m| m.ino())
}

impl Decoder {
    /// Times are shown as `time` says; relative ones from now.
    pub fn new(cgroups: CgroupPaths, time: TimeMode) -> Decoder {
        let clock = WallClock::now();
        Decoder {
            clock,
            time: TimeFormatter::new(time, clock.unix_ns(clock.boot_ns_now())),
            cgroups,
            scratch: Scratch::default(),
            previous: (Vec::new(), false),
            generation: 0,
            reason: None,
            host_ipcns: host_ipc_namespace(),
        }
    }

    /// Why no cgroup path can be shown here, if none can.
    pub fn cgroups_unavailable(&self) -> Option<&str> {
        self.cgroups.unavailable()
    }

    /// Decodes one ring-buffer record: the bytes of a raw event.
    pub fn decode(&mut self, data: &[u8]) -> Result<Record<'_>, UnknownRaw> {
        self.decode_span(data, None)
    }

    /// Decodes a raw event as the line of `fold`'s calls (a fold's first
    /// event, standing for its repeats), or as itself.
    pub fn decode_span(
        &mut self,
        data: &[u8],
        fold: Option<Span>,
    ) -> Result<Record<'_>, UnknownRaw> {
        let (raw, failure) = event::raw_event(data)?;
        let args = &raw.args;
        let op = Op::from_raw(args.op)?;
        let abi = Abi::from_raw(args.abi)?;
        let carrier = Carrier::from_raw(args.call)?;
        let call = match carrier {
            Carrier::Direct => op.name(),
            Carrier::Ipc => "ipc",
        };
        let scratch = &mut self.scratch;
        scratch.time.clear();
        let first_ns = fold.map_or(raw.boot_ns, |f| f.first_ns);
        self.time
            .write(&mut scratch.time, self.clock.unix_ns(first_ns));
        if let Some(fold) = fold {
            scratch.last_time.clear();
            self.time
                .write(&mut scratch.last_time, self.clock.unix_ns(fold.last_ns));
        }
        let comm = scratch.comm.get(raw.comm, |out, comm| {
            decode::write_escaped(out, comm_bytes(&comm))
        });
        let has_flags = matches!(op, Op::Shmget | Op::Shmat);
        let flags = has_flags.then(|| {
            scratch.flags.get((op, args.shmflg), |out, (op, shmflg)| {
                decode::write_call_flags(out, op, shmflg)
            })
        });
        let cmd = (op == Op::Shmctl).then(|| scratch.cmd.get(args.cmd, decode::write_shmctl_cmd));
        let cgroup = self.cgroups.get(raw.cgroup_id);
        // A record is made of its raw event and its cgroup's path, which
        // for one id is unknown or, once known, never changes (`cgroup`).
        let (previous, known) = &mut self.previous;
        let stamp = event::STAMP;
        let same = previous.len() == data.len()
            && previous[..stamp.start] == data[..stamp.start]
            && previous[stamp.end..] == data[stamp.end..]
            && *known == cgroup.is_some();
        if !same || self.generation == 0 {
            previous.clear();
            previous.extend_from_slice(data);
            *known = cgroup.is_some();
            self.generation += 1;
            self.reason = reason::explain(raw, failure, op);
        }
        let outcome = segment::outcome(raw, op);
        let attach_from = AttachAddrFrom::from_raw(raw.attach_addr_from)?;
        let is_shmget = op == Op::Shmget;
        let container = cgroup.and_then(|c| c.container.as_deref());
        let host_ipc = container
            .filter(|name| cgroup::is_runtime_container(name))
            .and(self.host_ipcns)
            .map(|host| host == u64::from(raw.ipcns));
        Ok(Record {
            time: &scratch.time,
            pid: raw.pid,
            tid: raw.tid,
            ppid: raw.ppid,
            uid: raw.uid,
            gid: raw.gid,
            comm,
            abi,
            call,
            key: is_shmget.then_some(Key(args.key)),
            size: is_shmget.then_some(args.size),
            shmflg: has_flags.then_some(Hex(u64::from(args.shmflg as u32))),
            flags,
            mode: is_shmget.then(|| Mode(decode::mode(args.shmflg))),
            ret: raw.ret,
            // ipc(SHMAT) returns 0 and writes the address to memory.
            ret_is_address: op == Op::Shmat && carrier == Carrier::Direct && raw.ret >= 0,
            errno: decode::errno_name(raw.ret),
            cgroup: raw.cgroup_id,
            cgroup_path: cgroup.map(|c| c.path.as_str()),
            container,
            pidns: raw.pidns,
            mntns: raw.mntns,
            origin: outcome.map(|o| o.origin.name()),
            owner_uid: outcome.and_then(|o| o.owner_uid),
            creator_pid: outcome.and_then(|o| o.creator_pid),
            squat: outcome.map(|o| o.squat),
            op,
            shmid: matches!(op, Op::Shmat | Op::Shmctl).then_some(args.shmid),
            cmd,
            addr: matches!(op, Op::Shmat | Op::Shmdt).then_some(Hex(args.addr)),
            attach_addr: attach_from
                .filter(|from| from.address_known())
                .map(|_| Hex(raw.attach_addr)),
            attach_addr_from: attach_from.map(AttachAddrFrom::name),
            count: fold.map_or(1, |f| f.count),
            last_time: fold.map(|_| scratch.last_time.as_str()),
            ipcns: raw.ipcns,
            host_ipc,
            reason: self.reason.as_ref().map(|r| r.text.as_str()),
            reason_code: self.reason.as_ref().map(|r| r.code),
            generation: self.generation,
        })
    }
}

/// The thread's name as the kernel has it: up to 15 bytes, any bytes.
fn comm_bytes(comm: &[i8; 16]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment.
    let bytes: &[u8; 16] = unsafe { &*(comm as *const [i8; 16] as *const [u8; 16]) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..len]
}
