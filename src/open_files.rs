//! The open-file limit (`RLIMIT_NOFILE`): every socket is a file descriptor, and the soft limit
//! is often still the historical 1024 although the hard limit allows far more. At start-up the
//! soft limit is raised to the hard one (what any process may do for itself), and the HTTP
//! connection cap is kept under it with room to spare for everything else (RTMP, storage
//! clients, files), so that a crowd of connections is refused by the cap instead of making
//! `accept` fail with "Too many open files" for HTTP and RTMP alike.

/// Descriptors kept free of HTTP connections: RTMP ingest, the storage's clients, the chat's
/// files, the runtime's own, with a wide margin.
pub const KEPT_FOR_THE_REST: u64 = 256;

/// The soft limit before and after [`raise_to_hard_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    pub before: u64,
    pub now: u64,
}

/// Raises the soft open-file limit of this process to its hard limit.
#[cfg(unix)]
// `rlim_t` is `u64` here but 32 bits wide on some 32-bit targets.
#[allow(clippy::useless_conversion)]
pub fn raise_to_hard_limit() -> std::io::Result<OpenFileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the valid pointer it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = u64::from(limit.rlim_cur);
    if limit.rlim_cur >= limit.rlim_max {
        return Ok(OpenFileLimit {
            before,
            now: before,
        });
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one `rlimit` through the valid pointer it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OpenFileLimit {
        before,
        now: u64::from(raised.rlim_cur),
    })
}

/// No such limit to raise.
#[cfg(not(unix))]
pub fn raise_to_hard_limit() -> std::io::Result<OpenFileLimit> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no open-file limit on this platform",
    ))
}

/// The HTTP connections that fit in `limit` open files beside everything else, at most
/// `configured` (and at least 1, so a tiny limit still serves someone).
pub fn connections_that_fit(configured: usize, limit: u64) -> usize {
    let room = limit.saturating_sub(KEPT_FOR_THE_REST).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_under_the_limit() {
        assert_eq!(
            connections_that_fit(16_384, 1024),
            1024 - KEPT_FOR_THE_REST as usize
        );
        assert_eq!(connections_that_fit(16_384, 1 << 20), 16_384);
        assert_eq!(connections_that_fit(16_384, 100), 1);
        // RLIM_INFINITY
        assert_eq!(connections_that_fit(16_384, u64::MAX), 16_384);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let limit = raise_to_hard_limit().unwrap();
        assert!(limit.now >= limit.before);
        let again = raise_to_hard_limit().unwrap();
        assert_eq!(again.before, limit.now);
        assert_eq!(again.now, limit.now);
    }
}
