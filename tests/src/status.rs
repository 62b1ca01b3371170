//! Reading a running server's `ferry status --json`.

use crate::server::Ferry;
use crate::wait::wait_for;
use serde_json::Value;
use std::time::Duration;

impl Ferry {
    /// `ferry status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.ferry_command(&["status", "--json"]);
        assert!(
            out.status.success(),
            "ferry status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    pub fn processes(&self) -> Vec<Value> {
        self.status()["groups"][0]["processes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// PIDs of processes in the given state ("ready", "spawning", …).
    pub fn pids_in(&self, state: &str) -> Vec<u32> {
        self.processes()
            .iter()
            .filter(|p| p["state"] == state)
            .filter_map(|p| p["pid"].as_u64().map(|pid| pid as u32))
            .collect()
    }

    /// Waits until `count` processes are ready (and none other is alive), returning their
    /// PIDs.
    pub fn wait_ready(&self, count: usize, limit: Duration) -> Vec<u32> {
        wait_for(&format!("{count} ready processes"), limit, || {
            let processes = self.processes();
            let ready = self.pids_in("ready");
            (ready.len() == count && processes.len() == count).then_some(ready)
        })
    }

    /// PIDs of every app process the status lists, whatever its state.
    pub fn all_pids(&self) -> Vec<u32> {
        self.processes()
            .iter()
            .filter_map(|p| p["pid"].as_u64().map(|pid| pid as u32))
            .collect()
    }

    /// The status's `totals` counter `name` (`spawns`, `crashes`, `idle_shutdowns`, …).
    pub fn total(&self, name: &str) -> u64 {
        let status = self.status();
        status["totals"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("status has no totals.{name}: {status}"))
    }

    /// The first app group of the status.
    pub fn group(&self) -> Value {
        self.status()["groups"][0].clone()
    }
}
