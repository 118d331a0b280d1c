//! dropship: application source -> buildpack staging -> droplet -> OCI image -> registry ->
//! Kubernetes manifests. See ARCHITECTURE.md for the map of stages to files.

pub mod droplet;
pub mod failure;
pub mod fsutil;
pub mod image;
pub mod intake;
pub mod k8s;
pub mod layer;
pub mod pipeline;
pub mod refs;
pub mod registry;
pub mod report;
pub mod safefs;
pub mod service;
pub mod stack;
pub mod staging;
pub mod store;
pub mod units;
