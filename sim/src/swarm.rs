//! Swarm testing: random scenarios from one seed, every invariant checked after every event.
//!
//! In the spirit of TigerBeetle's VOPR: one seed draws the whole scenario (pool settings,
//! app behaviour, traffic and faults); a safety phase with faults is followed, once its
//! requests have ended, by a light load without faults under which the pool must shrink to
//! what that load needs within `pool_idle_time` plus a bound ([`check_shrinks`]), then by a
//! quiet liveness phase without traffic, after which nothing may be left waiting and the
//! pool must be back to its resting size; then a shutdown must complete. A failure is shrunk
//! (shorter, less traffic, fewer faults) while it still fails, and written out as a scenario
//! file that `ferry sim` replays.

use crate::clients::Source;
use crate::dist::Dist;
use crate::duration::SimDuration;
use crate::model::AppState;
use crate::scenario::Scenario;
use crate::sim::Simulation;
pub use crate::swarm_scenarios::generate;
use crate::swarm_scenarios::scale_traffic;
use std::io::Write;
use std::path::Path;

/// Runs the shrinker may spend on one failure.
const SHRINK_RUNS_MAX: usize = 300;

/// Runs `count` random scenarios, seeds `seed`, `seed + 1`, …; returns the exit code. A
/// shrunk failure is written to the current directory.
pub fn run_swarm(count: u64, seed: u64, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run_swarm_in(count, seed, Path::new(""), out, err)
}

/// [`run_swarm`], writing a shrunk failure into `dir`.
pub fn run_swarm_in(
    count: u64,
    seed: u64,
    dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut requests = 0u64;
    let mut events = 0u64;
    for index in 0..count {
        let scenario_seed = seed.wrapping_add(index);
        let scenario = generate(scenario_seed);
        let sim = run_checked(&scenario, scenario.seed);
        requests += sim.counts.arrived;
        events += sim.events_total;
        let Some(violation) = sim.violation.clone() else {
            continue;
        };
        drop(sim);
        let _ = writeln!(
            out,
            "swarm: scenario {} of {count} (seed {scenario_seed}) broke: {violation}",
            index + 1
        );
        let _ = writeln!(out, "swarm: shrinking…");
        let (shrunk, shrunk_violation) = shrink(scenario, violation);
        let file = dir.join(format!("ferry-swarm-{scenario_seed}.toml"));
        let path = file.display();
        let text = format!(
            "# Found by `ferry sim --swarm 1 --seed {scenario_seed}`, then shrunk.\n# {}\n{}",
            shrunk_violation.replace('\n', " "),
            shrunk.to_toml()
        );
        match std::fs::write(&file, &text) {
            Ok(()) => {
                let _ = writeln!(
                    out,
                    "swarm: the shrunk scenario, written to {path}:\n\n{text}"
                );
                let _ = writeln!(out, "reproduce: ferry sim {path}");
            }
            Err(error) => {
                let _ = writeln!(err, "swarm: cannot write {path}: {error}");
                let _ = writeln!(out, "swarm: the shrunk scenario:\n\n{text}");
            }
        }
        let _ = writeln!(
            out,
            "reproduce the unshrunk one: ferry sim --swarm 1 --seed {scenario_seed}"
        );
        return 1;
    }
    let _ = writeln!(
        out,
        "swarm: {count} scenarios (seeds {seed}..{}) clean: {requests} requests, {events} events, invariants checked after each",
        seed.wrapping_add(count)
    );
    0
}

/// Runs a scenario under the swarm's checks: the safety phase with the engine's invariants
/// after every event, the quiet liveness phase, then a shutdown.
pub(crate) fn run_checked(scenario: &Scenario, seed: u64) -> Simulation<'_> {
    let mut sim = Simulation::new(scenario, seed, true);
    let end = scenario.duration.as_nanos();
    sim.run_until(end);
    if sim.violation.is_some() {
        return sim;
    }
    sim.faults_off();
    let window = quiet_phase_nanos(scenario);
    if let Some(dropped) = drained(&mut sim, window) {
        check_shrinks(&mut sim, dropped);
    }
    if sim.violation.is_some() {
        return sim;
    }
    let quiet_from = sim.now;
    let spawns_before = sim.engine.totals().spawns;
    let mut deadline = quiet_from + window;
    loop {
        let ended_before = ended(&sim);
        sim.run_until(deadline);
        if sim.violation.is_some() {
            return sim;
        }
        let problem = unsettled(&sim, spawns_before, deadline - quiet_from);
        // A pool that still makes progress (a long queue draining through a small pool) is
        // given more time; one that makes none within a whole window is stuck.
        let progress = ended(&sim) > ended_before;
        match problem {
            None => break,
            Some(problem) if !progress || deadline - quiet_from >= QUIET_PHASE_NANOS_MAX => {
                sim.violate(format!("liveness: {problem}"));
                return sim;
            }
            Some(_) => deadline += window,
        }
    }
    sim.shutdown();
    let p = &scenario.pool;
    let shutdown_by = sim.now
        + p.shutdown_timeout.as_nanos()
        + p.kill_timeout.as_nanos()
        + SimDuration::from_secs(60).as_nanos();
    sim.run_until(shutdown_by);
    if sim.violation.is_none() {
        check_shut_down(&mut sim);
    }
    sim
}

/// The light load of the shrink check: issue 11's 2 requests a second of 20 ms each.
const LIGHT_RATE_PER_S: f64 = 2.0;
const LIGHT_SERVICE_NANOS: u64 = 20_000_000;
/// How long beyond `pool_idle_time` the pool may take to shrink to what the light load needs
/// (issue 11's target). The engine keeps the most processes needed in the last
/// `pool_idle_time`, and the need of a backlog fades over its averages' seconds.
const SHRINK_BOUND_NANOS: u64 = 30_000_000_000;
/// How long the shrunk pool is watched under the light load, and how often: it must stay
/// shrunk, not shut processes down only to spawn them again.
const SHRINK_WATCH_NANOS: u64 = 20_000_000_000;
const SHRINK_WATCH_STEP_NANOS: u64 = 100_000_000;
/// How finely the end of the safety phase's backlog is found.
const DRAIN_STEP_NANOS: u64 = 100_000_000;

/// Runs on without traffic until no request is open; returns when that was (the moment the
/// load dropped), or `None` if nothing ended within a whole `window` (stuck: the quiet phase
/// reports it).
fn drained(sim: &mut Simulation, window: u64) -> Option<u64> {
    let limit = sim.now + QUIET_PHASE_NANOS_MAX;
    let mut ended_before = ended(sim);
    let mut stuck_at = sim.now + window;
    while sim.requests.open() > 0 {
        if sim.now >= limit.min(stuck_at) || sim.violation.is_some() {
            return None;
        }
        sim.run_until(sim.now + DRAIN_STEP_NANOS);
        if ended(sim) > ended_before {
            ended_before = ended(sim);
            stuck_at = sim.now + window;
        }
    }
    Some(sim.now)
}

/// Processes the pool holds on to: spawning or ready, not told to stop.
fn kept_processes(sim: &Simulation) -> usize {
    sim.processes.values().filter(|p| p.kill.is_none()).count()
}

/// Issue 11's shrink target, checked after the safety phase's load has dropped (at
/// `dropped`): under [`LIGHT_RATE_PER_S`] requests of [`LIGHT_SERVICE_NANOS`], which one
/// process carries, the pool is back to `min_instances` (at least that one process) plus at
/// most one within `pool_idle_time` + [`SHRINK_BOUND_NANOS`]: on average over the
/// [`SHRINK_WATCH_NANOS`] after that, so that a process spawned for a momentary overlap (where
/// spawns are cheap) and shut down a `pool_idle_time` later does not count, while one kept
/// without need does. With `max_requests`, the replacements the light load's requests use up
/// are allowed for too (those starting at a time, on average). Not checked where the pool
/// never shrinks (`pool_idle_time` 0), where the app cannot start, or where the bound is the
/// whole pool anyway.
fn check_shrinks(sim: &mut Simulation, dropped: u64) {
    let scenario = sim.scenario;
    let pool = &scenario.pool;
    let recycling = match pool.max_requests {
        0 => 0.0,
        n => LIGHT_RATE_PER_S * scenario.app.spawn_time.mean_nanos() / 1e9 / n as f64,
    };
    let allowed = (pool.min_instances.max(1) + 1) as f64 + recycling;
    if pool.pool_idle_time.as_nanos() == 0
        || !app_can_start(scenario)
        || allowed >= pool.max_pool_size as f64
    {
        return;
    }
    let check_from = dropped + pool.pool_idle_time.as_nanos() + SHRINK_BOUND_NANOS;
    let check_until = check_from + SHRINK_WATCH_NANOS;
    let light = Source::steady(LIGHT_RATE_PER_S, dropped, check_until, LIGHT_SERVICE_NANOS);
    sim.add_source(light);
    sim.run_until(check_from);
    let (mut sum, mut samples, mut most) = (0, 0, 0);
    while sim.violation.is_none() && sim.now < check_until {
        let kept = kept_processes(sim);
        (sum, samples, most) = (sum + kept, samples + 1, most.max(kept));
        sim.run_until(sim.now + SHRINK_WATCH_STEP_NANOS);
    }
    let average = sum as f64 / samples.max(1) as f64;
    if sim.violation.is_none() && average > allowed {
        sim.violate(format!(
            "shrink: {average:.2} processes on average (at most {most}) from {} to {} after the \
             load dropped at {} to {LIGHT_RATE_PER_S} requests a second of {}; allowed \
             {allowed:.2} (min_instances {} or one process, plus one{}) from pool_idle_time {} \
             + {} on",
            SimDuration(check_from - dropped),
            SimDuration(check_until - dropped),
            SimDuration(dropped),
            SimDuration(LIGHT_SERVICE_NANOS),
            pool.min_instances,
            if recycling > 0.0 {
                ", plus max_requests' replacements"
            } else {
                ""
            },
            pool.pool_idle_time,
            SimDuration(SHRINK_BOUND_NANOS),
        ));
    }
}

/// However slowly the pool drains, it must settle within a virtual day.
const QUIET_PHASE_NANOS_MAX: u64 = 86_400 * 1_000_000_000;

fn ended(sim: &Simulation) -> u64 {
    let c = &sim.counts;
    c.served + c.rejected + c.failed + c.cancelled
}

/// Long enough for any backoff, spawn, start timeout, idle shutdown and exit to play out
/// once traffic and faults stop, with a margin for the tail of service times.
fn quiet_phase_nanos(scenario: &Scenario) -> u64 {
    let p = &scenario.pool;
    [
        p.backoff_max,
        p.start_timeout,
        p.kill_timeout,
        p.pool_idle_time,
        p.pool_idle_time,
        p.stable_uptime,
        p.max_request_time,
        p.max_request_queue_time,
        SimDuration::from_secs(600),
    ]
    .iter()
    .map(|d| d.as_nanos())
    .sum::<u64>()
        + 4 * longest_nanos(&scenario.app.spawn_time)
        + 4 * longest_nanos(&scenario.app.shutdown_time)
}

/// A duration's longest draw, or for unbounded distributions a generous multiple of its mean.
pub(crate) fn longest_nanos(dist: &Dist) -> u64 {
    match *dist {
        Dist::Fixed(d) => d.as_nanos(),
        Dist::Uniform { max, .. } => max.as_nanos(),
        _ => (dist.mean_nanos() * 20.0) as u64,
    }
}

/// Whether a process of this app can start at all: every spawn outlasting `start_timeout`
/// means none ever becomes ready, faults or not.
fn app_can_start(scenario: &Scenario) -> bool {
    longest_nanos(&scenario.app.spawn_time) < scenario.pool.start_timeout.as_nanos()
}

/// What is wrong after the quiet phase, if anything. Nothing may wait or be in flight. An app
/// that can start rests at `min_instances` ready processes (or more, if idle processes are
/// never shut down); one that cannot must have backed off: a handful of spawns per
/// `backoff_max`, not a spawn loop.
fn unsettled(sim: &Simulation, spawns_before: u64, quiet_nanos: u64) -> Option<String> {
    let open = sim.requests.open();
    if open > 0 {
        let queued = sim.requests.queued();
        return Some(format!(
            "{open} requests still open ({queued} queued) after the quiet phase"
        ));
    }
    let pool = &sim.scenario.pool;
    let live = sim.processes.len();
    if !app_can_start(sim.scenario) {
        let spawns = sim.engine.totals().spawns - spawns_before;
        let rounds = quiet_nanos / pool.backoff_max.as_nanos().max(1) + 20;
        let bound = rounds * pool.min_instances.max(1) as u64;
        return (spawns > bound).then(|| {
            format!("an app that cannot start was spawned {spawns} times in the quiet phase (more than {bound}): no backoff")
        });
    }
    let unready = sim
        .processes
        .values()
        .filter(|p| p.state != AppState::Ready || p.kill.is_some())
        .count();
    if unready > 0 {
        return Some(format!(
            "{unready} of {live} processes are still starting or stopping after the quiet phase"
        ));
    }
    let settled = if pool.pool_idle_time.as_nanos() == 0 {
        live >= pool.min_instances
    } else {
        live == pool.min_instances
    };
    (!settled).then(|| {
        format!(
            "{live} processes after the quiet phase, min_instances {} (pool_idle_time {})",
            pool.min_instances, pool.pool_idle_time
        )
    })
}

fn check_shut_down(sim: &mut Simulation) {
    if sim.shutdown_completes != 1 || !sim.processes.is_empty() || sim.requests.open() > 0 {
        sim.violate(format!(
            "liveness: shutdown did not complete in time ({} processes, {} requests left, ShutdownComplete sent {} times)",
            sim.processes.len(),
            sim.requests.open(),
            sim.shutdown_completes
        ));
    }
}

/// Smaller variants of a failing scenario, most reducing first.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut push = |f: &dyn Fn(&mut Scenario)| {
        let mut candidate = s.clone();
        f(&mut candidate);
        if candidate != *s {
            out.push(candidate);
        }
    };
    push(&|c| {
        c.duration = SimDuration((c.duration.as_nanos() / 2).max(1_000_000));
        let end = c.duration;
        c.traffic.retain(|t| t.start < end);
        c.fault.retain(|f| f.at <= end);
        if let Some(w) = &mut c.app.fail_spawns {
            w.from = w.from.min(end);
            w.until = w.until.min(end);
        }
    });
    for i in 0..s.traffic.len() {
        push(&|c| {
            c.traffic.remove(i);
        });
    }
    for i in 0..s.fault.len() {
        push(&|c| {
            c.fault.remove(i);
        });
    }
    for i in 0..s.traffic.len() {
        push(&|c| scale_traffic(std::slice::from_mut(&mut c.traffic[i]), 0.5));
        push(&|c| {
            let t = &mut c.traffic[i];
            if let Some(d) = t.duration {
                t.duration = Some(SimDuration((d.as_nanos() / 2).max(1)));
            }
        });
        push(&|c| c.traffic[i].disconnect_after = None);
        push(&|c| c.traffic[i].ramp_to = None);
        push(&|c| c.traffic[i].think_time = Dist::Fixed(SimDuration::ZERO));
    }
    for unit_nanos in [1_000_000_000, 1_000_000] {
        if let Some(rounded) = rounded_times(s, unit_nanos) {
            push(&|c| *c = rounded.clone());
        }
    }
    push(&|c| c.app.crash_every = 0);
    push(&|c| c.app.die_after_ready = None);
    push(&|c| c.app.hang_probability = 0.0);
    push(&|c| c.app.fail_spawns = None);
    push(&|c| c.app.spawn_failure_probability = 0.0);
    push(&|c| c.pool.max_requests = 0);
    push(&|c| c.pool.max_pool_size = (c.pool.max_pool_size / 2).max(c.pool.min_instances).max(1));
    push(&|c| c.pool.min_instances /= 2);
    out
}

/// The scenario with every duration rounded to `unit_nanos` (none rounded to zero), so that a
/// shrunk scenario reads "38.9s" rather than "38.888039197s".
fn rounded_times(scenario: &Scenario, unit_nanos: u64) -> Option<Scenario> {
    fn round(value: &mut toml::Value, unit_nanos: u64) {
        match value {
            toml::Value::String(text) => {
                if let Ok(duration) = crate::duration::parse_duration(text) {
                    let nanos = duration.as_nanos();
                    let rounded = (nanos + unit_nanos / 2) / unit_nanos * unit_nanos;
                    if rounded > 0 || nanos == 0 {
                        *text = SimDuration(rounded).to_string();
                    }
                }
            }
            toml::Value::Array(items) => items.iter_mut().for_each(|v| round(v, unit_nanos)),
            toml::Value::Table(table) => table.iter_mut().for_each(|(_, v)| round(v, unit_nanos)),
            _ => {}
        }
    }
    let mut value = toml::Value::try_from(scenario).ok()?;
    round(&mut value, unit_nanos);
    value.try_into().ok()
}

fn shrink(scenario: Scenario, violation: String) -> (Scenario, String) {
    shrink_with(scenario, violation, |candidate| {
        run_checked(candidate, candidate.seed).violation.clone()
    })
}

/// Shrinks while `fails` still finds a violation; returns the smallest failing scenario.
pub fn shrink_with(
    mut scenario: Scenario,
    mut violation: String,
    fails: impl Fn(&Scenario) -> Option<String>,
) -> (Scenario, String) {
    let mut runs = 0;
    'improve: while runs < SHRINK_RUNS_MAX {
        for candidate in candidates(&scenario) {
            // Only what `ferry sim` accepts back is worth writing out.
            if Scenario::parse(&candidate.to_toml(), "shrunk").is_err() {
                continue;
            }
            runs += 1;
            if let Some(found) = fails(&candidate) {
                scenario = candidate;
                violation = found;
                continue 'improve;
            }
            if runs >= SHRINK_RUNS_MAX {
                break 'improve;
            }
        }
        break;
    }
    (scenario, violation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_keeps_only_what_the_failure_needs() {
        let is_kill =
            |f: &crate::scenario::Fault| f.kill.is_some() || f.detach.is_some() || f.restart;
        // The first half must hold a kill and traffic, so the shrinker can cut the second.
        let seed = (0..200)
            .find(|s| {
                let g = generate(*s);
                let half = SimDuration(g.duration.as_nanos() / 2);
                g.fault.len() >= 2
                    && g.traffic.len() >= 2
                    && g.duration.as_nanos() >= 20_000_000_000
                    && g.fault.iter().any(|f| is_kill(f) && f.at < half)
                    && g.traffic.iter().any(|t| t.start < half)
            })
            .expect("some seed has two faults and two traffic stretches, kill and traffic early");
        let scenario = generate(seed);
        // A pretend failure: any kill fault in a scenario with traffic.
        let fails = |s: &Scenario| {
            let kill = s.fault.iter().any(is_kill);
            (kill && !s.traffic.is_empty()).then(|| "pretend".to_string())
        };
        let (shrunk, violation) = shrink_with(scenario.clone(), "pretend".into(), fails);
        assert_eq!(violation, "pretend");
        assert_eq!(shrunk.fault.len(), 1, "{}", shrunk.to_toml());
        assert_eq!(shrunk.traffic.len(), 1, "{}", shrunk.to_toml());
        assert!(
            shrunk.duration < scenario.duration,
            "the duration was not cut:\n{}",
            shrunk.to_toml()
        );
        assert_eq!(shrunk.app.crash_every, 0);
        assert!(shrunk.app.fail_spawns.is_none());
    }

    #[test]
    fn generated_scenarios_are_valid_and_round_trip() {
        for seed in 0..40 {
            let scenario = generate(seed);
            let text = scenario.to_toml();
            let parsed =
                Scenario::parse(&text, "generated").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(parsed, scenario, "{text}");
        }
    }
}
