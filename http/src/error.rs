//! The one error type of the HTTP layer: the status ferry should answer with, and why.

use std::fmt;

/// A message ferry refuses. `status` is what the client should get (400, 413, 414, 431, 501,
/// 505 for client requests; always 502 for a broken app response); `reason` is a short
/// human-readable text for logs and the error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: &'static str,
}

impl HttpError {
    pub const fn new(status: u16, reason: &'static str) -> Self {
        HttpError { status, reason }
    }

    pub const fn bad_request(reason: &'static str) -> Self {
        HttpError::new(400, reason)
    }

    /// The same failure, blamed on the app: any defect in a response becomes a 502.
    pub const fn to_bad_gateway(self) -> Self {
        HttpError::new(502, self.reason)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for HttpError {}
