//! The admin socket: `ferry status` and `ferry stop` talk to the server here.
//!
//! One command per connection, a line (`status`, `stop`, `restart`), answered and closed.
//! Callers are checked by their peer credentials: only root and the user running the server
//! get an answer; a caller whose identity cannot be read is refused, never trusted. The
//! connection reads the command and asks the server to carry it out
//! ([`Action::AdminCommand`]); the server answers through [`AdminConn::answer`].

use crate::actions::{Action, Actions};
use crate::buffers::{read_into, OutBuf, ReadResult};
use mio::net::UnixStream;

const ADMIN_REQUEST_MAX_BYTES: usize = 256;

pub struct AdminConn {
    key: usize,
    pub stream: UnixStream,
    inbuf: Vec<u8>,
    out: OutBuf,
    answered: bool,
    /// The caller is root or the server's user. Others get a refusal once they have sent
    /// their command (answering earlier would make their write fail and hide the refusal).
    allowed: bool,
}

fn caller_allowed(stream: &UnixStream) -> bool {
    match rustix::net::sockopt::socket_peercred(stream) {
        Ok(cred) => {
            let uid = cred.uid.as_raw();
            uid == 0 || uid == rustix::process::geteuid().as_raw()
        }
        Err(_) => false,
    }
}

impl AdminConn {
    /// A connection the server accepted; the caller's credentials are read at once.
    pub fn new(key: usize, stream: UnixStream) -> AdminConn {
        let allowed = caller_allowed(&stream);
        AdminConn {
            key,
            stream,
            inbuf: Vec::new(),
            out: OutBuf::default(),
            answered: false,
            allowed,
        }
    }

    fn close(&self, out: &mut Actions) {
        out.push(Action::CloseAdmin(self.key));
    }

    pub fn on_event(&mut self, out: &mut Actions) {
        if !self.allowed {
            return self.refuse(out);
        }
        if !self.answered {
            let gone = match read_into(
                &mut self.stream,
                &mut self.inbuf,
                ADMIN_REQUEST_MAX_BYTES,
                true,
            ) {
                ReadResult::Open | ReadResult::Full => false,
                ReadResult::Eof | ReadResult::Failed => true,
            };
            if let Some(end) = self.inbuf.iter().position(|b| *b == b'\n') {
                let command = String::from_utf8_lossy(&self.inbuf[..end])
                    .trim()
                    .to_string();
                self.answered = true;
                return out.push(Action::AdminCommand {
                    conn: self.key,
                    command,
                });
            } else if self.inbuf.len() >= ADMIN_REQUEST_MAX_BYTES || gone {
                return self.close(out);
            }
        }
        self.flush(out);
    }

    /// The reply to the command, from the server.
    pub fn answer(&mut self, reply: &str, out: &mut Actions) {
        self.out.buffer().extend_from_slice(reply.as_bytes());
        self.flush(out);
    }

    fn flush(&mut self, out: &mut Actions) {
        if self.answered && (self.out.flush_to(&mut self.stream).is_err() || self.out.is_empty()) {
            self.close(out);
        }
    }

    /// Another user's connection: the refusal goes out at once and the write side closes, so
    /// the caller reads the refusal and an end; whatever it sends is read and dropped until
    /// it hangs up, so its own write does not fail before it can read the answer.
    fn refuse(&mut self, out: &mut Actions) {
        if !self.answered {
            self.answered = true;
            self.out.buffer().extend_from_slice(
                b"refused: only root and the server's user may use this socket\n",
            );
            out.log("Refused an admin connection from another user");
        }
        if self.out.flush_to(&mut self.stream).is_err() {
            return self.close(out);
        }
        if self.out.is_empty() {
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
        }
        self.inbuf.clear();
        let ended = matches!(
            read_into(
                &mut self.stream,
                &mut self.inbuf,
                ADMIN_REQUEST_MAX_BYTES,
                true
            ),
            ReadResult::Eof | ReadResult::Failed
        );
        if ended || self.inbuf.contains(&b'\n') {
            self.close(out);
        }
    }
}
