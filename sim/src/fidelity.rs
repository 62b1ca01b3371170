//! The simulator measured against the real server: a real run's status polls set beside a
//! replay of its own access log, second by second, and its request counts beside the
//! replay's. The end-to-end fidelity test and the fidelity benchmark both judge with this.

use crate::series::TimeSeries;
use std::fmt::Write;

/// How far the process counts may differ at a checkpoint and still agree.
pub const PROCESS_COUNT_TOLERANCE: u32 = 1;
/// Share of checkpoints that must agree.
pub const AGREEING_SHARE_MIN: f64 = 0.95;
/// Counts agree when they differ by at most this share of the real count, or by
/// [`COUNT_SLACK`] when that is more: with a handful of 503s, 10% of the real count is less
/// than one request, and one request that lands on the other side of a process becoming
/// ready is not a disagreement about the pool.
pub const COUNT_SHARE: f64 = 0.10;
pub const COUNT_SLACK: u64 = 2;

/// A real status poll: when it was answered, and how many app processes it listed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Poll {
    pub unix_s: f64,
    pub processes: u32,
}

/// One second of the replay beside the poll nearest to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Seconds since the replay's 0 s.
    pub at_s: u64,
    pub real: u32,
    pub sim: u32,
}

impl Checkpoint {
    pub fn agrees(&self) -> bool {
        self.real.abs_diff(self.sim) <= PROCESS_COUNT_TOLERANCE
    }
}

/// Pairs every poll with the replay's sample at the whole second at or before it (a sample
/// is the state at its second; the poll is answered a few milliseconds after it was asked
/// for, so polls asked for on the second pair with that second). A poll outside the series
/// is left out. The sim's count is every process it has, spawning, ready or stopping, as
/// `ferry status` lists them.
pub fn checkpoints(polls: &[Poll], start_unix_s: i64, series: &TimeSeries) -> Vec<Checkpoint> {
    polls
        .iter()
        .filter_map(|poll| {
            let since = poll.unix_s - start_unix_s as f64;
            if since < 0.0 {
                return None;
            }
            let at_s = since.floor() as u64;
            let i = usize::try_from(at_s).ok()?;
            let sim = series.spawning.get(i)? + series.ready.get(i)? + series.stopping.get(i)?;
            Some(Checkpoint {
                at_s,
                real: poll.processes,
                sim,
            })
        })
        .collect()
}

/// Whether a replay's count agrees with the real one (see [`COUNT_SHARE`]).
pub fn counts_agree(real: u64, sim: u64) -> bool {
    let allowed = ((real as f64 * COUNT_SHARE).floor() as u64).max(COUNT_SLACK);
    real.abs_diff(sim) <= allowed
}

/// The comparison of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub checkpoints: Vec<Checkpoint>,
    pub served: (u64, u64),
    pub rejected: (u64, u64),
}

impl Comparison {
    pub fn agreeing(&self) -> usize {
        self.checkpoints.iter().filter(|c| c.agrees()).count()
    }

    /// Agreeing checkpoints as a share of all.
    pub fn agreeing_share(&self) -> f64 {
        match self.checkpoints.len() {
            0 => 0.0,
            n => self.agreeing() as f64 / n as f64,
        }
    }

    /// What fails, one line each; empty when the replay agrees with the real run.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.agreeing_share() < AGREEING_SHARE_MIN {
            failures.push(format!(
                "process counts within ±{PROCESS_COUNT_TOLERANCE} at {} of {} checkpoints ({:.0}%), under {:.0}%",
                self.agreeing(),
                self.checkpoints.len(),
                self.agreeing_share() * 100.0,
                AGREEING_SHARE_MIN * 100.0
            ));
        }
        for (what, (real, sim)) in [("served", self.served), ("rejected", self.rejected)] {
            if !counts_agree(real, sim) {
                failures.push(format!(
                    "{what}: {real} real, {sim} in the replay: more than {:.0}% (or {COUNT_SLACK}) apart",
                    COUNT_SHARE * 100.0
                ));
            }
        }
        failures
    }

    /// The two series side by side, a row a checkpoint, disagreements marked.
    pub fn side_by_side(&self) -> String {
        let mut text = String::from("   t  real  sim\n");
        for c in &self.checkpoints {
            let mark = if c.agrees() { "" } else { "  <- off" };
            let _ = writeln!(text, "{:>4}  {:>4}  {:>3}{mark}", c.at_s, c.real, c.sim);
        }
        let _ = writeln!(
            text,
            "served {} real, {} sim; rejected {} real, {} sim",
            self.served.0, self.served.1, self.rejected.0, self.rejected.1
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_pair_with_the_second_they_fall_in() {
        let mut series = TimeSeries::new();
        series.spawning = vec![1, 0, 2];
        series.ready = vec![0, 1, 1];
        series.stopping = vec![0, 0, 1];
        let poll = |unix_s, processes| Poll { unix_s, processes };
        let polls = [
            poll(99.9, 1),
            poll(100.02, 1),
            poll(101.5, 3),
            poll(102.01, 4),
            poll(103.0, 1),
        ];
        let got = checkpoints(&polls, 100, &series);
        let pairs: Vec<(u64, u32, u32)> = got.iter().map(|c| (c.at_s, c.real, c.sim)).collect();
        assert_eq!(pairs, [(0, 1, 1), (1, 3, 1), (2, 4, 4)]);
        assert_eq!(got.iter().filter(|c| c.agrees()).count(), 2);
    }

    #[test]
    fn small_counts_get_a_slack_of_two_large_ones_ten_percent() {
        assert!(counts_agree(0, 2) && !counts_agree(0, 3));
        assert!(counts_agree(100, 110) && !counts_agree(100, 111));
        assert!(counts_agree(1000, 901) && !counts_agree(1000, 899));
    }
}
