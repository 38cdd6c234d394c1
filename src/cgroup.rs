//! Where a call happened: cgroup v2 ids turned into cgroup paths, and
//! paths into the container or systemd unit they belong to.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};

use crate::decode;

/// include/linux/exportfs.h: a kernfs node's file handle is its 64-bit id,
/// which is the cgroup id the BPF side reads (`kn->id`).
const FILEID_KERNFS: i32 = 0xfe;

/// Cgroups remembered at most; past this the memory is started afresh
/// (paths are found again on demand), so that a host where containers come
/// and go cannot grow the tracer without bound.
const MAX_REMEMBERED: usize = 16_384;

/// A cgroup as the output shows it, its text escaped like comm.
pub struct Cgroup {
    /// From the cgroup2 root: `/system.slice/nginx.service`.
    pub path: String,
    /// See [`container_of`]; a name found inside a subtree that a user
    /// owns (delegated to them: rootless containers, user units, or a
    /// name that user chose to look like another) says whose:
    /// `docker:4f3c2b1a0e9d (uid 1000)`.
    pub container: Option<String>,
}

/// Where cgroup2 is mounted, and which cgroup the mount shows at its top:
/// `/` unless a subtree was mounted.
pub struct Cgroup2Mount {
    pub point: PathBuf,
    pub root: PathBuf,
}

impl Cgroup2Mount {
    /// The one this process sees (`/sys/fs/cgroup`, or
    /// `/sys/fs/cgroup/unified` on hybrid hosts).
    pub fn find() -> Option<Cgroup2Mount> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if !right.starts_with("cgroup2 ") {
                return None;
            }
            let mut fields = left.split(' ').skip(3);
            let root = unescape_mountinfo(fields.next()?);
            let point = unescape_mountinfo(fields.next()?);
            Some(Cgroup2Mount { point, root })
        })
    }

    /// The cgroup of a directory under the mount point, from the cgroup2
    /// root, escaped for output.
    fn cgroup(&self, dir: &Path) -> Option<Cgroup> {
        let below = dir.strip_prefix(&self.point).ok()?;
        // (`join("")` would add a trailing slash for the mount's top.)
        let path = if below.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(below)
        };
        let mut text = Vec::with_capacity(path.as_os_str().len());
        decode::write_escaped(&mut text, path.as_os_str().as_bytes());
        let text = String::from_utf8(text).unwrap_or_default();
        let container = find_container(&text).map(|(name, depth)| {
            match self
                .delegated(below)
                .filter(|(at, _)| depth >= self.depth() + at)
            {
                Some((_, uid)) => format!("{name} (uid {uid})"),
                None => name,
            }
        });
        Some(Cgroup {
            path: text,
            container,
        })
    }

    /// Components of `root` (a subtree mount's cgroup names come first).
    fn depth(&self) -> usize {
        self.root.components().count().saturating_sub(1)
    }

    /// The first directory on the way to `below` that a user other than
    /// root owns: its index among `below`'s components, and its owner.
    fn delegated(&self, below: &Path) -> Option<(usize, u32)> {
        let mut dir = self.point.clone();
        for (i, component) in below.components().enumerate() {
            dir.push(component);
            let uid = fs::metadata(&dir).ok()?.uid();
            if uid != 0 {
                return Some((i, uid));
            }
        }
        None
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(digits) if bytes[i] == b'\\' => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |n, d| n.wrapping_mul(8) + (d - b'0')),
                );
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// Maps cgroup ids (the inode numbers of cgroup2 directories) to paths.
/// A new id is resolved when first seen, by opening the cgroup through its
/// id as a file handle, so a cgroup made a moment ago is named at once; no
/// event ever waits for a walk of the tree. The answer is remembered
/// (boundedly), so a path is still known after its cgroup is gone, as long
/// as it was seen while the cgroup existed.
pub struct CgroupPaths {
    /// The cgroup2 mount, and its top directory open for file handles.
    mount: Option<(Cgroup2Mount, File)>,
    /// `None`: the cgroup was gone before it was seen. An id's entry, once
    /// `Some`, never changes (records rely on it: see `record`).
    cgroups: HashMap<u64, Option<Cgroup>, BuildHasherDefault<InodeHasher>>,
    /// Why paths cannot be had, once that is known.
    unavailable: Option<String>,
}

impl Default for CgroupPaths {
    fn default() -> CgroupPaths {
        CgroupPaths::new()
    }
}

impl CgroupPaths {
    pub fn new() -> CgroupPaths {
        let mount = Cgroup2Mount::find().and_then(|mount| {
            let top = File::open(&mount.point).ok()?;
            Some((mount, top))
        });
        let unavailable = mount
            .is_none()
            .then(|| "no cgroup2 file system is mounted".to_string());
        CgroupPaths {
            mount,
            cgroups: HashMap::default(),
            unavailable,
        }
    }

    /// Why no cgroup path can be shown here, if none can.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// How many cgroups are remembered.
    pub fn remembered(&self) -> usize {
        self.cgroups.len()
    }

    /// The cgroup of an id; `None` for one that was gone before it was seen.
    pub fn get(&mut self, id: u64) -> Option<&Cgroup> {
        if self.unavailable.is_some() {
            return None;
        }
        if !self.cgroups.contains_key(&id) {
            match self.open_by_id(id) {
                Ok(cgroup) => self.remember(id, cgroup),
                Err(errno) => {
                    let why = format!(
                        "cgroup paths cannot be read: opening a cgroup by its id failed ({errno}{})",
                        if errno == Errno::EPERM { "; it needs CAP_DAC_READ_SEARCH" } else { "" }
                    );
                    crate::note!("{why}");
                    self.unavailable = Some(why);
                    return None;
                }
            }
        }
        self.cgroups.get(&id).and_then(Option::as_ref)
    }

    /// Bounded: past MAX_REMEMBERED ids it starts afresh.
    fn remember(&mut self, id: u64, cgroup: Option<Cgroup>) {
        if self.cgroups.len() >= MAX_REMEMBERED {
            self.cgroups.clear();
        }
        self.cgroups.insert(id, cgroup);
    }

    /// `Ok(None)` for an id whose cgroup is gone; `Err` where file handles
    /// cannot be used at all.
    fn open_by_id(&self, id: u64) -> Result<Option<Cgroup>, Errno> {
        let Some((mount, top)) = &self.mount else {
            return Ok(None);
        };
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
                top.as_raw_fd(),
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
        // A cgroup above a subtree mount has no path in it.
        Ok(mount.cgroup(&path))
    }
}

/// The directory of a cgroup given as the user would: a path under the
/// cgroup2 mount (`/sys/fs/cgroup/system.slice`), or one from the cgroup2
/// root (`/system.slice`, as /proc/PID/cgroup shows it). Errors name the
/// path escaped, and say where cgroup2 is when the path is elsewhere.
pub fn cgroup_dir(path: &str) -> Result<PathBuf, String> {
    let mut shown = Vec::new();
    decode::write_escaped(&mut shown, path.as_bytes());
    let shown = String::from_utf8(shown).unwrap_or_default();
    if path.is_empty() {
        return Err("an empty path names no cgroup (leave --cgroup out for the whole host)".into());
    }
    let mount = Cgroup2Mount::find().ok_or("no cgroup2 file system is mounted")?;
    let given = Path::new(path);
    let dir = if given.starts_with(&mount.point) {
        given.to_path_buf()
    } else if let Ok(below) = given.strip_prefix(&mount.root) {
        mount.point.join(below)
    } else {
        mount.point.join(path.trim_start_matches('/'))
    };
    let where_ = format!("cgroup2 is mounted at {}", mount.point.display());
    match statfs(&dir).map(|fs| fs.filesystem_type()) {
        Ok(kind) if kind == CGROUP2_SUPER_MAGIC => Ok(dir),
        _ if statfs(given).is_ok_and(|fs| fs.filesystem_type() == CGROUP_SUPER_MAGIC) => Err(
            format!("{shown} is a cgroup v1 directory; only cgroup2 can filter ({where_})"),
        ),
        _ => Err(format!("{shown} is not a cgroup ({where_})")),
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

/// The container or service a cgroup path belongs to: `docker:<id>`,
/// `containerd:<id>`, `crio:<id>`, `podman:<id>` (ids cut to 12 characters,
/// as the runtimes print them), or the systemd unit (`nginx.service`).
pub fn container_of(path: &str) -> Option<String> {
    find_container(path).map(|(name, _)| name)
}

/// A container's cgroup component prefix, and its runtime's name.
const RUNTIMES: [(&str, &str); 5] = [
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("crio-", "crio"),
    ("libpod-", "podman"),
    ("docker", "docker"), // cgroupfs driver: /docker/<id>
];

/// The container or unit, and the index of the path component that names
/// it.
fn find_container(path: &str) -> Option<(String, usize)> {
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
                let at = if prefix == "docker" { i + 1 } else { i };
                return Some((format!("{runtime}:{}", &id[..12]), at));
            }
        }
    }
    components
        .iter()
        .enumerate()
        .rev()
        .find(|(_, c)| {
            c.ends_with(".service") || (c.ends_with(".scope") && !c.starts_with("session-"))
        })
        .map(|(i, unit)| (unit.to_string(), i))
}

/// Whether a name [`container_of`] gave is a container's (a runtime's),
/// rather than a systemd unit's.
pub fn is_runtime_container(name: &str) -> bool {
    RUNTIMES.iter().any(|(_, runtime)| {
        name.strip_prefix(runtime)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";

    /// 70,000 short-lived cgroups grew the tracer by 14 MB before.
    #[test]
    fn remembered_cgroups_are_bounded() {
        let mut paths = CgroupPaths::new();
        for id in 0..(3 * MAX_REMEMBERED as u64) {
            paths.remember(id, None);
            assert!(paths.remembered() <= MAX_REMEMBERED);
        }
        assert!(paths.remembered() > 0);
    }

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
    fn runtime_containers_are_told_from_units() {
        for path in [
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker/{ID}"),
            format!("/kubepods.slice/cri-containerd-{ID}.scope"),
            format!("/kubepods.slice/crio-{ID}.scope"),
            format!("/user.slice/libpod-{ID}.scope"),
        ] {
            let name = container_of(&path).unwrap();
            assert!(is_runtime_container(&name), "{path}: {name}");
        }
        for unit in [
            "/system.slice/docker.service",
            "/system.slice/nginx.service",
        ] {
            let name = container_of(unit).unwrap();
            assert!(!is_runtime_container(&name), "{unit}: {name}");
        }
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
    fn mountinfo_escapes() {
        assert_eq!(
            unescape_mountinfo("/sys/fs/cgroup"),
            PathBuf::from("/sys/fs/cgroup")
        );
        assert_eq!(
            unescape_mountinfo("/a\\040b\\011c\\134"),
            PathBuf::from("/a b\tc\\")
        );
        assert_eq!(unescape_mountinfo("/x\\04"), PathBuf::from("/x\\04"));
    }

    #[test]
    fn where_a_container_is_named() {
        assert_eq!(
            find_container(&format!(
                "/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID}.scope"
            )),
            Some(("docker:4f3c2b1a0e9d".into(), 4))
        );
        assert_eq!(
            find_container(&format!("/docker/{ID}/inner")),
            Some(("docker:4f3c2b1a0e9d".into(), 1))
        );
        assert_eq!(
            find_container("/system.slice/sshd.service"),
            Some(("sshd.service".into(), 1))
        );
    }
}
