//! The message files are embedded at build time: a changed or added file
//! must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=locales");
    for lang in ["zh-CN", "en"] {
        println!("cargo:rerun-if-changed=locales/{lang}");
        if let Ok(dir) = std::fs::read_dir(format!("locales/{lang}")) {
            for f in dir.flatten() {
                println!("cargo:rerun-if-changed={}", f.path().display());
            }
        }
    }
}
