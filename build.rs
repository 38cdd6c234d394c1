use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/shmget_trace.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("shmget_trace.skel.rs");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH is set by cargo");
    // One vmlinux.h per architecture, generated from a kernel's BTF (see vmlinux/README.md).
    let vmlinux = PathBuf::from("vmlinux").join(&arch);

    SkeletonBuilder::new()
        .source(SRC)
        // Warnings fail the build: a precedence slip in the syscall tables
        // (`nr == BIT | 29`) once matched every number, and clang had said so.
        .clang_args([
            "-Wall".into(),
            "-Werror".into(),
            "-I".into(),
            vmlinux.clone().into_os_string(),
            "-Isrc/bpf".into(),
        ])
        .build_and_generate(&out)
        .expect("compiling the BPF program failed (is clang installed?)");

    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed={}", vmlinux.display());
    version_facts();
}

/// What `-V` says beside the version: the target, and the git revision
/// (`unknown` outside a git checkout, as in a source tarball).
fn version_facts() {
    let target = env::var("TARGET").expect("TARGET is set by cargo");
    println!("cargo:rustc-env=SHMGET_TRACE_TARGET={target}");
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_string())
    };
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SHMGET_TRACE_GIT_REVISION={revision}");
    // Built again when HEAD moves: HEAD itself, and the branch it names
    // (in a linked worktree these live in different git directories).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        // A path that does not exist would rerun this script every build.
        let path = git(&["rev-parse", "--git-path", &name]).filter(|p| Path::new(p).exists());
        if let Some(path) = path {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
