//! Logging as nats-server operators know it: to standard error or a file (`-l`), the file
//! reopened on SIGUSR1 (after logrotate moved it), debug (`-D`) and protocol trace (`-V`)
//! levels that a reload can change, timestamps (`-T`), text or JSON lines.
//!
//! In: the `[log]` section (flags already applied). Out: a global `tracing` subscriber and
//! a [`Logger`] handle for reopen and reload.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSection};

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("log level {level:?} is not a valid filter: {reason}")]
    Filter { level: String, reason: String },
    #[error("cannot install the logger: {0}")]
    Install(String),
}

/// The running logger: reopens its file, changes its filter.
pub struct Logger {
    filter: reload::Handle<EnvFilter, Registry>,
    /// The log file, when logging to one.
    file: Option<Arc<LogFile>>,
}

/// A log file that can be reopened at its path (or switched to another) while shards log.
pub struct LogFile {
    path: Mutex<PathBuf>,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> Result<LogFile, LogError> {
        Ok(LogFile {
            file: Mutex::new(open_append(path)?),
            path: Mutex::new(path.to_path_buf()),
        })
    }

    /// Opens `path` (or the current path) afresh and writes there from now on.
    fn reopen(&self, path: Option<&Path>) -> Result<(), LogError> {
        let mut current = self.path.lock().unwrap_or_else(PoisonError::into_inner);
        let path = path.map_or_else(|| current.clone(), Path::to_path_buf);
        let file = open_append(&path)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = file;
        *current = path;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.display().to_string(),
            source,
        })
}

/// Writes through the current file; one lock per event, so lines never interleave.
struct FileWriter(Arc<LogFile>);

/// One event's writer: holds the file lock while `tracing` writes the line.
struct Locked<'a>(MutexGuard<'a, File>);

impl Write for Locked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = Locked<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Locked(self.0.file.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The filter for `log`: `RUST_LOG` if set, else the configured level, plus the protocol
/// trace target when tracing.
pub fn filter_for(log: &LogSection) -> Result<EnvFilter, LogError> {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| log.level.clone());
    let directives = if log.trace {
        format!("{base},{}=trace", shards::trace::TARGET)
    } else {
        base
    };
    EnvFilter::try_new(&directives).map_err(|e| LogError::Filter {
        level: directives.clone(),
        reason: e.to_string(),
    })
}

impl Logger {
    /// Installs the global subscriber for `log` and turns the engine's protocol trace on
    /// or off to match.
    pub fn install(log: &LogSection) -> Result<Logger, LogError> {
        let (filter, handle) = reload::Layer::new(filter_for(log)?);
        let file = match log.file.as_str() {
            "" => None,
            path => Some(Arc::new(LogFile::open(Path::new(path))?)),
        };
        let (writer, ansi) = match &file {
            Some(f) => (BoxMakeWriter::new(FileWriter(Arc::clone(f))), false),
            None => (
                BoxMakeWriter::new(io::stderr),
                std::io::IsTerminal::is_terminal(&io::stderr()),
            ),
        };
        let layer = fmt_layer(log, writer, ansi);
        tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .try_init()
            .map_err(|e| LogError::Install(e.to_string()))?;
        set_trace(log);
        Ok(Logger {
            filter: handle,
            file,
        })
    }

    /// Reopens the log file at its path (SIGUSR1). Logging to standard error: nothing to do.
    pub fn reopen(&self) -> Result<(), LogError> {
        match &self.file {
            Some(f) => f.reopen(None),
            None => Ok(()),
        }
    }

    /// Takes the reloadable parts of `log`: level, trace, and the file path (when logging
    /// to a file already).
    pub fn reload(&self, log: &LogSection) -> Result<(), LogError> {
        let filter = filter_for(log)?;
        if let (Some(f), path) = (&self.file, log.file.as_str()) {
            if !path.is_empty() {
                f.reopen(Some(Path::new(path)))?;
            }
        }
        self.filter
            .reload(filter)
            .map_err(|e| LogError::Install(e.to_string()))?;
        set_trace(log);
        Ok(())
    }
}

fn set_trace(log: &LogSection) {
    let payload_max = usize::try_from(log.trace_payload_max.0).unwrap_or(usize::MAX);
    shards::trace::set(log.trace, payload_max);
}

type FilteredRegistry =
    tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;

/// The line format: text or JSON, with or without timestamps.
fn fmt_layer(
    log: &LogSection,
    writer: BoxMakeWriter,
    ansi: bool,
) -> Box<dyn Layer<FilteredRegistry> + Send + Sync> {
    let base = fmt::layer().with_writer(writer).with_ansi(ansi);
    match (log.format, log.time) {
        (LogFormat::Text, true) => base.boxed(),
        (LogFormat::Text, false) => base.without_time().boxed(),
        (LogFormat::Json, true) => base.json().boxed(),
        (LogFormat::Json, false) => base.json().without_time().boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_adds_the_trace_target_to_the_level() {
        // RUST_LOG, when set in the test environment, takes precedence: skip then.
        if std::env::var("RUST_LOG").is_ok_and(|s| !s.trim().is_empty()) {
            return;
        }
        let log = LogSection {
            trace: true,
            ..LogSection::default()
        };
        let f = filter_for(&log).expect("filter").to_string();
        assert!(f.contains("shardcast::trace=trace"), "{f}");
        let bad = LogSection {
            level: "info,=[".into(),
            ..LogSection::default()
        };
        assert!(matches!(filter_for(&bad), Err(LogError::Filter { .. })));
    }

    #[test]
    fn a_log_file_is_reopened_at_its_path() {
        let dir = std::env::temp_dir().join(format!("shardcast-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a.log");
        let file = Arc::new(LogFile::open(&path).expect("open"));
        let writer = FileWriter(Arc::clone(&file));
        writer.make_writer().write_all(b"one\n").expect("write");
        let moved = dir.join("a.log.1");
        std::fs::rename(&path, &moved).expect("rename");
        writer.make_writer().write_all(b"two\n").expect("write");
        file.reopen(None).expect("reopen");
        writer.make_writer().write_all(b"three\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(&moved).expect("moved"),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("new"), "three\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
