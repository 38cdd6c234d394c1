//! The man page and the shell completions, generated from the options
//! (`shmget_trace::cli::Cli`). `cargo run --example gen-docs` writes them
//! into doc/; a test in tests/cli.rs fails while the files there differ
//! from what the options give, so they cannot drift.

use clap::CommandFactory;
use clap_complete::Shell;

/// Where each generated file is kept, from the repository's root.
pub const FILES: [&str; 4] = [
    "doc/shmget-trace.1",
    "doc/completions/shmget-trace.bash",
    "doc/completions/_shmget-trace",
    "doc/completions/shmget-trace.fish",
];

/// Each of `FILES` with the text the options give it.
pub fn generate() -> Vec<(&'static str, Vec<u8>)> {
    // The version alone: with the git revision that -V adds, the page
    // would change with every commit.
    let mut command = shmget_trace::cli::Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut man = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut man)
        .expect("rendering into memory cannot fail");
    let mut files = vec![(FILES[0], man)];
    for (path, shell) in FILES[1..]
        .iter()
        .zip([Shell::Bash, Shell::Zsh, Shell::Fish])
    {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command, "shmget-trace", &mut text);
        files.push((*path, text));
    }
    files
}
