//! What travels between replicas. Today: the portable change bundle, which
//! carries exactly the changes (and photos) the sync protocol will carry, so
//! two devices with no network can merge by file.

pub mod bundle;

pub use bundle::{BUNDLE_FORMAT, Bundle, BundlePhoto};
