//! The run as a time series, one sample per virtual second, for `--json` readers who plot
//! or compare against a real server's status polls.

use crate::model::AppState;
use crate::sim::Simulation;
use serde::{Deserialize, Serialize};

const SECOND_NANOS: u64 = 1_000_000_000;

/// What is true at one instant, as the sim sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub spawning: u32,
    /// Ready and not told to stop.
    pub ready: u32,
    /// Told to stop, not exited yet.
    pub stopping: u32,
    pub busy: u32,
    pub queue: u32,
    /// Totals so far; the series holds their increase over each second.
    pub served_total: u64,
    pub rejected_total: u64,
}

/// Columns rather than rows: a day is 86,400 samples, and a column of numbers is what a
/// plotting tool wants. Entry `i` is the state at `i` seconds (before the events at that
/// instant); `served[i]` and `rejected[i]` count the second that ends there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSeries {
    pub interval_s: u64,
    pub spawning: Vec<u32>,
    pub ready: Vec<u32>,
    pub stopping: Vec<u32>,
    pub busy: Vec<u32>,
    pub queue: Vec<u32>,
    pub served: Vec<u64>,
    pub rejected: Vec<u64>,
    #[serde(skip)]
    last_totals: (u64, u64),
}

impl TimeSeries {
    pub fn new() -> TimeSeries {
        TimeSeries {
            interval_s: 1,
            ..TimeSeries::default()
        }
    }

    /// The next instant to sample, in nanoseconds.
    pub fn next_at_nanos(&self) -> u64 {
        self.spawning.len() as u64 * SECOND_NANOS
    }

    /// Records `now` for every second boundary before `until_nanos` (exclusive) not yet
    /// recorded: nothing changes between events, so one state stands for them all.
    pub fn sample_before(&mut self, until_nanos: u64, now: &Sample) {
        while self.next_at_nanos() < until_nanos {
            self.spawning.push(now.spawning);
            self.ready.push(now.ready);
            self.stopping.push(now.stopping);
            self.busy.push(now.busy);
            self.queue.push(now.queue);
            let (served, rejected) = self.last_totals;
            self.served.push(now.served_total - served);
            self.rejected.push(now.rejected_total - rejected);
            self.last_totals = (now.served_total, now.rejected_total);
        }
    }
}

impl Simulation<'_> {
    /// Samples the series for every second before `until_nanos` not sampled yet.
    pub(crate) fn sample_series_before(&mut self, until_nanos: u64) {
        if until_nanos <= self.series.next_at_nanos() {
            return;
        }
        let mut now = Sample {
            busy: self.requests.in_flight() as u32,
            queue: self.requests.queued() as u32,
            served_total: self.counts.served,
            rejected_total: self.counts.rejected,
            ..Sample::default()
        };
        for p in self.processes.values() {
            match (p.state, p.kill) {
                (_, Some(_)) => now.stopping += 1,
                (AppState::Spawning, None) => now.spawning += 1,
                (AppState::Ready, None) => now.ready += 1,
            }
        }
        self.series.sample_before(until_nanos, &now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_with_increments() {
        let mut series = TimeSeries::new();
        let mut now = Sample::default();
        series.sample_before(1, &now); // t = 0
        now.served_total = 5;
        now.ready = 2;
        series.sample_before(2_500_000_000, &now); // t = 1 s, 2 s
        now.served_total = 7;
        now.rejected_total = 1;
        series.sample_before(3_000_000_001, &now); // t = 3 s
        assert_eq!(series.ready, [0, 2, 2, 2]);
        assert_eq!(series.served, [0, 5, 0, 2]);
        assert_eq!(series.rejected, [0, 0, 0, 1]);
        assert_eq!(series.next_at_nanos(), 4_000_000_000);
    }
}
