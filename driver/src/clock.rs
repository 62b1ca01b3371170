//! The one place where real time becomes engine time.

use ferry_engine::Instant;

/// Maps the monotonic clock onto engine instants: nanoseconds since the server started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Instant {
        let nanos = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long until `at`, for the event loop's poll timeout.
    pub fn until(&self, at: Instant) -> std::time::Duration {
        at.saturating_since(self.now())
    }
}
