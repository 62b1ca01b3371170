//! Client traffic: open-loop Poisson arrivals (optionally ramping) and closed-loop clients
//! that each wait for their answer before sending again.

use crate::dist::Sampler;
use crate::duration::SimDuration;
use crate::scenario::Traffic;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const NANOS_PER_SEC: f64 = 1e9;

/// One `[[traffic]]` stretch, ready to generate requests.
#[derive(Clone, Debug)]
pub struct Source {
    pub start_nanos: u64,
    /// No request is sent at or after this instant.
    pub end_nanos: u64,
    pub kind: SourceKind,
    pub rtt_nanos: u64,
    pub think: Sampler,
    pub retry_after_503: Sampler,
    pub disconnect_after_nanos: Option<u64>,
    /// Each request's service time, when the source fixes it (the swarm's light load);
    /// otherwise the app's draw.
    pub service_nanos: Option<u64>,
}

#[derive(Clone, Debug)]
pub enum SourceKind {
    /// Arrivals per nanosecond at the start and the end; linear in between.
    Open {
        rate_start: f64,
        rate_end: f64,
    },
    Closed {
        clients: u32,
    },
    /// The requests of a replayed log, at their own times (`Scenario::replay`).
    Replay,
}

impl Source {
    pub fn new(traffic: &Traffic, scenario_duration: SimDuration) -> Source {
        let kind = match (traffic.rate, traffic.clients) {
            (Some(rate), _) => SourceKind::Open {
                rate_start: rate / NANOS_PER_SEC,
                rate_end: traffic.ramp_to.unwrap_or(rate) / NANOS_PER_SEC,
            },
            (None, clients) => SourceKind::Closed {
                clients: clients.unwrap_or(0),
            },
        };
        Source {
            start_nanos: traffic.start.0,
            end_nanos: traffic.end(scenario_duration).0,
            kind,
            rtt_nanos: traffic.rtt.0,
            think: traffic.think_time.sampler(),
            retry_after_503: traffic.retry_after_503.sampler(),
            disconnect_after_nanos: traffic.disconnect_after.map(|d| d.0),
            service_nanos: None,
        }
    }

    /// The source of a replayed log's requests.
    pub fn replay(scenario_duration: SimDuration) -> Source {
        Source {
            start_nanos: 0,
            end_nanos: scenario_duration.0,
            kind: SourceKind::Replay,
            rtt_nanos: 0,
            think: Sampler::Fixed(0),
            retry_after_503: Sampler::Fixed(0),
            disconnect_after_nanos: None,
            service_nanos: None,
        }
    }

    /// Open-loop Poisson arrivals at `rate_per_s` from `start_nanos` until `end_nanos`, each
    /// request served in `service_nanos`.
    pub fn steady(rate_per_s: f64, start_nanos: u64, end_nanos: u64, service_nanos: u64) -> Source {
        Source {
            start_nanos,
            end_nanos,
            kind: SourceKind::Open {
                rate_start: rate_per_s / NANOS_PER_SEC,
                rate_end: rate_per_s / NANOS_PER_SEC,
            },
            rtt_nanos: 0,
            think: Sampler::Fixed(0),
            retry_after_503: Sampler::Fixed(0),
            disconnect_after_nanos: None,
            service_nanos: Some(service_nanos),
        }
    }

    /// The first arrival of an open-loop source at or after `start`, or none before its end.
    pub fn next_arrival(&self, after_nanos: u64, rng: &mut ChaCha8Rng) -> Option<u64> {
        let SourceKind::Open {
            rate_start,
            rate_end,
        } = self.kind
        else {
            return None;
        };
        let span = (self.end_nanos - self.start_nanos) as f64;
        let elapsed = after_nanos.saturating_sub(self.start_nanos) as f64;
        let slope = (rate_end - rate_start) / span;
        let rate_now = rate_start + slope * elapsed;
        // Inverting the integrated rate: the gap g solves rate_now·g + slope·g²/2 = E for a
        // unit exponential E, which for a linear ramp is exact (no thinning, no rejected draws).
        let e: f64 = -(1.0 - rng.random::<f64>()).ln();
        let discriminant = rate_now * rate_now + 2.0 * slope * e;
        if discriminant < 0.0 {
            return None; // the ramp reaches zero before enough intensity accumulates
        }
        let denominator = rate_now + discriminant.sqrt();
        if denominator <= 0.0 {
            return None;
        }
        let gap = 2.0 * e / denominator;
        let at = after_nanos as f64 + gap.max(1.0);
        (at < self.end_nanos as f64).then_some(at as u64)
    }

    /// When a closed-loop client answered at `answered_nanos` sends again, if before the end:
    /// after a 503, its retry cycle; after any other answer, a round trip and its think time.
    pub fn next_send(
        &self,
        answered_nanos: u64,
        rejected: bool,
        rng: &mut ChaCha8Rng,
    ) -> Option<u64> {
        let pause = if rejected {
            self.retry_after_503.sample(rng)
        } else {
            self.rtt_nanos.saturating_add(self.think.sample(rng))
        };
        let at = answered_nanos.saturating_add(pause).max(answered_nanos + 1);
        (at < self.end_nanos).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn open(rate: f64, ramp_to: f64) -> Source {
        Source {
            start_nanos: 0,
            end_nanos: 1000 * 1_000_000_000,
            kind: SourceKind::Open {
                rate_start: rate / NANOS_PER_SEC,
                rate_end: ramp_to / NANOS_PER_SEC,
            },
            rtt_nanos: 0,
            think: Sampler::Fixed(0),
            retry_after_503: Sampler::Fixed(0),
            disconnect_after_nanos: None,
            service_nanos: None,
        }
    }

    fn count(source: &Source) -> u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut at, mut n) = (0, 0);
        while let Some(next) = source.next_arrival(at, &mut rng) {
            at = next;
            n += 1;
        }
        n
    }

    #[test]
    fn poisson_counts_match_the_integrated_rate() {
        // 1000 s at 50/s: 50 000 ± a few hundred.
        let flat = count(&open(50.0, 50.0));
        assert!((49_000..51_000).contains(&flat), "{flat}");
        // A ramp 0 → 100/s over 1000 s also integrates to 50 000.
        let ramp = count(&open(0.0, 100.0));
        assert!((49_000..51_000).contains(&ramp), "{ramp}");
        let down = count(&open(100.0, 0.0));
        assert!((49_000..51_000).contains(&down), "{down}");
        assert_eq!(count(&open(0.0, 0.0)), 0);
    }
}
