//! systemd's `Type=notify` protocol: `READY=1` once the first app process is ready,
//! `STOPPING=1` when a stop begins, each a datagram to the unix socket `$NOTIFY_SOCKET`
//! names (a path, or `@name` in the abstract namespace). std's `UnixDatagram` does it in a
//! few lines, lighter than a crate.

use std::os::unix::net::{SocketAddr, UnixDatagram};

pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// For messages.
    shown: String,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` asks for (none when it is unset: not under systemd).
    /// The variable is then removed, so app processes do not take ferry's messages for theirs.
    pub fn from_env() -> Result<Option<Notifier>, String> {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        std::env::remove_var("NOTIFY_SOCKET");
        let value = value.to_string_lossy().into_owned();
        Notifier::to(&value).map(Some)
    }

    pub fn to(value: &str) -> Result<Notifier, String> {
        let error = |why: String| format!("NOTIFY_SOCKET={value}: {why}");
        let addr = match value.strip_prefix('@') {
            Some(name) => abstract_addr(name).map_err(|e| error(e.to_string()))?,
            None if value.starts_with('/') => {
                SocketAddr::from_pathname(value).map_err(|e| error(e.to_string()))?
            }
            None => {
                return Err(error(
                    "not a socket path (/…) or an abstract socket name (@…)".into(),
                ))
            }
        };
        let socket = UnixDatagram::unbound()
            .map_err(|e| error(format!("cannot make a datagram socket: {e}")))?;
        Ok(Notifier {
            socket,
            addr,
            shown: value.to_string(),
        })
    }

    /// Sends `state` (e.g. `READY=1`); the error is for the server's log.
    pub fn notify(&self, state: &str) -> Result<(), String> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(drop)
            .map_err(|e| format!("cannot tell systemd {state} over {}: {e}", self.shown))
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &str) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::other(
        "abstract sockets exist on Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::to(path.to_str().unwrap()).unwrap();
        notifier.notify("READY=1").unwrap();
        let mut buf = [0; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn a_datagram_reaches_an_abstract_socket() {
        let name = format!("ferry-test-{}", std::process::id());
        let listener = UnixDatagram::bind_addr(&abstract_addr(&name).unwrap()).unwrap();
        Notifier::to(&format!("@{name}"))
            .unwrap()
            .notify("STOPPING=1")
            .unwrap();
        let mut buf = [0; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn a_value_that_is_no_socket_is_a_clear_error() {
        let error = Notifier::to("relative/sock").err().unwrap();
        assert!(
            error.contains("NOTIFY_SOCKET=relative/sock: not a socket path"),
            "{error}"
        );
        let error = Notifier::to("/nonexistent/sock")
            .unwrap()
            .notify("READY=1")
            .unwrap_err();
        assert!(
            error.contains("cannot tell systemd READY=1 over /nonexistent/sock"),
            "{error}"
        );
    }
}
