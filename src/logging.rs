//! Logging with `tracing`: to stderr and to a daily file in the data directory's `logs` folder.
//! `RUST_LOG` overrides the default filter (info for the console, warnings for libraries).

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

/// Used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,fabric_console=info";
/// Log files are named `fabric-console.YYYY-MM-DD.log`.
pub const LOG_FILE_PREFIX: &str = "fabric-console";
/// Daily files kept before the oldest is removed.
pub const MAX_LOG_FILES: usize = 14;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("Logging was already set up in this process.")]
    AlreadyInitialized,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for a log collector.
    Json,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn fmt_layer<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => layer.with_ansi(ansi).boxed(),
        LogFormat::Json => layer.json().with_ansi(false).boxed(),
    }
}

/// Keeps the file writer running; hold it until the process ends so the last lines are flushed.
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
    /// The folder log files go to, or `None` when only stderr is used.
    pub file_dir: Option<PathBuf>,
}

/// The filter from `RUST_LOG`, or the default when it is unset or unreadable.
pub fn filter() -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG \"{spec}\" is not a valid filter ({e}); using \"{DEFAULT_FILTER}\".");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// Logs to stderr and to a daily rolling file in `logs_dir`. If the folder cannot be used, logs go to
/// stderr only and a warning says why.
pub fn init(logs_dir: &Path, format: LogFormat) -> Result<LogGuard, LoggingError> {
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_FILE_PREFIX)
        .filename_suffix("log")
        .max_log_files(MAX_LOG_FILES)
        .build(logs_dir);
    let stderr_layer = fmt_layer(format, std::io::stderr, true);
    match appender {
        Ok(appender) => {
            let (writer, worker) = tracing_appender::non_blocking(appender);
            let file_layer = fmt_layer(format, writer, false);
            tracing_subscriber::registry()
                .with(vec![stderr_layer, file_layer])
                .with(filter())
                .try_init()
                .map_err(|_| LoggingError::AlreadyInitialized)?;
            Ok(LogGuard {
                _worker: Some(worker),
                file_dir: Some(logs_dir.to_path_buf()),
            })
        }
        Err(e) => {
            tracing_subscriber::registry()
                .with(stderr_layer)
                .with(filter())
                .try_init()
                .map_err(|_| LoggingError::AlreadyInitialized)?;
            tracing::warn!(
                folder = %logs_dir.display(),
                error = %e,
                "The log folder cannot be used; logging to stderr only"
            );
            Ok(LogGuard {
                _worker: None,
                file_dir: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into a shared buffer, as the log file is.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn written(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber =
            tracing_subscriber::registry().with(fmt_layer(format, move || writer.clone(), false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                service = "ipam1",
                skew_ms = 42,
                "clock skew beyond the threshold"
            );
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_level_message_and_fields() {
        let text = written(LogFormat::Json);
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON object");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "clock skew beyond the threshold");
        assert_eq!(line["fields"]["service"], "ipam1");
        assert_eq!(line["fields"]["skew_ms"], 42);
        assert!(line["timestamp"].is_string(), "{line}");
        let text = written(LogFormat::Text);
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
        assert!(
            text.contains("WARN") && text.contains("skew_ms=42"),
            "{text}"
        );
    }

    #[test]
    fn writes_to_a_daily_file_and_refuses_a_second_setup() {
        let dir = tempfile::tempdir().unwrap();
        let guard = init(dir.path(), LogFormat::Text).unwrap();
        assert_eq!(guard.file_dir.as_deref(), Some(dir.path()));
        tracing::warn!(marker = "log-test-7731", "written by the logging test");
        assert!(matches!(
            init(dir.path(), LogFormat::Text),
            Err(LoggingError::AlreadyInitialized)
        ));
        drop(guard);
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("fabric-console.") && name.ends_with(".log"),
            "{name}"
        );
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("log-test-7731"), "{text}");
    }
}
