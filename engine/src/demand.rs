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
//!   short at the peaks of random traffic without a process per momentary overlap. Not
//!   while no process is ready and nothing waits: a pool empties only by going unused;
//! - the **backlog**: the time-averaged number of requests in the group (in sessions or
//!   queued) over about [`LOAD_TIME_CONSTANT`], divided by `target_concurrency` ×
//!   [`BACKLOG_MARGIN`], rounded down, and at least one more than the ready processes once
//!   it passes them: once on average the processes carry four times their target, another
//!   process is wanted. This is what grows the pool under a burst of many
//!   clients (their arrivals are paced by the pool itself, so the arrival rate alone would
//!   not show the excess: 200 clients on one process pass the margin for six processes in a
//!   fifth of a second), while the queues of random traffic near the offered load's size
//!   do not (at the margin of 1 they grew the day scenario's busy hours to all eight
//!   processes where five carry the load);
//! - the **sustained backlog**: the same, without the 2 s average and at
//!   [`SUSTAINED_MARGIN`], for the fewest requests the group held since the start of its
//!   last full **turnover**: a stretch in which as many requests left as were there at its
//!   start, so its whole backlog was served (or gone) and replaced by new arrivals. A
//!   backlog that survives its own turnover is refilled as fast as it drains: 200 clients on
//!   one process whose requests take 50 us turn over in 10 ms and then ask for six processes
//!   at once, where the 2 s average took a quarter of a second (with it alone, the real
//!   server's pool was full a quarter of a second after one startup). A queue that drains
//!   is not: what survives a backlog's turnover is about its size times the processes'
//!   utilization, so 200 requests arriving at once at a process 5% busy leave about 10, and
//!   two overlapping requests none;
//! - the **queue**: when the queued requests would wait longer than a spawn takes (queue ×
//!   service time ÷ the serving processes' target), enough processes to drain the queue
//!   within one spawn time; and once the oldest queued request has already waited a spawn
//!   time since a process could have served it (the estimate was wrong, or no service time
//!   is known yet), enough processes for the whole queue (`queue ÷ target_concurrency`
//!   beyond the ready ones). While no process is ready every queued request waits for a
//!   spawn anyway: then the whole queue gets processes at once only while no service time
//!   is known (a cold start); once one is, the work rule sizes the pool.
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
//! the rule above, or for the time-averaged requests rounded up, whichever is more: the
//! smaller of their averages over [`LOAD_TIME_CONSTANT`] and [`HELD_TIME_CONSTANT`], so that
//! a swing must last to be kept and a drop counts at once); idle
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
/// How many times their target the ready processes' averaged requests must carry before
/// the backlog asks for more (see the module's docs). With no margin (as before) the queues
/// of random traffic near the pool's size set it off: the day scenario averaged 4.89
/// processes. With this rule, 3 gave 4.03 (p99 169 ms) and 4 gives 3.91 (p99 173 ms, no
/// 503; its bound is 180 ms). A burst (hundreds of clients on a process) passes either
/// within a fraction of a second.
pub(crate) const BACKLOG_MARGIN: f64 = 4.0;
/// How many times their target the processes must carry all through a turnover before the
/// sustained backlog asks for more: twice the averaged backlog's margin, since it reacts to
/// a moment (a turnover of random traffic's queue) rather than to 2 s. The day scenario:
/// 4.33 processes on average at 4 (its random peaks survive their turnovers), 3.92 at 8,
/// 3.91 at 16 and without the rule. 200 clients ask for the most at either.
pub(crate) const SUSTAINED_MARGIN: f64 = 8.0;
/// How long service times are averaged over (the time constant of the decaying sums of
/// session lengths and counts whose ratio is the mean). Over time rather than a number of
/// sessions, so that the estimate is as steady at 200 requests per second as at 2: a
/// hundred sessions are half a second of a busy day, whose random long requests (a
/// lognormal's tail) then move the mean by about 10% either way, and the most processes
/// needed in the last `pool_idle_time` follow the highest of those swings.
pub(crate) const SERVICE_TIME_CONSTANT: Duration = Duration::from_secs(30);
/// The time constant of the steady load the shrinking side keeps processes for (see
/// [`Demand::to_keep`]): as long as the arrival rate's, for the same reason. Alone, it would
/// hold a burst's processes for about 50 s after it ends (200 requests fading to one), so
/// the held load is the smaller of this average and the 2 s one.
pub(crate) const HELD_TIME_CONSTANT: Duration = RATE_TIME_CONSTANT;
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
    /// The held load: the time-averaged requests over [`HELD_TIME_CONSTANT`].
    held_avg: f64,
    /// Session lengths and sessions, summed with weights decaying over
    /// [`SERVICE_TIME_CONSTANT`], as of `service_at`: their ratio is the mean service time.
    service_sum_s: f64,
    service_count: f64,
    service_at: Instant,
    spawn_time_s: Option<f64>,
    /// The current turnover (see the module's docs): arrivals since it began and the fewest
    /// requests since then. The requests that left since it began are
    /// `arrivals + load_then - load_now`, so it is complete once `arrivals >= load_now`.
    turnover_arrivals: u32,
    turnover_floor: u32,
    /// The fewest requests during the last complete turnover.
    sustained: u32,
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
    /// Since when the oldest queued request could have been served: when it arrived, or when
    /// the group last got a ready process after having none, if that was later. (From its
    /// arrival, the wait for a pool of one's replacement, for `max_requests`, looked like a
    /// wrong estimate and spawned a process per queued request; the swarm's shrink check
    /// found it.)
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
            held_avg: 0.0,
            service_sum_s: 0.0,
            service_count: 0.0,
            service_at: now,
            spawn_time_s: None,
            turnover_arrivals: 0,
            turnover_floor: 0,
            sustained: 0,
            needed_history: VecDeque::new(),
        }
    }

    fn rate_at(&self, now: Instant) -> f64 {
        let dt = seconds(now.saturating_since(self.rate_at));
        self.arrival_rate_per_s * decay(dt / seconds(RATE_TIME_CONSTANT))
    }

    /// An average of the requests over `time_constant`, `avg` as of the last change of load.
    fn averaged(&self, avg: f64, now: Instant, time_constant: Duration) -> f64 {
        let dt = seconds(now.saturating_since(self.load_at));
        let now_value = f64::from(self.load_now);
        now_value + (avg - now_value) * decay(dt / seconds(time_constant))
    }

    fn load_avg_at(&self, now: Instant) -> f64 {
        self.averaged(self.load_avg, now, LOAD_TIME_CONSTANT)
    }

    fn held_avg_at(&self, now: Instant) -> f64 {
        self.averaged(self.held_avg, now, HELD_TIME_CONSTANT)
    }

    /// The mean service time, once a session has ended.
    fn service_time_s(&self) -> Option<f64> {
        (self.service_count > 0.0).then(|| self.service_sum_s / self.service_count)
    }

    /// Whether the averages still move at `now` (see [`LOAD_SETTLED`]).
    pub fn moving(&self, now: Instant) -> bool {
        let gap = f64::from(self.load_now) - self.load_avg_at(now);
        let held_gap = f64::from(self.load_now) - self.held_avg_at(now);
        gap.abs() > LOAD_SETTLED
            || held_gap.abs() > LOAD_SETTLED
            || self.rate_at(now) > RATE_SETTLED_PER_S
    }

    pub fn arrived(&mut self, now: Instant) {
        self.arrival_rate_per_s = self.rate_at(now) + 1.0 / seconds(RATE_TIME_CONSTANT);
        self.rate_at = now;
        self.turnover_arrivals = self.turnover_arrivals.saturating_add(1);
    }

    /// The number of requests in the group (sessions that count toward scaling, and queued
    /// ones) is `load` from `now` on.
    pub fn set_load(&mut self, now: Instant, load: u32) {
        self.load_avg = self.load_avg_at(now);
        self.held_avg = self.held_avg_at(now);
        self.load_at = now;
        self.load_now = load;
        self.turnover_floor = self.turnover_floor.min(load);
        if self.turnover_arrivals >= load {
            self.sustained = self.turnover_floor;
            self.turnover_arrivals = 0;
            self.turnover_floor = load;
        }
    }

    /// The fewest requests since the last complete turnover began: what the traffic keeps
    /// refilling (see the module's docs).
    fn sustained_load(&self) -> u32 {
        self.sustained.min(self.turnover_floor)
    }

    pub fn session_ended(&mut self, now: Instant, length: Duration) {
        let dt = seconds(now.saturating_since(self.service_at));
        let kept = decay(dt / seconds(SERVICE_TIME_CONSTANT));
        self.service_sum_s = self.service_sum_s * kept + seconds(length);
        self.service_count = self.service_count * kept + 1.0;
        self.service_at = now;
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
        // Not for an empty pool with nothing waiting: it emptied by its processes going
        // unused for `pool_idle_time`, so what the rate still holds is traffic that stopped
        // (counted, any trace of it rounded up to a process, spawned just after the idle
        // shutdown of the last one); the next request spawns.
        let serving = s.ready > 0 || s.queued > 0;
        if let (Some(service_s), true) = (self.service_time_s(), serving) {
            let offered = self.rate_at(now) * service_s;
            needed = needed.max(ceil(offered / (target * TARGET_UTILIZATION)));
        }
        // Beyond the margin, at least one more than the ready processes: else, with a
        // margin, a process carrying a few times its target would never get company.
        let sustained = f64::from(self.sustained_load()) / SUSTAINED_MARGIN;
        let carried = (self.load_avg_at(now) / BACKLOG_MARGIN).max(sustained) / target;
        needed = needed.max(carried as usize);
        if carried > s.ready.max(1) as f64 {
            needed = needed.max(s.ready + 1);
        }
        if s.queued > 0 {
            let spawn_s = self.spawn_time_s();
            let service_s = self.service_time_s();
            if let Some(service_s) = service_s {
                let work_s = s.queued as f64 * service_s / target;
                if work_s / s.ready.max(1) as f64 > spawn_s {
                    needed = needed.max(ceil(work_s / spawn_s));
                }
            }
            let waited_s = s
                .oldest_queued_at
                .map_or(0.0, |at| seconds(now.saturating_since(at)));
            let spawn_s = self.spawn_time_s.unwrap_or(seconds(SPAWN_TIME_DEFAULT));
            // With no process ready, every queued request waits for a spawn anyway: the work
            // rule above sizes the pool, and only with no service time known is each
            // target's worth of queue given a process. (Giving it one always spawned a
            // process per queued request whenever a pool of one replaced its process, for
            // `max_requests` or after an idle shutdown to zero: under 2 requests a second the
            // swarm's shrink check saw three processes kept where one carries the load.)
            let whole_queue = match (s.ready, service_s) {
                (0, known) => known.is_none(),
                _ => waited_s >= spawn_s,
            };
            if whole_queue {
                needed = needed.max(s.ready + ceil(s.queued as f64 / target));
            }
        }
        needed.min(s.max_pool_size)
    }

    /// Processes to keep for the load now: the spawn rule's need, and enough for the
    /// time-averaged requests rounded up (where spawning rounds down), so that the processes
    /// a steady load keeps busy are never shut down under it. The requests are the smaller
    /// of their averages over [`HELD_TIME_CONSTANT`] and the backlog's 2 s: over 2 s alone,
    /// the most kept in a `pool_idle_time` would follow the highest momentary swings of
    /// random traffic (the day scenario, as tuned before the backlog rule's last form: 4.18
    /// processes on average instead of 3.95).
    pub fn to_keep(&self, now: Instant, s: &Situation) -> usize {
        let target = f64::from(s.target_concurrency.max(1));
        let held = ceil(self.load_avg_at(now).min(self.held_avg_at(now)) / target);
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
