//! The integration tests: one binary (linking the crate once), a module per area, and
//! `support` with the parts they share. One area: `cargo test --test it service_flow::`.

mod support;

mod app_manifest;
mod blob_service;
mod blob_store;
mod build_e2e;
mod build_queue_replicas;
mod cf_client;
mod cli_conventions;
mod cli_login;
mod cli_output;
mod compression;
mod deployment;
mod dockerfile;
mod hostile_buildpacks;
mod hostile_stacks;
mod hostile_zips;
mod language_apps;
mod rebase;
mod registry_auth;
mod registry_faults;
mod replica_logs;
mod replicas_on_postgres;
mod service_bounds;
mod service_flow;
mod service_lists;
mod service_logcache;
mod service_login;
mod service_logs;
mod service_manifest;
mod service_model;
mod service_push;
mod service_registry;
mod service_replicas;
mod service_spaces;
mod service_upload;
mod staging_failures;
mod staging_limits;
mod staging_user;
mod stream_layers;
