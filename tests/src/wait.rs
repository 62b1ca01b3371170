//! Bounded waits: every wait in the tests polls a condition with a deadline.

use std::time::{Duration, Instant};

/// Polls `condition` every few milliseconds until it returns `Some`, or panics naming `what`
/// after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(value) = condition() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
