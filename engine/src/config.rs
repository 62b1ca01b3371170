//! Pool and group settings. Field names and defaults are those of `ferry start`'s flags, which
//! follow Passenger Standalone's.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Settings shared by every group of the pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Live processes (spawning, ready, draining or stopping) over all groups never exceed this.
    pub max_pool_size: usize,
    /// An idle process above `min_instances` is shut down this long after its last use.
    /// Zero means never.
    pub pool_idle_time: Duration,
    /// How long a process may take to exit after the graceful signal before it is forced.
    pub kill_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts before processes are forced.
    pub shutdown_timeout: Duration,
    /// The first non-zero pause between spawn attempts after failures; it doubles per failure.
    pub backoff_initial: Duration,
    /// The longest pause between spawn attempts.
    pub backoff_max: Duration,
    /// A group with a ready process and no failure for this long is healthy again: its last
    /// error leaves the status.
    pub stable_uptime: Duration,
    /// The spawn-rate bound on replacing processes that crashed after they became ready: a
    /// whole pool (`max_pool_size`) at once, then one per this interval. Zero means no bound.
    pub crash_respawn_interval: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_pool_size: 6,
            pool_idle_time: Duration::from_secs(300),
            kill_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_uptime: Duration::from_secs(10),
            // Ten replacements a second beyond a whole pool: far above what any app that
            // serves at all needs (one dying every 50 requests at 240 req/s needs five), far
            // below a fork bomb.
            crash_respawn_interval: Duration::from_millis(100),
        }
    }
}

/// Settings of one app group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    /// A name for status output (the app root in the driver).
    pub name: String,
    /// Processes kept alive even when idle; spawned at start.
    pub min_instances: usize,
    /// Sessions one process takes at once; 0 means unlimited. A hard cap: beyond it requests
    /// wait in the queue.
    pub concurrency: u32,
    /// Sessions per process the pool is scaled for: a soft target, apart from the hard
    /// `concurrency` cap (as Knative's autoscaler's target). A group whose processes carry
    /// more than this on average grows; at most `concurrency` when that is not 0.
    pub target_concurrency: u32,
    /// Requests waiting for a process beyond this are answered 503 at once; 0 means unlimited.
    pub max_request_queue_size: usize,
    /// A process that has been given this many requests is replaced; 0 means never.
    pub max_requests: u64,
    /// Processes of this group being spawned at once.
    ///
    /// Six, the default pool size: a burst grows the default pool from 1 to 6 in one startup
    /// time, where Passenger's one-at-a-time needs five. Most of a startup is waiting
    /// (imports from disk, connecting to databases), so parallel spawns overlap well; apps
    /// whose startup is CPU-bound on a small box can lower it. It never causes a storm:
    /// spawns only follow demand (waiting requests), and while spawns fail the group probes
    /// with one at a time.
    pub max_spawn_concurrency: usize,
    /// A process not ready this long after its spawn is killed and counted as a failed spawn.
    pub start_timeout: Duration,
    /// A request running longer than this is answered 504 and its process is killed (graceful,
    /// then forced after `kill_timeout`) and replaced. Zero means no limit.
    pub max_request_time: Duration,
    /// A request waiting in the queue longer than this is answered 503. Zero means no limit.
    pub max_request_queue_time: Duration,
    /// A ready process measured ([`crate::Input::MemoryMeasured`]) above this many bytes is
    /// replaced after its current requests, its replacement ready first (see
    /// `crate::restart`). Zero means no limit.
    pub memory_limit_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            name: String::new(),
            min_instances: 1,
            concurrency: 1,
            target_concurrency: 1,
            max_request_queue_size: 100,
            max_requests: 0,
            max_spawn_concurrency: 6,
            start_timeout: Duration::from_secs(90),
            max_request_time: Duration::ZERO,
            max_request_queue_time: Duration::ZERO,
            memory_limit_bytes: 0,
        }
    }
}

/// Everything an engine is built from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What the groups share: the pool's size and its timings.
    pub pool: PoolConfig,
    /// The app groups, at least one; group `i` gets `GroupId(i)`.
    pub groups: Vec<GroupConfig>,
}

/// A setting that cannot work, named so that a user can fix it. `Display` gives the message;
/// group names are [`GroupConfig::name`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `groups` is empty: a pool serves at least one app.
    NoGroups,
    /// `max_pool_size` is 0: no process could ever run.
    ZeroMaxPoolSize,
    /// A group's `max_spawn_concurrency` is 0: it could never spawn.
    ZeroSpawnConcurrency {
        /// The group's name.
        group: String,
    },
    /// A group asks to keep more processes than the whole pool may hold.
    MinAboveMax {
        /// The group's name.
        group: String,
        /// Its `min_instances`.
        min_instances: usize,
        /// The pool's `max_pool_size`.
        max_pool_size: usize,
    },
    /// The groups' minimums together do not fit in the pool.
    MinSumAboveMax {
        /// `min_instances` summed over the groups.
        min_instances_total: usize,
        /// The pool's `max_pool_size`.
        max_pool_size: usize,
    },
    /// `backoff_max` is shorter than `backoff_initial`, so the backoff could not double up to it.
    BackoffMaxBelowInitial,
    /// A group's `target_concurrency` is 0: no load could ever be "on target".
    ZeroTargetConcurrency {
        /// The group's name.
        group: String,
    },
    /// A group's soft target is above its hard cap: the pool would be scaled for sessions no
    /// process can take.
    TargetAboveConcurrency {
        /// The group's name.
        group: String,
        /// Its `target_concurrency`.
        target_concurrency: u32,
        /// Its `concurrency` (the hard cap).
        concurrency: u32,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoGroups => write!(f, "the pool has no app group"),
            ConfigError::ZeroMaxPoolSize => write!(f, "max_pool_size must be at least 1"),
            ConfigError::ZeroSpawnConcurrency { group } => {
                write!(f, "max_spawn_concurrency of group '{group}' must be at least 1")
            }
            ConfigError::MinAboveMax { group, min_instances, max_pool_size } => write!(
                f,
                "min_instances ({min_instances}) of group '{group}' is above max_pool_size ({max_pool_size})"
            ),
            ConfigError::MinSumAboveMax { min_instances_total, max_pool_size } => write!(
                f,
                "the groups' min_instances add up to {min_instances_total}, above max_pool_size ({max_pool_size})"
            ),
            ConfigError::BackoffMaxBelowInitial => {
                write!(f, "backoff_max must not be below backoff_initial")
            }
            ConfigError::ZeroTargetConcurrency { group } => {
                write!(f, "target_concurrency of group '{group}' must be at least 1")
            }
            ConfigError::TargetAboveConcurrency { group, target_concurrency, concurrency } => write!(
                f,
                "target_concurrency ({target_concurrency}) of group '{group}' is above its concurrency ({concurrency}); lower it, or raise concurrency (0 is unlimited)"
            ),
        }
    }
}

impl Config {
    /// Refuses settings under which the pool's invariants could not hold.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pool = &self.pool;
        if self.groups.is_empty() {
            return Err(ConfigError::NoGroups);
        }
        if pool.max_pool_size == 0 {
            return Err(ConfigError::ZeroMaxPoolSize);
        }
        if pool.backoff_max < pool.backoff_initial {
            return Err(ConfigError::BackoffMaxBelowInitial);
        }
        for group in &self.groups {
            if group.max_spawn_concurrency == 0 {
                return Err(ConfigError::ZeroSpawnConcurrency {
                    group: group.name.clone(),
                });
            }
            if group.target_concurrency == 0 {
                return Err(ConfigError::ZeroTargetConcurrency {
                    group: group.name.clone(),
                });
            }
            if group.concurrency != 0 && group.target_concurrency > group.concurrency {
                return Err(ConfigError::TargetAboveConcurrency {
                    group: group.name.clone(),
                    target_concurrency: group.target_concurrency,
                    concurrency: group.concurrency,
                });
            }
            if group.min_instances > pool.max_pool_size {
                return Err(ConfigError::MinAboveMax {
                    group: group.name.clone(),
                    min_instances: group.min_instances,
                    max_pool_size: pool.max_pool_size,
                });
            }
        }
        let min_instances_total: usize = self.groups.iter().map(|g| g.min_instances).sum();
        if min_instances_total > pool.max_pool_size {
            return Err(ConfigError::MinSumAboveMax {
                min_instances_total,
                max_pool_size: pool.max_pool_size,
            });
        }
        Ok(())
    }
}
