//! `dropship serve`.

use super::{absolute, default_buildpacks_dir, logging, ServeArgs};
use anyhow::Result;

/// `dropship serve`.
pub async fn serve(a: ServeArgs, log: &logging::LogArgs) -> Result<i32> {
    use dropship::service::config::{Config, FileConfig, Overrides};
    let file = match &a.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    logging::init_serve(log, a.log_format, &file)?;
    let overrides = Overrides {
        listen: a.listen,
        data_dir: a.data_dir.as_deref().map(absolute).transpose()?,
        database: a.database,
        stack: a.stack,
        buildpacks_dir: a.buildpacks_dir.as_deref().map(absolute).transpose()?,
        registry: a.registry,
        tokens: a.tokens,
        users: users(a.users),
        signing_key: a.signing_key.as_deref().map(absolute).transpose()?,
        concurrency: a.concurrency,
        staging_timeout: a.staging_timeout,
        sandbox: a.sandbox,
        public_address: a.public_address,
        max_log: a.max_log,
        header_timeout: a.header_timeout,
        build_lease: a.build_lease,
        staging_pids: a.staging_pids,
        host_is_container: a.host_is_container,
        blob_store: a.blob_store,
    };
    let config = Config::resolve(file, overrides, || default_buildpacks_dir().ok())?;
    dropship::service::serve(config).await?;
    Ok(0)
}

/// `--user` flags, else DROPSHIP_USERS split at commas (a flag keeps commas in its password).
fn users(flags: Vec<String>) -> Vec<String> {
    if !flags.is_empty() {
        return flags;
    }
    std::env::var("DROPSHIP_USERS")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}
