use std::env;
use std::path::PathBuf;

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
        .clang_args([
            "-I".into(),
            vmlinux.clone().into_os_string(),
            "-Isrc/bpf".into(),
        ])
        .build_and_generate(&out)
        .expect("compiling the BPF program failed (is clang installed?)");

    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed={}", vmlinux.display());
}
