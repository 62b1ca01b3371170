//! Memory of the proxy processes, from /proc/PID/status, sampled while wrk runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, ...).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Peak {
    /// Largest sum of VmRSS over the processes seen by the sampler.
    pub sampled_kb: u64,
    /// Sum of the processes' VmHWM (the kernel's own peak RSS) when sampling stopped.
    pub hwm_kb: u64,
}

impl Peak {
    /// The peak RSS reported: the kernel's high-water mark, which catches spikes between
    /// samples; the sampled peak when the HWM could not be read.
    pub fn kb(&self) -> u64 {
        self.hwm_kb.max(self.sampled_kb)
    }
}

/// Samples the summed VmRSS of `pids` every `every` until `finish`.
pub struct Sampler {
    pids: Vec<u32>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Sampler {
    pub fn start(pids: Vec<u32>, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (pids, stop) = (pids.clone(), stop.clone());
            thread::spawn(move || {
                let mut peak = 0;
                loop {
                    let sum: u64 = pids.iter().filter_map(|&p| status_kb(p, "VmRSS")).sum();
                    peak = peak.max(sum);
                    if stop.load(Ordering::Relaxed) {
                        return peak;
                    }
                    thread::sleep(every);
                }
            })
        };
        Sampler {
            pids,
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        let sampled_kb = self.handle.take().and_then(|h| h.join().ok()).unwrap_or(0);
        let hwm_kb = self
            .pids
            .iter()
            .filter_map(|&p| status_kb(p, "VmHWM"))
            .sum();
        Peak { sampled_kb, hwm_kb }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
