//! Checks that this host can run glommio before any shard starts: io_uring is enabled and
//! permitted, and the locked-memory limit leaves room for its rings. In: the kernel's
//! sysctl, this process's limits and a test ring; out: `Ok` or a [`PreflightError`] whose
//! message says what is wrong and what to do. glommio itself would panic with a
//! misleading "kernel too old" message whatever the cause.
//!
//! `docs/configuration.md` lists every message; its table is rendered from
//! [`PreflightError::examples`] and checked by `tests/docs.rs`.

/// Soft `RLIMIT_MEMLOCK` below which an unprivileged server refuses to start: glommio's
/// registered buffers need this much, each shard's rings about 48 KiB more.
pub const MEMLOCK_KIB_MIN: u64 = 512;

/// Why this host cannot run the shards. `Display` is the whole operator message.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// `kernel.io_uring_disabled = 2`: io_uring is off for every process.
    #[error(
        "io_uring is disabled by the kernel (kernel.io_uring_disabled=2): \
         run `sysctl -w kernel.io_uring_disabled=0` as root"
    )]
    IoUringDisabled,
    /// `io_uring_setup` returned `EPERM`.
    #[error(
        "io_uring_setup is not permitted (EPERM): either kernel.io_uring_disabled=1 and this \
         process has neither CAP_SYS_ADMIN nor the group in kernel.io_uring_group, or a seccomp \
         profile blocks io_uring (containers' default profiles do); set the sysctl to 0, run as \
         a member of that group, or use a profile that allows io_uring_* \
         (e.g. docker --security-opt seccomp=unconfined)"
    )]
    IoUringNotPermitted,
    /// `io_uring_setup` returned `ENOSYS`.
    #[error(
        "the kernel has no io_uring (io_uring_setup failed with ENOSYS): \
         Linux 5.8 or newer built with io_uring is required"
    )]
    IoUringMissing,
    /// `io_uring_setup` returned `ENOMEM`: the test ring could not be locked in memory.
    #[error(
        "locked-memory limit too low: io_uring_setup failed with ENOMEM; raise it with \
         `ulimit -l 65536`, LimitMEMLOCK= (systemd) or --ulimit memlock=-1:-1 (docker)"
    )]
    IoUringNoMemory,
    /// The soft `RLIMIT_MEMLOCK` of an unprivileged process is under [`MEMLOCK_KIB_MIN`].
    #[error(
        "locked-memory limit too low: RLIMIT_MEMLOCK is {limit_kib} KiB; glommio needs at least \
         {MEMLOCK_KIB_MIN} KiB, and each shard's io_uring rings take about 48 KiB more; raise it \
         with `ulimit -l 65536`, LimitMEMLOCK= (systemd) or --ulimit memlock=-1:-1 (docker)"
    )]
    MemLockTooLow {
        /// The soft limit found, in KiB.
        limit_kib: u64,
    },
    /// Any other failure of `io_uring_setup`.
    #[error("io_uring_setup failed: {0}; shardcast cannot run without io_uring")]
    IoUringSetup(std::io::Error),
}

impl PreflightError {
    /// What the message means and what to do about it, at more length than the message:
    /// the second column of the table in `docs/configuration.md`.
    pub fn explanation(&self) -> &'static str {
        match self {
            PreflightError::IoUringDisabled => {
                "The sysctl turns io_uring off for every process, root included. Set it to 0 \
                 (and in `/etc/sysctl.d/` to keep it after a reboot)."
            }
            PreflightError::IoUringNotPermitted => {
                "Creating the test ring was refused. With `kernel.io_uring_disabled=1` the \
                 kernel allows io_uring only to processes with `CAP_SYS_ADMIN` (root) or in \
                 the group named by `kernel.io_uring_group`. Otherwise a seccomp profile blocks \
                 the io_uring system calls, the default in Docker and many Kubernetes set-ups: \
                 allow `io_uring_setup`, `io_uring_enter` and `io_uring_register`."
            }
            PreflightError::IoUringMissing => {
                "The kernel is older than 5.8 or built without io_uring. A seccomp filter that \
                 answers `ENOSYS` looks the same; allow the io_uring system calls."
            }
            PreflightError::IoUringNoMemory => {
                "The test ring could not be locked in memory. Raise the locked-memory limit as \
                 described below."
            }
            PreflightError::MemLockTooLow { .. } => {
                "Checked only when the server is not root and the soft limit is finite. \
                 Raise the limit as described below; `65536` KiB leaves room for many shards."
            }
            PreflightError::IoUringSetup(_) => {
                "Any other failure of the test ring; the system error says why."
            }
        }
    }

    /// One value of every variant, in the order the documentation lists them.
    #[doc(hidden)]
    pub fn examples() -> Vec<PreflightError> {
        vec![
            PreflightError::IoUringDisabled,
            PreflightError::IoUringNotPermitted,
            PreflightError::IoUringMissing,
            PreflightError::IoUringNoMemory,
            PreflightError::MemLockTooLow { limit_kib: 64 },
            PreflightError::IoUringSetup(std::io::Error::from_raw_os_error(libc::EINVAL)),
        ]
    }
}

/// Checks io_uring and the locked-memory limit before glommio does.
pub fn check_io_uring() -> Result<(), PreflightError> {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled");
    if disabled.is_ok_and(|v| v.trim() == "2") {
        return Err(PreflightError::IoUringDisabled);
    }
    check_memlock()?;
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup takes an entry count and a pointer to a 120-byte
    // io_uring_params struct, which `params` provides zeroed.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: fd is the ring descriptor just returned to us.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::ENOSYS) => PreflightError::IoUringMissing,
        Some(libc::EPERM) => PreflightError::IoUringNotPermitted,
        Some(libc::ENOMEM) => PreflightError::IoUringNoMemory,
        _ => PreflightError::IoUringSetup(err),
    })
}

/// Refuses a finite soft `RLIMIT_MEMLOCK` under [`MEMLOCK_KIB_MIN`] for a process that is
/// not root (root is exempt from the limit).
fn check_memlock() -> Result<(), PreflightError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let limit_kib = lim.rlim_cur / 1024;
    if got && !root && lim.rlim_cur != libc::RLIM_INFINITY && limit_kib < MEMLOCK_KIB_MIN {
        return Err(PreflightError::MemLockTooLow { limit_kib });
    }
    Ok(())
}

/// Raises the open-file soft limit to the hard limit: each client is one descriptor.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position of each variant in `examples()`; adding a variant breaks this match
    /// until it has one.
    fn position(e: &PreflightError) -> usize {
        match e {
            PreflightError::IoUringDisabled => 0,
            PreflightError::IoUringNotPermitted => 1,
            PreflightError::IoUringMissing => 2,
            PreflightError::IoUringNoMemory => 3,
            PreflightError::MemLockTooLow { .. } => 4,
            PreflightError::IoUringSetup(_) => 5,
        }
    }

    #[test]
    fn examples_hold_every_variant_once_in_order() {
        // Each variant has exactly one `#[error(...)]` attribute: count them in the source,
        // so a variant missing from `examples()` (and so from the docs) fails here.
        let variants = include_str!("preflight.rs")
            .lines()
            .filter(|l| l.trim_start().starts_with("#[error("))
            .count();
        let positions: Vec<usize> = PreflightError::examples().iter().map(position).collect();
        assert_eq!(positions, (0..variants).collect::<Vec<_>>());
    }

    #[test]
    fn messages_are_distinct_and_carry_the_values() {
        let messages: std::collections::HashSet<String> = PreflightError::examples()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages.len(), PreflightError::examples().len());
        let low = PreflightError::MemLockTooLow { limit_kib: 64 }.to_string();
        assert!(low.contains("RLIMIT_MEMLOCK is 64 KiB"), "{low}");
        assert!(
            low.contains("at least 512 KiB") && low.contains("ulimit -l"),
            "{low}"
        );
        let other = PreflightError::IoUringSetup(std::io::Error::from_raw_os_error(libc::EINVAL));
        assert!(other.to_string().contains("os error 22"), "{other}");
    }

    #[test]
    fn this_host_passes_the_check_the_server_runs() {
        // Every integration test needs io_uring too; if this fails, the message says why.
        if let Err(e) = check_io_uring() {
            panic!("{e}");
        }
    }
}
