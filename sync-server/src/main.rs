//! `sync-server`: the city center's side (issue 3). Not built yet: this
//! binary says so and exits non-zero rather than pretending to serve.

fn main() {
    eprintln!(
        "sync-server is not implemented yet (issue 3). Devices merge today by change bundles: \
         `field changes export` / `field changes import`. Change schema {}.",
        field_core::crdt::CHANGE_SCHEMA
    );
    std::process::exit(2);
}
