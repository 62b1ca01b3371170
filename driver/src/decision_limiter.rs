//! How many per-request decisions (503, 502, 504) reach the log. In an overload they come by
//! the tens of thousands a second (a walkthrough burst logged 391,985 lines, 30 MB, in 10 s),
//! which would fill a disk and cost the server the time it needs to answer. The log takes
//! the first [`LINES_PER_WINDOW`] of them in each [`WINDOW`], then one line per decision and
//! reason for the rest once the window is over: every decision is still counted, and the
//! access log and the metrics keep one record per request. Pool decisions (spawns, stops)
//! are never held back.

use crate::cli::LogLevel;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The stretch over which lines are counted.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Per-request lines written in full in one window.
pub const LINES_PER_WINDOW: u32 = 20;

#[derive(Default)]
pub struct DecisionLimiter {
    /// When the current window began; `None` while no per-request decision came.
    window_start: Option<Instant>,
    written: u32,
    /// Lines held back in this window: how many, by decision and reason.
    held: BTreeMap<(&'static str, String), u64>,
}

impl DecisionLimiter {
    /// Whether a per-request decision (`decision`, with `reason`) is written in full now;
    /// otherwise it is counted for the window's summary.
    pub fn admit(&mut self, now: Instant, decision: &'static str, reason: &str) -> bool {
        self.window_start.get_or_insert(now);
        if self.written < LINES_PER_WINDOW {
            self.written += 1;
            return true;
        }
        *self.held.entry((decision, reason.to_string())).or_default() += 1;
        false
    }

    /// When the current window ends, if one is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.window_start.map(|start| start + WINDOW)
    }

    /// The summary lines of a window that is over at `now` (of the window so far, when ferry
    /// is `stopping`); a new window begins with the next decision.
    pub fn flush(&mut self, now: Instant, stopping: bool) -> Vec<(LogLevel, String)> {
        let Some(start) = self.window_start else {
            return Vec::new();
        };
        if now < start + WINDOW && !stopping {
            return Vec::new();
        }
        self.window_start = None;
        self.written = 0;
        let seconds = now.saturating_duration_since(start).as_secs_f64();
        std::mem::take(&mut self.held)
            .into_iter()
            .map(|((decision, reason), count)| {
                let line = format!(
                    "Decision: {decision} for {count} more requests in the last {seconds:.1} s \
                     (not logged one by one), reason: {reason}"
                );
                (LogLevel::Warn, line)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_first_lines_of_a_window_decisions_are_counted_and_summed_up_once_it_is_over() {
        let mut limiter = DecisionLimiter::default();
        let start = Instant::now();
        let written = (0..1000)
            .filter(|i| {
                let reason = if i % 2 == 0 {
                    "queue_full"
                } else {
                    "spawn_failing"
                };
                limiter.admit(start, "503", reason)
            })
            .count();
        assert_eq!(written, LINES_PER_WINDOW as usize);
        assert_eq!(limiter.next_deadline(), Some(start + WINDOW));
        assert!(
            limiter.flush(start + WINDOW / 2, false).is_empty(),
            "the window is not over"
        );
        let summary = limiter.flush(start + WINDOW, false);
        assert_eq!(
            summary,
            vec![
                (
                    LogLevel::Warn,
                    "Decision: 503 for 490 more requests in the last 1.0 s (not logged one by \
                     one), reason: queue_full"
                        .to_string()
                ),
                (
                    LogLevel::Warn,
                    "Decision: 503 for 490 more requests in the last 1.0 s (not logged one by \
                     one), reason: spawn_failing"
                        .to_string()
                ),
            ]
        );
        assert_eq!(
            limiter.next_deadline(),
            None,
            "a new window waits for a decision"
        );
        let later = start + WINDOW * 3;
        assert!(
            limiter.admit(later, "502", "crashed"),
            "a new window writes again"
        );
        assert_eq!(limiter.next_deadline(), Some(later + WINDOW));
    }

    #[test]
    fn what_is_held_back_when_ferry_stops_is_still_summed_up() {
        let mut limiter = DecisionLimiter::default();
        let start = Instant::now();
        for _ in 0..=LINES_PER_WINDOW {
            limiter.admit(start, "504", "max_request_time");
        }
        let summary = limiter.flush(start + WINDOW / 4, true);
        assert_eq!(summary.len(), 1);
        assert!(
            summary[0]
                .1
                .contains("504 for 1 more requests in the last 0.2 s"),
            "{summary:?}"
        );
        assert!(limiter.flush(start + WINDOW, true).is_empty());
    }
}
