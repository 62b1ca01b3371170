//! ferry's own limits: file descriptors and memory, and what it does when they run out.
//!
//! Running out is ferry's problem, never an app process's: a failed `accept` pauses
//! accepting (the connections wait in the listen backlog) and a timer retries; a failed
//! `connect` to an app answers the request 503 and tells the engine the process was not at
//! fault; a reserve descriptor lets the admin socket answer `ferry status` at the limit.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// How long accepting pauses after the descriptor table (or memory) ran out. Short: the
/// connections wait in the listen backlog meanwhile, and every retry costs one `accept`.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Whether `error` means ferry itself ran out of something (descriptors, memory, buffers),
/// as opposed to the peer doing something.
pub fn is_exhaustion(error: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let exhausted = [Errno::MFILE, Errno::NFILE, Errno::NOMEM, Errno::NOBUFS];
    error.kind() == ErrorKind::OutOfMemory
        || error
            .raw_os_error()
            .is_some_and(|code| exhausted.iter().any(|e| e.raw_os_error() == code))
}

/// What the client is told when ferry is out of resources, and the log says.
pub fn describe_exhaustion(error: &std::io::Error) -> String {
    format!("ferry is out of resources ({error})")
}

/// Raises the soft limit on open files to the hard limit: the soft default (often 1024) is
/// far below what a server with thousands of connections needs. Returns the limit now in
/// force.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// One descriptor held back for the admin socket: closed to make room for an `accept` that
/// failed for want of descriptors, then taken again.
pub struct ReserveFd(Option<OwnedFd>);

impl ReserveFd {
    pub fn new() -> ReserveFd {
        let mut reserve = ReserveFd(None);
        reserve.restore();
        reserve
    }

    /// Gives the descriptor up; false if it was given up already.
    pub fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a descriptor again if it is free.
    pub fn restore(&mut self) {
        if self.0.is_none() {
            use rustix::fs::{Mode, OFlags};
            self.0 =
                rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok();
        }
    }
}

impl Default for ReserveFd {
    fn default() -> Self {
        ReserveFd::new()
    }
}

/// Accepting, paused after the descriptors ran out: when to try again.
#[derive(Default)]
pub struct AcceptPause {
    until: Option<Instant>,
}

impl AcceptPause {
    /// Pauses accepting; true if it was not paused already (the log says so once).
    pub fn pause(&mut self, now: Instant) -> bool {
        let first = self.until.is_none();
        self.until = Some(now + ACCEPT_RETRY_DELAY);
        first
    }

    /// Ends the pause; true if there was one.
    pub fn resume(&mut self) -> bool {
        self.until.take().is_some()
    }

    #[cfg(test)]
    pub fn is_paused(&self) -> bool {
        self.until.is_some()
    }

    pub fn retry_at(&self) -> Option<Instant> {
        self.until
    }

    pub fn due(&self, now: Instant) -> bool {
        self.until.is_some_and(|at| at <= now)
    }
}

/// How long a spawn that found ferry out of descriptors or memory waits before it is tried
/// again.
pub const SPAWN_RETRY_DELAY: Duration = Duration::from_millis(100);

/// A listening TCP socket on `address` (host:port) with a listen backlog of
/// `backlog` connections (the kernel caps it at `net.core.somaxconn`).
pub fn bind_listener(address: &str, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    use std::net::ToSocketAddrs;
    let mut last_error = None;
    for addr in address.to_socket_addrs()? {
        let family = if addr.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let attempt = (|| {
            let socket =
                rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
            rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
            rustix::net::bind(&socket, &addr)?;
            rustix::net::listen(&socket, backlog.min(i32::MAX as u32) as i32)?;
            Ok::<_, rustix::io::Errno>(std::net::TcpListener::from(socket))
        })();
        match attempt {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(std::io::Error::from(e)),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(ErrorKind::InvalidInput, "the address resolves to nothing")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_and_memory_errors_are_ferrys_own() {
        for errno in [
            rustix::io::Errno::MFILE,
            rustix::io::Errno::NFILE,
            rustix::io::Errno::NOMEM,
            rustix::io::Errno::NOBUFS,
        ] {
            assert!(is_exhaustion(&std::io::Error::from(errno)), "{errno}");
        }
        for errno in [rustix::io::Errno::CONNREFUSED, rustix::io::Errno::NOENT] {
            assert!(!is_exhaustion(&std::io::Error::from(errno)), "{errno}");
        }
    }

    #[test]
    fn a_pause_is_reported_once_and_ends_on_resume() {
        let mut pause = AcceptPause::default();
        let now = Instant::now();
        assert!(pause.pause(now));
        assert!(!pause.pause(now));
        assert!(!pause.due(now));
        assert!(pause.due(now + ACCEPT_RETRY_DELAY));
        assert!(pause.resume());
        assert!(!pause.resume());
        assert!(!pause.is_paused());
    }
}
