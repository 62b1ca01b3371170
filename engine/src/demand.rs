//! What a group's traffic asks of the pool, measured from the inputs alone (the instants come
//! with them; the engine reads no clock), and the number of processes that follows from it.
//!
//! # The rule
//! A group needs the largest of:
//! - `min_instances`;
//! - one process while a request waits (the pool is never empty then);
//! - the **offered load**: arrival rate × mean service time is the number of sessions the
//!   traffic keeps busy on average (Little's law); divided by the soft `target_concurrency`
//!   per process and by [`TARGET_UTILIZATION`], rounded up. The headroom keeps queueing
//!   short at the peaks of random traffic without a process per momentary overlap;
//! - the **backlog**: the time-averaged number of requests in the group (in sessions or
//!   queued) over about [`LOAD_TIME_CONSTANT`], divided by `target_concurrency`, rounded
//!   down: once on average a whole extra process's worth of requests waits, another process
//!   is wanted. This is what grows the pool under a burst of many clients (their arrivals are
//!   paced by the pool itself, so the arrival rate alone would not show the excess), while
//!   two requests that overlap for a moment barely move the average;
//! - the **queue**: when the queued requests would wait longer than a spawn takes (queue ×
//!   service time ÷ the serving processes' target), enough processes to drain the queue
//!   within one spawn time; and once the oldest queued request has already waited a spawn
//!   time (the estimate was wrong, or no service time is known yet), enough processes for
//!   the whole queue (`queue ÷ target_concurrency` beyond the ready ones); the same at once
//!   while no process is ready, since then every queued request waits for a spawn anyway.
//!   A queue shorter
//!   lived than a spawn never spawns: an existing process frees up before a new one would
//!   be ready.
//!
//! A spawn takes its measured time (spawn to ready, averaged), [`SPAWN_TIME_DEFAULT`] before
//! the first one is seen. Processes are spawned up to what is needed (within
//! `max_spawn_concurrency` and the pool's room).
//!
//! # Shrinking
//! The pool keeps the most processes needed at any moment of the last `pool_idle_time` (by
//! the rule above, or for the time-averaged requests rounded up, whichever is more); idle
//! ready processes beyond that are shut down, least recently used first. Together with
//! routing that sends ties to the most recently used process (so the processes light traffic
//! does not need go idle and their own idle timers run out), this brings the pool back to what
//! the load needs within `pool_idle_time` of the load dropping (invariant 10).

use crate::time::Instant;
use alloc::collections::VecDeque;
use core::time::Duration;

/// How long the arrival rate and the backlog are averaged over (the time constant of their
/// exponential averages). Short enough that a burst is seen within a small part of a spawn
/// time (its backlog is large), long enough that momentary overlaps average out.
pub(crate) const LOAD_TIME_CONSTANT: Duration = Duration::from_secs(2);
/// The arrival rate's time constant: longer, so that the offered load of random traffic is
/// steady enough not to spawn for its noise.
pub(crate) const RATE_TIME_CONSTANT: Duration = Duration::from_secs(10);
/// The share of their target concurrency processes are scaled to carry on average (as
/// Knative's autoscaler's target utilization): the rest absorbs the peaks of random arrivals.
pub(crate) const TARGET_UTILIZATION: f64 = 0.9;
/// The weight of each new service time in its average: about the last hundred sessions,
/// so that the noise of random service times does not read as a change of load.
const SERVICE_TIME_WEIGHT: f64 = 0.01;
/// The weight of each new spawn time in its average.
const SPAWN_TIME_WEIGHT: f64 = 0.5;
/// A spawn's assumed length before any has been measured: a typical app's startup.
pub(crate) const SPAWN_TIME_DEFAULT: Duration = Duration::from_secs(1);
/// While a group's averages still move, how often they are looked at again even without an
/// input (a backlog grows while nothing happens; a need falls as traffic fades).
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// The averages count as settled once the backlog's is this close to the requests there are
/// and the arrival rate has faded below [`RATE_SETTLED_PER_S`]: looking again would change
/// nothing, so an idle pool is not woken for nothing.
const LOAD_SETTLED: f64 = 0.01;
const RATE_SETTLED_PER_S: f64 = 0.01;

#[derive(Clone, Debug)]
pub(crate) struct Demand {
    /// Arrivals per second: an exponentially decaying count of arrivals.
    arrival_rate_per_s: f64,
    rate_at: Instant,
    /// The time-averaged number of requests in the group, the number now, and since when.
    load_avg: f64,
    load_now: u32,
    load_at: Instant,
    service_time_s: Option<f64>,
    spawn_time_s: Option<f64>,
    /// Processes needed, as sampled: `(from, until, needed)`, oldest first, each needing more
    /// than every later one (a later larger need makes earlier smaller ones irrelevant to the
    /// maximum). The last one lasts until the next sample.
    needed_history: VecDeque<(Instant, Option<Instant>, usize)>,
}

/// What the processes needed are computed from, besides the measurements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Situation {
    pub min_instances: usize,
    pub max_pool_size: usize,
    pub target_concurrency: u32,
    pub queued: usize,
    /// When the oldest queued request arrived.
    pub oldest_queued_at: Option<Instant>,
    pub ready: usize,
}

/// `e^-x` for `x >= 0` without `std`: halve `x` until it is small, where the [2/2] Padé
/// approximant is exact to about 1e-6, then square back. Beyond 40 the value is taken as 0.
fn decay(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    if x > 40.0 {
        return 0.0;
    }
    let (mut small, mut halvings) = (x, 0);
    while small > 0.25 {
        small /= 2.0;
        halvings += 1;
    }
    let square = small * small / 12.0;
    let mut value = (1.0 - small / 2.0 + square) / (1.0 + small / 2.0 + square);
    for _ in 0..halvings {
        value *= value;
    }
    value
}

fn ceil(x: f64) -> usize {
    let whole = x as usize;
    whole + usize::from((whole as f64) < x)
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Demand {
    pub fn new(now: Instant) -> Demand {
        Demand {
            arrival_rate_per_s: 0.0,
            rate_at: now,
            load_avg: 0.0,
            load_now: 0,
            load_at: now,
            service_time_s: None,
            spawn_time_s: None,
            needed_history: VecDeque::new(),
        }
    }

    fn rate_at(&self, now: Instant) -> f64 {
        let dt = seconds(now.saturating_since(self.rate_at));
        self.arrival_rate_per_s * decay(dt / seconds(RATE_TIME_CONSTANT))
    }

    fn load_avg_at(&self, now: Instant) -> f64 {
        let dt = seconds(now.saturating_since(self.load_at));
        let now_value = f64::from(self.load_now);
        now_value + (self.load_avg - now_value) * decay(dt / seconds(LOAD_TIME_CONSTANT))
    }

    /// Whether the averages still move at `now` (see [`LOAD_SETTLED`]).
    pub fn moving(&self, now: Instant) -> bool {
        let gap = f64::from(self.load_now) - self.load_avg_at(now);
        gap.abs() > LOAD_SETTLED || self.rate_at(now) > RATE_SETTLED_PER_S
    }

    pub fn arrived(&mut self, now: Instant) {
        self.arrival_rate_per_s = self.rate_at(now) + 1.0 / seconds(RATE_TIME_CONSTANT);
        self.rate_at = now;
    }

    /// The number of requests in the group (sessions that count toward scaling, and queued
    /// ones) is `load` from `now` on.
    pub fn set_load(&mut self, now: Instant, load: u32) {
        self.load_avg = self.load_avg_at(now);
        self.load_at = now;
        self.load_now = load;
    }

    pub fn session_ended(&mut self, length: Duration) {
        let sample = seconds(length);
        self.service_time_s = Some(match self.service_time_s {
            None => sample,
            Some(mean) => mean + (sample - mean) * SERVICE_TIME_WEIGHT,
        });
    }

    pub fn spawn_took(&mut self, length: Duration) {
        let sample = seconds(length);
        self.spawn_time_s = Some(match self.spawn_time_s {
            None => sample,
            Some(mean) => mean + (sample - mean) * SPAWN_TIME_WEIGHT,
        });
    }

    fn spawn_time_s(&self) -> f64 {
        self.spawn_time_s
            .unwrap_or(seconds(SPAWN_TIME_DEFAULT))
            .max(1e-3)
    }

    /// Processes the group needs at `now` (see the module's docs), at most `max_pool_size`.
    pub fn needed(&self, now: Instant, s: &Situation) -> usize {
        let target = f64::from(s.target_concurrency.max(1));
        let mut needed = s.min_instances.max(usize::from(s.queued > 0));
        if let Some(service_s) = self.service_time_s {
            let offered = self.rate_at(now) * service_s;
            needed = needed.max(ceil(offered / (target * TARGET_UTILIZATION)));
        }
        needed = needed.max((self.load_avg_at(now) / target) as usize);
        if s.queued > 0 {
            let spawn_s = self.spawn_time_s();
            if let Some(service_s) = self.service_time_s {
                let work_s = s.queued as f64 * service_s / target;
                if work_s / s.ready.max(1) as f64 > spawn_s {
                    needed = needed.max(ceil(work_s / spawn_s));
                }
            }
            let waited_s = s
                .oldest_queued_at
                .map_or(0.0, |at| seconds(now.saturating_since(at)));
            // With no process ready, every queued request waits for a spawn anyway.
            let spawn_s = self.spawn_time_s.unwrap_or(seconds(SPAWN_TIME_DEFAULT));
            if waited_s >= spawn_s || s.ready == 0 {
                needed = needed.max(s.ready + ceil(s.queued as f64 / target));
            }
        }
        needed.min(s.max_pool_size)
    }

    /// Processes to keep for the load now: the spawn rule's need, and enough for the
    /// time-averaged requests rounded up (where spawning rounds down), so that the processes
    /// a steady load keeps busy are never shut down under it.
    pub fn to_keep(&self, now: Instant, s: &Situation) -> usize {
        let target = f64::from(s.target_concurrency.max(1));
        let held = ceil(self.load_avg_at(now) / target);
        self.needed(now, s).max(held).min(s.max_pool_size)
    }

    /// When the oldest queued request will have waited a spawn time.
    pub fn queue_deadline(&self, oldest_queued_at: Instant) -> Instant {
        oldest_queued_at + Duration::from_secs_f64(self.spawn_time_s())
    }

    /// Records what was needed at `now`, for [`Demand::kept`].
    pub fn record_needed(&mut self, now: Instant, needed: usize) {
        if let Some(last) = self.needed_history.back_mut() {
            last.1 = Some(now);
        }
        while self
            .needed_history
            .back()
            .is_some_and(|(_, _, earlier)| *earlier <= needed)
        {
            self.needed_history.pop_back();
        }
        self.needed_history.push_back((now, None, needed));
    }

    /// Forgets needs that ended more than `window` before `now`.
    pub fn forget_before(&mut self, now: Instant, window: Duration) {
        while self
            .needed_history
            .front()
            .is_some_and(|(_, until, _)| until.is_some_and(|until| until + window <= now))
        {
            self.needed_history.pop_front();
        }
    }

    /// The most processes needed at any moment of the `window` before `now`.
    pub fn kept(&self, now: Instant, window: Duration) -> usize {
        self.needed_history
            .iter()
            .filter(|(_, until, _)| until.is_none_or(|until| until + window > now))
            .map(|(_, _, needed)| *needed)
            .max()
            .unwrap_or(0)
    }

    /// When the largest recorded need stops counting for `kept`.
    pub fn next_expiry(&self, window: Duration) -> Option<Instant> {
        self.needed_history
            .front()
            .and_then(|(_, until, _)| until.map(|until| until + window))
    }
}
