//! Where a call happened: cgroup v2 ids turned into cgroup paths, and
//! paths into the container or systemd unit they belong to.

use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A cgroup tree is walked again for an unknown id at most this often, so
/// that a flood of calls from short-lived cgroups cannot turn into a flood
/// of directory walks.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// A cgroup as the output shows it.
pub struct Cgroup {
    /// Relative to the cgroup2 root: `/system.slice/nginx.service`.
    pub path: String,
    /// See [`container_of`].
    pub container: Option<String>,
}

/// Maps cgroup ids (the inode numbers of cgroup2 directories) to paths.
/// Paths are remembered, so they are still known after the process has
/// exited, as long as they were seen while the cgroup existed.
pub struct CgroupPaths {
    mount: Option<PathBuf>,
    cgroups: HashMap<u64, Cgroup, BuildHasherDefault<InodeHasher>>,
    last_scan: Option<Instant>,
}

impl Default for CgroupPaths {
    fn default() -> CgroupPaths {
        CgroupPaths::new()
    }
}

impl CgroupPaths {
    pub fn new() -> CgroupPaths {
        CgroupPaths {
            mount: cgroup2_mount(),
            cgroups: HashMap::default(),
            last_scan: None,
        }
    }

    /// The cgroup of an id; `None` for one that was gone before it was seen.
    pub fn get(&mut self, id: u64) -> Option<&Cgroup> {
        if !self.cgroups.contains_key(&id)
            && self
                .last_scan
                .is_none_or(|t| t.elapsed() >= RESCAN_INTERVAL)
        {
            self.scan();
        }
        self.cgroups.get(&id)
    }

    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some(mount) = &self.mount else { return };
        let mut stack = vec![mount.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let relative = dir.strip_prefix(mount).unwrap_or(Path::new(""));
            self.cgroups.entry(meta.ino()).or_insert_with(|| {
                let path = format!("/{}", relative.display());
                Cgroup {
                    container: container_of(&path),
                    path,
                }
            });
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
        let Some(mount) = paths.mount.clone() else {
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
