//! Simulator speed: `cargo bench -p ferry-sim` (release build, one thread).
//!
//! Prints simulated requests per wall-clock second for a saturated closed-loop pool and for
//! open-loop Poisson arrivals, and the wall time of the `day` scenario (8.7 M requests).
//! A measurement, not a test: nothing fails on a slow machine.

use ferry_sim::{run, Scenario};
use std::path::Path;
use std::time::Instant;

const SATURATED: &str = r#"
name = "bench-saturated"
seed = 1
duration = "15m"
[pool]
max_pool_size = 8
min_instances = 8
max_request_queue_size = 0
[app]
service_time = { dist = "exponential", mean = "1ms" }
[[traffic]]
clients = 64
rtt = "100us"
"#;

const OPEN_LOOP: &str = r#"
name = "bench-open-loop"
seed = 1
duration = "2h"
[pool]
max_pool_size = 8
min_instances = 2
[app]
service_time = { dist = "lognormal", median = "15ms", p99 = "150ms" }
[[traffic]]
rate = 1000
"#;

/// This thread's time on a CPU, in seconds (Linux): on a shared machine the wall clock also
/// counts time spent waiting for a core.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}

fn measure(name: &str, scenario: &Scenario) {
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let report = run(scenario, scenario.seed, None);
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_before.and_then(|before| Some(cpu_seconds()? - before));
    let requests = report.requests.arrived as f64;
    let per_second = |seconds: f64| format!("{:.2} M requests/s", requests / seconds / 1e6);
    let cpu_text = match cpu {
        Some(cpu) => format!("; {cpu:.2} s on a CPU: {}", per_second(cpu)),
        None => String::new(),
    };
    println!(
        "{name:<10} {requests:>9} requests, {} virtual: {wall:.2} s wall: {}{cpu_text}",
        report.duration,
        per_second(wall)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter is not supported and not needed.
    let parse = |text: &str| Scenario::parse(text, "bench").expect("bench scenarios are valid");
    measure("saturated", &parse(SATURATED));
    measure("open loop", &parse(OPEN_LOOP));
    let day = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/day.toml");
    measure("day.toml", &Scenario::load(&day).expect("day.toml loads"));
}
