//! Owns reading another process's CPU time and memory from /proc (for `--server-pid`) and
//! this process's own CPU time.

use std::fs;

/// CPU time and resident memory of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User + system CPU seconds over all its threads so far.
    pub cpu_s: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// Reads `pid`'s usage, or says why it cannot.
pub fn usage(pid: u32) -> Result<Usage, String> {
    Ok(Usage {
        rss_bytes: rss_bytes(pid)?,
        cpu_s: cpu_seconds(pid)?,
    })
}

/// `pid`'s resident set size in bytes (cheap enough to sample every few ms).
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e} (is --server-pid right?)"))?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status (has process {pid} exited?)"))?;
    Ok(rss_kb * 1024)
}

/// CPU seconds of all of `pid`'s threads: nanosecond run times from each thread's schedstat,
/// or clock ticks from /proc/PID/stat when schedstat is not available.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        let mut ns = 0u64;
        let mut seen = 0;
        for task in tasks.flatten() {
            let Ok(text) = fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            if let Some(v) = text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            {
                ns += v;
                seen += 1;
            }
        }
        if seen > 0 {
            return Ok(ns as f64 / 1e9);
        }
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
        return Err(format!("unexpected format of /proc/{pid}/stat"));
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((utime + stime) as f64 / hz)
}

/// This process's user + system CPU seconds so far.
pub fn own_cpu_seconds() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we pass.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        // Burn a little CPU so the figure is above zero.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let u = usage(std::process::id()).expect("own /proc entry");
        assert!(u.cpu_s > 0.0, "{u:?}");
        assert!(u.rss_bytes > 0, "{u:?}");
        assert!(own_cpu_seconds() > 0.0);
    }

    #[test]
    fn a_missing_process_is_explained() {
        let e = usage(u32::MAX).unwrap_err();
        assert!(e.contains("--server-pid"), "{e}");
    }
}
