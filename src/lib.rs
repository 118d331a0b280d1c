//! dropship: application source -> buildpack staging -> droplet -> OCI image -> registry ->
//! Kubernetes manifests. See ARCHITECTURE.md for the map of stages to files.

pub mod app;
pub mod blob;
pub mod cfapi;
pub(crate) mod droplet;
pub mod failure;
pub mod fsutil;
pub mod image;
pub mod intake;
pub(crate) mod k8s;
pub mod layer;
pub mod pipeline;
pub mod refs;
pub mod registry;
pub mod report;
pub(crate) mod safefs;
pub mod service;
pub mod stack;
pub mod staging;
pub mod store;
pub mod units;
