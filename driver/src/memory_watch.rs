//! `--memory-limit`: the driver measures each app process's memory on a timer and hands the
//! figure to the engine ([`Input::MemoryMeasured`]), which decides what a process over the
//! limit means (it is replaced, its replacement ready first: `engine/src/restart.rs`).
//!
//! The measure is the one `ferry status` shows (`proc_stats::memory_bytes`: private dirty
//! pages plus swap, as Passenger measures), so the limit and the status agree.

use ferry_engine::{Input, ProcessId};
use std::time::{Duration, Instant};

/// How often each process is measured: reading `/proc/PID/smaps_rollup` costs tens of
/// microseconds a process, and a leak that matters grows over seconds, not milliseconds.
pub const MEMORY_CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub struct MemoryWatch {
    /// Off when `--memory-limit` is 0: nothing is measured.
    on: bool,
    next_at: Instant,
}

impl MemoryWatch {
    pub fn new(memory_limit_mb: u64, now: Instant) -> MemoryWatch {
        MemoryWatch {
            on: memory_limit_mb != 0,
            next_at: now + MEMORY_CHECK_INTERVAL,
        }
    }

    /// The measurements due at `now` (none while off or before the next check), one per
    /// process whose memory can be read.
    pub fn measure(
        &mut self,
        now: Instant,
        processes: impl Iterator<Item = (ProcessId, u32)>,
    ) -> Vec<Input> {
        if !self.on || now < self.next_at {
            return Vec::new();
        }
        self.next_at = now + MEMORY_CHECK_INTERVAL;
        processes
            .filter_map(|(process, pid)| {
                let bytes = crate::proc_stats::memory_bytes(pid)?;
                Some(Input::MemoryMeasured { process, bytes })
            })
            .collect()
    }
}

/// `--memory-limit MB` in bytes, as the engine takes it.
pub fn limit_bytes(memory_limit_mb: u64) -> u64 {
    memory_limit_mb.saturating_mul(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_this_process_once_per_interval_and_nothing_when_off() {
        let start = Instant::now();
        let me = (ProcessId(1), std::process::id());
        let mut watch = MemoryWatch::new(100, start);
        assert!(
            watch.measure(start, [me].into_iter()).is_empty(),
            "not due yet"
        );
        let due = start + MEMORY_CHECK_INTERVAL;
        let inputs = watch.measure(due, [me].into_iter());
        assert!(
            matches!(inputs[..], [Input::MemoryMeasured { process: ProcessId(1), bytes }] if bytes > 0),
            "{inputs:?}"
        );
        assert!(
            watch.measure(due, [me].into_iter()).is_empty(),
            "once per interval"
        );
        let mut off = MemoryWatch::new(0, start);
        assert!(off.measure(due, [me].into_iter()).is_empty());
    }

    #[test]
    fn megabytes_are_mebibytes_as_passenger_counts_them() {
        assert_eq!(limit_bytes(0), 0);
        assert_eq!(limit_bytes(300), 300 * 1024 * 1024);
        assert_eq!(limit_bytes(u64::MAX), u64::MAX);
    }
}
