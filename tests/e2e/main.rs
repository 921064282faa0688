//! End-to-end tests of the `field` binary on real files. One binary with
//! modules, to link once.

mod assessment;
mod bad_input;
mod bundles;
mod console;
mod crash;
mod device_flow;
mod exports;
mod faults;
mod flags;
mod handheld;
mod instances;
mod object_storage;
mod open311;
mod operations;
mod overload;
mod pay;
mod review;
mod schemas;
mod security;
mod surveys;
mod sync;
