//! The SDK as an app team receives it: the bindings generated from the
//! built library for Kotlin, Swift and Python, and the Python ones driven
//! end to end (pytest) against a real `sync-server` on loopback.

mod common;

use std::path::Path;

use common::{generate, library};
use std::process::Command;

fn python() -> String {
    std::env::var("FIELD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// pytest is there, or the run says why it cannot test (and fails when
/// the test script requires it: `FIELD_PYTHON_REQUIRED`).
fn pytest_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import pytest"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("FIELD_PYTHON_REQUIRED").is_none(),
            "pytest is required here (scripts/test installs it)"
        );
        eprintln!(
            "skipped: no pytest for {} (scripts/test installs it)",
            python()
        );
    }
    ok
}

#[test]
fn bindings_are_generated_for_kotlin_swift_and_python() {
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    for (language, file) in [
        ("kotlin", "uniffi/field_ffi/field_ffi.kt"),
        ("swift", "field_ffi.swift"),
        ("python", "field_ffi.py"),
    ] {
        let out = dir.path().join(language);
        generate(&lib, language, &out);
        let text = std::fs::read_to_string(out.join(file)).expect("a generated file");
        // The device API is there, in the language's own shape.
        for name in [
            "Device",
            "recordFixes",
            "reportCase",
            "catalogSearch",
            "CancelToken",
        ] {
            let name = match language {
                "python" => python_name(name),
                _ => name.to_string(),
            };
            assert!(text.contains(&name), "{language}: no {name}");
        }
    }
}

/// `recordFixes` → `record_fixes`.
fn python_name(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && camel.chars().next().is_some_and(|f| f.is_lowercase())
        {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_sdk_works_end_to_end_from_python() {
    if !pytest_available() {
        return;
    }
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("python");
    generate(&lib, "python", &bindings);
    std::fs::copy(&lib, bindings.join("libfield_ffi.so")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_device.py");
    let out = Command::new(python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&script)
        .env("FIELD_FFI_BINDINGS", &bindings)
        .env("SYNC_SERVER_BIN", field_e2e::server_bin())
        .output()
        .expect("pytest runs");
    assert!(
        out.status.success(),
        "pytest failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    eprintln!("{said}");
    assert!(
        said.contains("4 passed") && !said.contains("skipped"),
        "every SDK test ran: {said}"
    );
}
