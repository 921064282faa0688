//! What travels between replicas: the portable change bundle (device to
//! device by file), the sync protocol's messages, and the device's sync
//! client — a loop over an injected [`client::Transport`], so the HTTP
//! adapter and the deterministic simulator drive the same code.

pub mod bundle;
pub mod client;
#[cfg(feature = "http")]
pub mod http;
pub mod protocol;

pub use bundle::{BUNDLE_FORMAT, Bundle, BundlePhoto};
