//! SIGHUP: re-read the configuration file (with the command line's flags on top, as at
//! start) and put what can change while running in force: the limits (every shard, see
//! `shards::server::Controller::reload`) and the `[log]` level, file and trace. What needs
//! a restart (addresses, shard count, rings, the log format) keeps its running value and
//! is named in the log. A file that does not load or validate changes nothing.

use shards::server::Controller;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::logging::{filter_for, Logger};

/// Reloads the configuration; `running` is updated to what is now in force.
pub fn reload(args: &ServeArgs, running: &mut Config, logger: &Logger, controller: &Controller) {
    let new = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            failed(&e);
            return;
        }
    };
    if let Err(e) = filter_for(&new.log) {
        tracing::error!("reload failed: {e}; the running configuration stays");
        return;
    }
    let mut refused = restart_only_changes(running, &new);
    let log_changes = log_changes(running, &new);
    if !log_changes.is_empty() {
        if let Err(e) = logger.reload(&new.log) {
            failed(&e);
            return;
        }
    }
    let limits = match controller.reload(&new.server_config().limits) {
        Ok(report) => report,
        Err(e) => {
            failed(&e);
            return;
        }
    };
    refused.extend(limits.refused);
    let mut applied = log_changes;
    applied.extend(limits.applied);
    if running.auth != new.auth {
        // Validated with the file; connections already in keep what they were given.
        if let Err(e) = controller.reload_auth(&new.auth.engine()) {
            failed(&e);
            return;
        }
        applied.push("auth");
    }
    if running.logs.irc_colours != new.logs.irc_colours {
        shards::wire::irc::set_log_colours(new.logs.irc_colours);
        applied.push("logs.irc_colours");
    }
    if running.logs.route != new.logs.route || running.logs.all_subject != new.logs.all_subject {
        // Validated with the file: every rule compiles.
        controller.reload_log_rules(&new.logs.engine());
        applied.push("logs.route");
    }
    *running = keep_restart_only(running, new);
    if applied.is_empty() {
        tracing::info!("configuration reloaded: nothing changed that can change while running");
    } else {
        tracing::info!(applied = %applied.join(", "), "configuration reloaded");
    }
    if !refused.is_empty() {
        tracing::warn!(
            settings = %refused.join(", "),
            "changed in the configuration but only take effect at a restart; running values kept"
        );
    }
}

/// Logs a reload that changed nothing, its reason on the same line.
fn failed(e: &dyn std::fmt::Display) {
    let reason = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    tracing::error!(error = %reason, "reload failed; the running configuration stays");
}

/// Settings outside the engine's limits that differ and need a restart.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks = [
        ("host", old.host != new.host),
        ("port", old.port != new.port),
        ("shards", old.shards != new.shards),
        ("server_name", old.server_name != new.server_name),
        ("pid_file", old.pid_file != new.pid_file),
        ("log.time", old.log.time != new.log.time),
        ("log.format", old.log.format != new.log.format),
        ("monitoring", old.monitoring != new.monitoring),
        ("irc", old.irc != new.irc),
        ("history", old.history != new.history),
        ("tls", old.tls != new.tls),
        ("leafnode", old.leafnode != new.leafnode),
        ("logs.enabled", old.logs.enabled != new.logs.enabled),
        ("logs.tcp_port", old.logs.tcp_port != new.logs.tcp_port),
        (
            "logs.syslog_tcp_port",
            old.logs.syslog_tcp_port != new.logs.syslog_tcp_port,
        ),
        (
            "logs.syslog_udp_port",
            old.logs.syslog_udp_port != new.logs.syslog_udp_port,
        ),
        (
            "logs.syslog_udp_buffer",
            old.logs.syslog_udp_buffer != new.logs.syslog_udp_buffer,
        ),
        (
            "logs.allow_from",
            old.logs.allow_from != new.logs.allow_from,
        ),
        (
            "logs.max_record_bytes",
            old.logs.max_record_bytes != new.logs.max_record_bytes,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

/// The `[log]` settings that differ and change while running.
fn log_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks = [
        ("log.level", old.log.level != new.log.level),
        ("log.file", old.log.file != new.log.file),
        ("log.trace", old.log.trace != new.log.trace),
        (
            "log.trace_payload_max",
            old.log.trace_payload_max != new.log.trace_payload_max,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

/// `new`, with the running value of everything that needs a restart.
fn keep_restart_only(old: &Config, mut new: Config) -> Config {
    new.host = old.host.clone();
    new.port = old.port;
    new.shards = old.shards;
    new.server_name = old.server_name.clone();
    new.pid_file = old.pid_file.clone();
    new.log.time = old.log.time;
    new.log.format = old.log.format;
    new.spin_before_park = old.spin_before_park;
    new.ring = old.ring.clone();
    new.monitoring = old.monitoring.clone();
    new.irc = old.irc.clone();
    new.history = old.history.clone();
    new.logs.enabled = old.logs.enabled;
    new.logs.tcp_port = old.logs.tcp_port;
    new.logs.syslog_tcp_port = old.logs.syslog_tcp_port;
    new.logs.syslog_udp_port = old.logs.syslog_udp_port;
    new.logs.syslog_udp_buffer = old.logs.syslog_udp_buffer;
    new.logs.max_record_bytes = old.logs.max_record_bytes;
    new.logs.allow_from = old.logs.allow_from.clone();
    new.tls = old.tls.clone();
    new.leafnode = old.leafnode.clone();
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, LogFormat, Shards};

    #[test]
    fn changes_are_sorted_into_live_and_restart_only() {
        let old = Config::default();
        let mut new = Config {
            port: 5000,
            shards: Shards::Count(3),
            ..Config::default()
        };
        new.log.level = "debug".into();
        new.log.format = LogFormat::Json;
        new.limits.max_pending = ByteSize(1 << 20);
        new.ring.slots = 128;
        assert_eq!(
            restart_only_changes(&old, &new),
            ["port", "shards", "log.format"]
        );
        assert_eq!(log_changes(&old, &new), ["log.level"]);
        let kept = keep_restart_only(&old, new);
        assert_eq!(
            (kept.port, kept.shards, kept.ring.slots),
            (4222, Shards::Auto, 64)
        );
        assert_eq!(kept.log.format, LogFormat::Text);
        assert_eq!(kept.log.level, "debug");
        assert_eq!(kept.limits.max_pending, ByteSize(1 << 20));
    }
}
