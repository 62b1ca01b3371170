//! The swarm runs the app faults of issue 9 — processes killed young (a crash storm) and
//! processes that hang — and the engine's invariants hold through them.

use ferry_sim::{run, swarm};

#[test]
fn the_swarm_kills_processes_young_and_hangs_them_and_stays_clean() {
    let (mut storms, mut hangs, mut timed_out) = (0, 0, 0);
    for seed in 0..80 {
        let scenario = swarm::generate(seed);
        let report = run(&scenario, seed, None);
        if let Some(v) = &report.violation {
            panic!(
                "swarm seed {seed} broke: {v}\nreproduce: ferry sim --swarm 1 --seed {seed}\n{}",
                scenario.to_toml()
            );
        }
        storms += usize::from(scenario.app.die_after_ready.is_some());
        hangs += usize::from(scenario.app.hang_probability > 0.0);
        timed_out += report.requests.timed_out;
    }
    assert!(storms >= 3, "{storms} of 80 scenarios kill processes young");
    assert!(hangs >= 3, "{hangs} of 80 scenarios hang processes");
    assert!(timed_out > 0, "no hung request was ever timed out");
}
