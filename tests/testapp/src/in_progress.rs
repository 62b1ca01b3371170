//! Requests in progress in this process, for `TESTAPP_CONCURRENCY_FILE`: how many requests
//! a proxy has this process working on at once.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Requests being handled now.
static IN_PROGRESS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This connection's current request is counted in `IN_PROGRESS`.
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Counts a request in progress until its response begins ([`request_answered`]) or, failing
/// that, until it is dropped. Ending the count before the response goes out matters: the
/// proxy may send the next request as soon as it has the response, before this thread
/// would get to a later decrement.
pub struct InProgress;

impl InProgress {
    /// Counts the current request of this thread, and appends `<pid> <count>` to `file`.
    pub fn start(pid: u32, file: Option<&Mutex<File>>) -> InProgress {
        let now = IN_PROGRESS.fetch_add(1, Ordering::SeqCst) + 1;
        COUNTED.with(|c| c.set(true));
        if let Some(file) = file {
            let line = format!("{pid} {now}\n");
            let _ = file.lock().unwrap().write_all(line.as_bytes());
        }
        InProgress
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        request_answered();
    }
}

/// The current request's response begins: it no longer counts as in progress.
pub fn request_answered() {
    if COUNTED.with(|c| c.replace(false)) {
        IN_PROGRESS.fetch_sub(1, Ordering::SeqCst);
    }
}
