//! Generates the Kotlin, Swift and Python bindings of `libfield_ffi`.
fn main() {
    uniffi::uniffi_bindgen_main()
}
