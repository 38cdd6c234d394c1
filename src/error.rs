//! Everything a user can run into, each printed by `main` as one line.

use std::io;

use thiserror::Error;

use crate::domain::UnknownRaw;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{0} (see --help)")]
    Usage(String),

    #[error(
        "missing privileges: loading and attaching BPF programs needs CAP_BPF and CAP_PERFMON \
         (or root); try sudo"
    )]
    Privileges,

    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); shmget-trace needs a \
         kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,

    #[error("--cgroup: {0}")]
    Cgroup(String),

    #[error("--attach {mode} is not possible on this kernel: {reason}")]
    ModeUnavailable { mode: &'static str, reason: String },

    #[error("no attach mode works on this kernel: {0}")]
    NoUsableHook(String),

    #[error(
        "this shmget-trace is built for {own}, but the kernel is {0} (the binary runs under \
         emulation): use the {0} build",
        own = std::env::consts::ARCH
    )]
    ForeignKernel(&'static str),

    #[error("{context}: {source}")]
    Bpf {
        context: &'static str,
        source: libbpf_rs::Error,
    },

    #[error("{0}: this binary and its BPF program disagree (a bug; please report it)")]
    Undecodable(UnknownRaw),

    #[error("dropping the capabilities not needed after attaching failed: {0}")]
    DropPrivileges(io::Error),

    #[error("cannot write output: {0}")]
    Output(io::Error),

    #[error("--output {path}: {source}")]
    OutputFile { path: String, source: io::Error },
}
