//! Writes the man page and the shell completions into doc/, from the
//! options: `cargo run --example gen-docs`. A test checks that they are
//! current.

#[path = "../tests/support/docs.rs"]
mod docs;

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, text) in docs::generate() {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
        std::fs::write(&path, text)?;
        println!("{}", path.display());
    }
    Ok(())
}
