//! The Kotlin bindings compiled, and a Kotlin program driving the SDK on
//! the JVM through JNA (what an Android app does, minus Android). The
//! compiler is the Kotlin distribution from the npm registry and JNA is
//! Debian's `libjna-java` (scripts/test installs both once); without
//! them the test says what it could not compile, and fails when the test
//! script requires it (`FIELD_KOTLIN_REQUIRED`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{generate, library};

/// The Kotlin distribution (`bin/kotlinc`, `lib/…`) and JNA's jar.
fn toolchain() -> Option<(PathBuf, PathBuf)> {
    let home = std::env::var_os("FIELD_KOTLIN_HOME").map(PathBuf::from);
    let jna = std::env::var_os("FIELD_JNA_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/java/jna.jar"));
    match home {
        Some(h) if h.join("bin/kotlinc").is_file() && jna.is_file() => Some((h, jna)),
        _ => {
            assert!(
                std::env::var_os("FIELD_KOTLIN_REQUIRED").is_none(),
                "kotlinc (FIELD_KOTLIN_HOME) and JNA (FIELD_JNA_JAR) are required here"
            );
            eprintln!(
                "skipped: the Kotlin bindings were generated but not compiled (no \
                 FIELD_KOTLIN_HOME / JNA; scripts/test installs them)"
            );
            None
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_kotlin_bindings_compile_and_drive_the_sdk_on_the_jvm() {
    let Some((home, jna)) = toolchain() else {
        return;
    };
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("kotlin");
    generate(&lib, "kotlin", &generated);
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kotlin/DeviceTest.kt");
    let jar = dir.path().join("device-test.jar");
    let coroutines = home.join("lib/kotlinx-coroutines-core-jvm.jar");
    let classpath = |extra: &[&Path]| {
        std::env::join_paths(
            extra
                .iter()
                .copied()
                .chain([jna.as_path(), coroutines.as_path()]),
        )
        .unwrap()
    };
    run(
        Command::new(home.join("bin/kotlinc"))
            .arg("-nowarn")
            .arg(generated.join("uniffi/field_ffi/field_ffi.kt"))
            .arg(&program)
            .arg("-cp")
            .arg(classpath(&[]))
            .arg("-d")
            .arg(&jar),
        "kotlinc",
    );
    let photo = dir.path().join("photo.png");
    std::fs::write(&photo, field_e2e::png(1)).unwrap();
    let stdlib = home.join("lib/kotlin-stdlib.jar");
    let said = run(
        Command::new("java")
            .arg(format!(
                "-Djna.library.path={}",
                lib.parent().expect("the library's folder").display()
            ))
            .arg("-cp")
            .arg(classpath(&[&jar, &stdlib]))
            .arg("DeviceTestKt")
            .arg(dir.path().join("store"))
            .arg(&photo),
        "the Kotlin program",
    );
    assert!(said.contains("kotlin sdk: ok"), "{said}");
}
