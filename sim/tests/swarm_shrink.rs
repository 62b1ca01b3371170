//! The swarm catches a real violation, shrinks it, writes it and replays it. In a test binary
//! of its own, since it breaks the engine for the whole process.

mod common;

use common::run_file;

#[test]
fn a_swarm_failure_is_shrunk_written_and_reproducible() {
    // An engine that routes to the busiest process: a real violation for the shrinker.
    ferry_sim::sabotage::set(Some(ferry_engine::Sabotage::RouteToBusiest));
    let dir = std::env::temp_dir().join(format!("ferry-sim-swarm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let previous = std::env::current_dir().unwrap();
    let mut out = Vec::new();
    let code = ferry_sim::swarm::run_swarm_in(20, 0, &dir, &mut out, &mut Vec::new());
    let out = String::from_utf8(out).unwrap();
    assert_eq!(std::env::current_dir().unwrap(), previous);
    assert_eq!(code, 1, "the swarm catches the broken engine: {out}");
    let written = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "toml"))
        .expect("a shrunk scenario file was written");
    assert!(
        out.contains(&format!("reproduce: ferry sim {}", written.display())),
        "{out}"
    );
    let (code, replay, _) = run_file(written);
    assert_eq!(
        code, 1,
        "the shrunk scenario replays the failure:\n{replay}"
    );
    assert!(replay.contains("VIOLATION"), "{replay}");
    let _ = std::fs::remove_dir_all(&dir);
}
