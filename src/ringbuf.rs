//! Reading the BPF ring buffer, releasing its space once per batch.
//!
//! libbpf's reader publishes the consumer position after every record. The
//! kernel reads that position on every reserve, so during a flood each event
//! cost the traced thread a cache miss on the line the reader had just
//! written. This reader publishes it once per batch of records.
//!
//! The map's memory (kernel/bpf/ringbuf.c): the consumer position in the
//! first page (ours to write), the producer position in the second, then the
//! data pages, mapped twice in a row so that a record that wraps around the
//! end reads as one slice. Each record starts with an 8-byte header whose
//! first word is its length, with the BUSY bit set while it is being written
//! and the DISCARD bit set when the program dropped it.

use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::unistd::{sysconf, SysconfVar};

const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER_SIZE: usize = 8;

/// A mapping, unmapped when dropped.
struct Mapping {
    addr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd, len: usize, offset: usize, prot: ProtFlags) -> io::Result<Self> {
        let length = NonZeroUsize::new(len).ok_or(io::ErrorKind::InvalidInput)?;
        let offset = offset.try_into().map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: a fresh shared mapping of the map's memory, at an address
        // the kernel chooses; nothing else refers to it.
        let addr = unsafe { mmap(None, length, prot, MapFlags::MAP_SHARED, fd, offset) }?;
        Ok(Mapping { addr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in `new`, and no reference into it outlives `self`.
        let _ = unsafe { munmap(self.addr, self.len) };
    }
}

pub struct RingReader {
    /// The map, edge-triggered: a wait ends on a wakeup from the BPF side,
    /// not merely because records wait.
    epoll: Epoll,
    /// Keeps the map's file open for as long as epoll watches it.
    _map: OwnedFd,
    consumer: Mapping,
    producer: Mapping,
    page_size: usize,
    mask: u64,
}

impl RingReader {
    /// `map` is a BPF_MAP_TYPE_RINGBUF of `size` bytes (a power of two).
    pub fn new(map: BorrowedFd, size: u32) -> io::Result<Self> {
        let page_size = sysconf(SysconfVar::PAGE_SIZE)?
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(io::ErrorKind::Unsupported)?;
        let size = size as usize;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(
            map,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, 0),
        )?;
        Ok(RingReader {
            epoll,
            _map: map.try_clone_to_owned()?,
            consumer: Mapping::new(
                map,
                page_size,
                0,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            )?,
            producer: Mapping::new(map, page_size + 2 * size, page_size, ProtFlags::PROT_READ)?,
            page_size,
            mask: size as u64 - 1,
        })
    }

    /// Sleeps until the BPF side wakes the reader or `timeout` passes, with
    /// `asleep` raised meanwhile (the BPF side wakes the reader only then,
    /// and lowers it as it does: one wakeup per sleep).
    /// Records may be waiting already: the wakeup policy decides when they
    /// are worth waking for. A signal ends the wait early.
    pub fn wait(&self, asleep: &AtomicU32, timeout: PollTimeout) {
        // Visible to the BPF side before epoll looks at the ring.
        asleep.store(1, Ordering::SeqCst);
        let _ = self.epoll.wait(&mut [EpollEvent::empty()], timeout);
        asleep.store(0, Ordering::Relaxed);
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the first word of the consumer page, 8-byte aligned.
        unsafe { self.consumer.addr.cast::<AtomicU64>().as_ref() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: the first word of the producer page, 8-byte aligned.
        unsafe { self.producer.addr.cast::<AtomicU64>().as_ref() }
    }

    /// Hands up to `limit` committed records to `on_record`, oldest first,
    /// then releases their space; returns how many it handed over.
    pub fn consume(&mut self, limit: usize, mut on_record: impl FnMut(&[u8])) -> usize {
        // Only this reader writes the consumer position.
        let mut consumer = self.consumer_pos().load(Ordering::Relaxed);
        let producer = self.producer_pos().load(Ordering::Acquire);
        let data = self
            .producer
            .addr
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(self.page_size);
        let mut handed = 0;
        while consumer < producer && handed < limit {
            let offset = (consumer & self.mask) as usize;
            // SAFETY: offset is within the data pages and 8-byte aligned
            // (the kernel rounds records up to 8 bytes).
            let header = unsafe { &*data.add(offset).cast::<AtomicU32>() };
            let word = header.load(Ordering::Acquire);
            if word & BUSY_BIT != 0 {
                break;
            }
            let len = (word & !(BUSY_BIT | DISCARD_BIT)) as usize;
            if word & DISCARD_BIT == 0 {
                // SAFETY: the kernel committed these bytes (BUSY clear, read
                // with acquire) and will not reuse them before the consumer
                // position passes them; no record is longer than the ring, so
                // the second mapping of the data pages holds the end of one
                // that wraps.
                let record =
                    unsafe { std::slice::from_raw_parts(data.add(offset + HEADER_SIZE), len) };
                on_record(record);
                handed += 1;
            }
            consumer += (len + HEADER_SIZE).next_multiple_of(8) as u64;
        }
        self.consumer_pos().store(consumer, Ordering::Release);
        handed
    }
}
