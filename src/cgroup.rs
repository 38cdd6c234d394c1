//! Where a call happened: cgroup v2 ids turned into cgroup paths, and
//! paths into the container or systemd unit they belong to.

use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;

use crate::decode;

/// Where file handles cannot open cgroups (no CAP_DAC_READ_SEARCH), the
/// tree is walked again for an unknown id at most this often, so that a
/// flood of calls from short-lived cgroups cannot turn into a flood of
/// directory walks.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// include/linux/exportfs.h: a kernfs node's file handle is its 64-bit id,
/// which is the cgroup id the BPF side reads (`kn->id`).
const FILEID_KERNFS: i32 = 0xfe;

/// A cgroup as the output shows it, its text escaped like comm.
pub struct Cgroup {
    /// Relative to the cgroup2 root: `/system.slice/nginx.service`.
    pub path: String,
    /// See [`container_of`].
    pub container: Option<String>,
}

impl Cgroup {
    fn new(relative: &Path) -> Cgroup {
        let raw = relative.as_os_str().as_bytes();
        let mut path = Vec::with_capacity(raw.len() + 1);
        if !raw.starts_with(b"/") {
            path.push(b'/');
        }
        decode::write_escaped(&mut path, raw);
        let path = String::from_utf8(path).unwrap_or_default();
        Cgroup {
            container: container_of(&path),
            path,
        }
    }
}

/// Maps cgroup ids (the inode numbers of cgroup2 directories) to paths.
/// A new id is resolved when first seen, by opening the cgroup through its
/// id as a file handle, so a cgroup made a moment ago is named at once. The
/// answer is remembered, so a path is still known after its cgroup is
/// gone, as long as it was seen while the cgroup existed.
pub struct CgroupPaths {
    /// The cgroup2 mount, and its root directory open for file handles.
    mount: Option<(PathBuf, File)>,
    /// `None`: the cgroup was gone before it was seen. An id's entry, once
    /// `Some`, never changes (records rely on it: see `record`).
    cgroups: HashMap<u64, Option<Cgroup>, BuildHasherDefault<InodeHasher>>,
    /// Set when file handles do not work here: then the tree is scanned.
    last_scan: Option<Instant>,
    handles_work: bool,
}

impl Default for CgroupPaths {
    fn default() -> CgroupPaths {
        CgroupPaths::new()
    }
}

impl CgroupPaths {
    pub fn new() -> CgroupPaths {
        let mount = cgroup2_mount().and_then(|path| {
            let root = File::open(&path).ok()?;
            Some((path, root))
        });
        CgroupPaths {
            mount,
            cgroups: HashMap::default(),
            last_scan: None,
            handles_work: true,
        }
    }

    /// The cgroup of an id; `None` for one that was gone before it was seen.
    pub fn get(&mut self, id: u64) -> Option<&Cgroup> {
        if !self.cgroups.contains_key(&id) {
            match self.open_by_id(id) {
                Ok(cgroup) => {
                    self.cgroups.insert(id, cgroup);
                }
                Err(_) => {
                    self.handles_work = false;
                    if self
                        .last_scan
                        .is_none_or(|t| t.elapsed() >= RESCAN_INTERVAL)
                    {
                        self.scan();
                    }
                }
            }
        }
        self.cgroups.get(&id).and_then(Option::as_ref)
    }

    /// `Ok(None)` for an id whose cgroup is gone; `Err` where file handles
    /// cannot be used at all.
    fn open_by_id(&self, id: u64) -> Result<Option<Cgroup>, Errno> {
        let Some((mount, root)) = &self.mount else {
            return Ok(None);
        };
        if !self.handles_work {
            return Err(Errno::ENOTSUP);
        }
        #[repr(C)]
        struct KernfsHandle {
            handle_bytes: u32,
            handle_type: i32,
            id: u64,
        }
        let mut handle = KernfsHandle {
            handle_bytes: 8,
            handle_type: FILEID_KERNFS,
            id,
        };
        // SAFETY: a struct file_handle with its 8 bytes of f_handle; the
        // kernel reads no further than handle_bytes.
        let fd = unsafe {
            libc::open_by_handle_at(
                root.as_raw_fd(),
                (&mut handle as *mut KernfsHandle).cast(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return match Errno::last() {
                // Removed (ESTALE), or not a cgroup of this mount.
                Errno::ESTALE | Errno::ENOENT | Errno::ENOTDIR => Ok(None),
                errno => Err(errno),
            };
        }
        // SAFETY: a descriptor the kernel just gave us.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .map_err(|_| Errno::EBADF)?;
        Ok(path.strip_prefix(mount).ok().map(Cgroup::new))
    }

    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some((mount, _)) = &self.mount else {
            return;
        };
        let mut stack = vec![mount.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let relative = dir.strip_prefix(mount).unwrap_or(Path::new(""));
            self.cgroups
                .entry(meta.ino())
                .or_insert_with(|| Some(Cgroup::new(relative)));
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            stack.extend(
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
}

/// The directory of a cgroup given as the user would: a path under the
/// cgroup2 mount (`/sys/fs/cgroup/system.slice`), or one relative to its
/// root (`/system.slice`, as /proc/PID/cgroup shows it).
pub fn cgroup_dir(path: &str) -> Result<PathBuf, String> {
    let mount = cgroup2_mount().ok_or("no cgroup2 file system is mounted")?;
    let given = Path::new(path);
    let dir = if given.starts_with(&mount) {
        given.to_path_buf()
    } else {
        mount.join(path.trim_start_matches('/'))
    };
    if dir.join("cgroup.procs").exists() {
        Ok(dir)
    } else {
        Err(format!(
            "{path} is not a cgroup (no {})",
            dir.join("cgroup.procs").display()
        ))
    }
}

/// Cgroup ids are inode numbers, already spread: used as their own hash,
/// they spare the lookup that every event makes a SipHash.
#[derive(Default)]
struct InodeHasher(u64);

impl Hasher for InodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

/// Where cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on hybrid hosts).
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if !right.starts_with("cgroup2 ") {
            return None;
        }
        left.split(' ').nth(4).map(PathBuf::from)
    })
}

/// The container or service a cgroup path belongs to: `docker:<id>`,
/// `containerd:<id>`, `crio:<id>`, `podman:<id>` (ids cut to 12 characters,
/// as the runtimes print them), or the systemd unit (`nginx.service`).
pub fn container_of(path: &str) -> Option<String> {
    const RUNTIMES: [(&str, &str); 5] = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "crio"),
        ("libpod-", "podman"),
        ("docker", "docker"), // cgroupfs driver: /docker/<id>
    ];
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, component) in components.iter().enumerate().rev() {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        for (prefix, runtime) in RUNTIMES {
            let id = if prefix == "docker" {
                // `/docker/<id>`: the id is the next component.
                (*component == "docker")
                    .then(|| components.get(i + 1).copied())
                    .flatten()
            } else {
                name.strip_prefix(prefix)
            };
            if let Some(id) = id.filter(|id| is_container_id(id)) {
                return Some(format!("{runtime}:{}", &id[..12]));
            }
        }
    }
    components
        .iter()
        .rev()
        .find(|c| c.ends_with(".service") || (c.ends_with(".scope") && !c.starts_with("session-")))
        .map(|unit| unit.to_string())
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";

    #[test]
    fn container_runtimes() {
        assert_eq!(
            container_of(&format!("/system.slice/docker-{ID}.scope")).as_deref(),
            Some("docker:4f3c2b1a0e9d")
        );
        assert_eq!(
            container_of(&format!("/docker/{ID}")).as_deref(),
            Some("docker:4f3c2b1a0e9d")
        );
        assert_eq!(
            container_of(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"
            ))
            .as_deref(),
            Some("containerd:4f3c2b1a0e9d")
        );
        assert_eq!(
            container_of(&format!("/kubepods.slice/crio-{ID}.scope")).as_deref(),
            Some("crio:4f3c2b1a0e9d")
        );
        assert_eq!(
            container_of(&format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"))
                .as_deref(),
            Some("podman:4f3c2b1a0e9d")
        );
    }

    #[test]
    fn systemd_units_and_nothing() {
        assert_eq!(
            container_of("/system.slice/nginx.service").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            container_of("/user.slice/user-1000.slice/session-3.scope"),
            None
        );
        assert_eq!(container_of("/"), None);
        assert_eq!(container_of("/docker/not-an-id"), None);
    }

    #[test]
    fn own_cgroup_resolves() {
        let mut paths = CgroupPaths::new();
        let Some(mount) = paths.mount.as_ref().map(|(path, _)| path.clone()) else {
            eprintln!("skipped: no cgroup2 mount");
            return;
        };
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap()
            .to_string();
        let id = fs::metadata(format!("{}{own}", mount.display()))
            .unwrap()
            .ino();
        assert_eq!(paths.get(id).map(|c| c.path.as_str()), Some(own.as_str()));
        assert!(paths.get(u64::MAX).is_none());
        assert_eq!(
            cgroup_dir(&own),
            Ok(PathBuf::from(format!("{}{own}", mount.display())))
        );
        assert!(cgroup_dir("/no/such/cgroup")
            .unwrap_err()
            .contains("is not a cgroup"));
    }
}
