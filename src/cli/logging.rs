//! Logging: the library emits `tracing` events; the binary installs one subscriber writing to
//! stderr. Commands (`build`, `push`, `stack import`) print diagnostics as
//! `dropship: warning: ...` at `warn` and above; `serve` writes timestamped text or one JSON object
//! per line at `info` and above. The level comes from `--log-level` (or `-v`/`-q`), else
//! `RUST_LOG`, else the config file (`serve`), else the command's default.

use clap::{Args, ValueEnum};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Global flags, accepted before or after the subcommand.
#[derive(Args, Clone, Default)]
pub struct LogArgs {
    /// Errors only: no progress lines (the result on stdout and errors are still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Debug diagnostics (as --log-level debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Diagnostics shown: error | warn | info | debug | trace (else RUST_LOG; default: warn, and
    /// info for serve).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <LogLevel as ValueEnum>::from_str(s, true)
            .map_err(|_| format!("log level {s:?}: expected error, warn, info, debug or trace"))
    }
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `text` (timestamped lines) or `json` (one object per line), for `serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <LogFormat as ValueEnum>::from_str(s, true)
            .map_err(|_| format!("log format {s:?}: expected text or json"))
    }
}

impl LogArgs {
    /// The level asked for on the command line, if any.
    pub fn flag_level(&self) -> Option<LogLevel> {
        self.log_level.or(if self.verbose {
            Some(LogLevel::Debug)
        } else if self.quiet {
            Some(LogLevel::Error)
        } else {
            None
        })
    }
}

/// The filter: a level from the flags wins over `RUST_LOG`, which wins over `fallback`. A level
/// applies to dropship's own events; other crates stay at `warn` (or `error`) unless `RUST_LOG`
/// names them.
pub fn filter(flag: Option<LogLevel>, fallback: LogLevel) -> EnvFilter {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    match (flag, from_env) {
        (None, Some(directives)) => EnvFilter::try_new(&directives).unwrap_or_else(|e| {
            eprintln!("dropship: warning: RUST_LOG ignored: {e}");
            directives_for(fallback)
        }),
        (level, _) => directives_for(level.unwrap_or(fallback)),
    }
}

fn directives_for(level: LogLevel) -> EnvFilter {
    let others = if level == LogLevel::Error {
        "error"
    } else {
        "warn"
    };
    EnvFilter::new(format!("{others},dropship={}", level.name()))
}

/// For commands run by people: `dropship: warning: message key=value`.
pub fn init_cli(args: &LogArgs) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(args.flag_level(), LogLevel::Warn))
        .with_writer(std::io::stderr)
        .event_format(CliFormat)
        .try_init();
}

/// For `serve`: the level from the flags, else `RUST_LOG`, else `log_level` in the config file,
/// else `info`; the format from `--log-format`/`DROPSHIP_LOG_FORMAT`, else `log_format`, else text.
pub fn init_serve(
    args: &LogArgs,
    format: Option<LogFormat>,
    file: &dropship::service::config::FileConfig,
) -> anyhow::Result<()> {
    let file_level = parse::<LogLevel>(&file.log_level)?;
    let file_format = parse::<LogFormat>(&file.log_format)?;
    init_service(
        filter(args.flag_level(), file_level.unwrap_or(LogLevel::Info)),
        format.or(file_format).unwrap_or(LogFormat::Text),
    );
    Ok(())
}

fn parse<T: std::str::FromStr<Err = String>>(value: &Option<String>) -> anyhow::Result<Option<T>> {
    let parsed = value.as_deref().map(str::parse).transpose();
    parsed.map_err(|e| anyhow::anyhow!("config file: {e}"))
}

/// Set once `serve`'s logger is installed: its fatal error is then a log event too (a JSON log
/// stays JSON to its last line).
static SERVICE_LOG: AtomicBool = AtomicBool::new(false);

/// The error that ends the process: `dropship: error: ...`, or an `error` event in the service's
/// log (unless that level is filtered out).
pub fn fatal(e: &anyhow::Error) {
    if SERVICE_LOG.load(Ordering::Relaxed) && tracing::enabled!(Level::ERROR) {
        tracing::error!("{e:#}");
    } else {
        eprintln!("dropship: error: {e:#}");
    }
}

/// For `serve`: timestamped text with the target and span fields, or JSON lines (the event's
/// fields at the top level, the current span, e.g. `{"name":"build","guid":...}`, under `span`).
fn init_service(level: EnvFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(level)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    SERVICE_LOG.store(installed.is_ok(), Ordering::Relaxed);
}

struct CliFormat;

impl<S, N> FormatEvent<S, N> for CliFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "dropship: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_formats_parse() {
        assert_eq!("WARN".parse::<LogLevel>().unwrap(), LogLevel::Warn);
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("loud".parse::<LogLevel>().is_err());
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn flags_pick_the_level() {
        let mut a = LogArgs::default();
        assert_eq!(a.flag_level(), None);
        a.quiet = true;
        assert_eq!(a.flag_level(), Some(LogLevel::Error));
        a.verbose = true;
        assert_eq!(a.flag_level(), Some(LogLevel::Debug));
        a.log_level = Some(LogLevel::Trace);
        assert_eq!(a.flag_level(), Some(LogLevel::Trace));
    }
}
