//! What the SDK's language tests share: the library built with the test
//! and the bindings generated from it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The library built with this test: cargo leaves it in
/// target/<profile>/deps (a `cargo build` also copies it one level up,
/// where it may be older).
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target layout");
    [
        deps.to_path_buf(),
        deps.parent().expect("target layout").to_path_buf(),
    ]
    .iter()
    .map(|d| d.join("libfield_ffi.so"))
    .find(|p| p.is_file())
    .expect("libfield_ffi.so was not built")
}

pub fn generate(lib: &Path, language: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--no-format", "--library"])
        .arg(lib)
        .args(["--language", language, "--out-dir"])
        .arg(out)
        .status()
        .expect("uniffi-bindgen runs");
    assert!(status.success(), "generating {language} bindings failed");
}
