//! A scenario's `[[expect]]` checks and `[[status]]` snapshots, and the bounds their keys take
//! (an exact value, or `{ min = …, max = … }`).

use crate::duration::SimDuration;
use serde::de::{self, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A check at a virtual time; any key that misses fails the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    /// Default: the end of the scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<SimDuration>,
    /// Live processes (spawning, ready, draining or stopping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<Bound<u64>>,
    /// Live processes averaged over time, from the start until `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_avg: Option<Bound<f64>>,
    /// The pool's cost from the start until `at`: live processes times seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_seconds: Option<Bound<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<Bound<u64>>,
    /// Requests in flight inside processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrived: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spawns: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spawn_failures: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crashes: Option<Bound<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_shutdowns: Option<Bound<u64>>,
    /// Latency of served requests so far, from arrival to the end of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50: Option<Bound<SimDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<Bound<SimDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_max: Option<Bound<SimDuration>>,
    /// Time from arrival to forwarding, of forwarded requests so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_p50: Option<Bound<SimDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_p99: Option<Bound<SimDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_max: Option<Bound<SimDuration>>,
    /// Time from arrival to the 503 of rejected requests so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_latency_p50: Option<Bound<SimDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_latency_p99: Option<Bound<SimDuration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_latency_max: Option<Bound<SimDuration>>,
    /// For every idle shutdown so far: the time from the process's last use to its kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_shutdown_after: Option<Bound<SimDuration>>,
    /// How evenly requests spread over processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// Among processes ready at `from` and still alive at the check, the busiest served at most
/// `max_ratio` times as many requests in between as the least busy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    pub max_ratio: f64,
    #[serde(default)]
    pub from: SimDuration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusAt {
    pub at: SimDuration,
}

/// An exact expected value (`processes = 6`) or a range (`failed = { max = 1 }`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound<T> {
    pub min: Option<T>,
    pub max: Option<T>,
}

impl<T: PartialOrd + Copy> Bound<T> {
    pub fn contains(&self, value: T) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

impl<T: fmt::Display + PartialEq> fmt::Display for Bound<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) if min == max => write!(f, "{min}"),
            (Some(min), Some(max)) => write!(f, "{min}..={max}"),
            (Some(min), None) => write!(f, ">= {min}"),
            (None, Some(max)) => write!(f, "<= {max}"),
            (None, None) => write!(f, "anything"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoundTable<T> {
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    min: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    max: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T: Serialize + PartialEq> Serialize for Bound<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) if min == max => min.serialize(serializer),
            (min, max) => BoundTable {
                min: min.as_ref(),
                max: max.as_ref(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de> + Copy> Deserialize<'de> for Bound<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Copy> Visitor<'de> for BoundVisitor<T> {
            type Value = Bound<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an exact value or a table { min = …, max = … }")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bound<T>, E> {
                exact(T::deserialize(v.into_deserializer())?)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bound<T>, E> {
                exact(T::deserialize(v.into_deserializer())?)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bound<T>, E> {
                exact(T::deserialize(v.into_deserializer())?)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bound<T>, E> {
                exact(T::deserialize(v.into_deserializer())?)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bound<T>, E> {
                exact(T::deserialize(v.into_deserializer())?)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Bound<T>, A::Error> {
                let table =
                    BoundTable::<T>::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if table.min.is_none() && table.max.is_none() {
                    return Err(de::Error::custom("a range needs `min`, `max` or both"));
                }
                Ok(Bound {
                    min: table.min,
                    max: table.max,
                })
            }
        }
        fn exact<T: Copy, E>(value: T) -> Result<Bound<T>, E> {
            Ok(Bound {
                min: Some(value),
                max: Some(value),
            })
        }
        deserializer.deserialize_any(BoundVisitor(PhantomData))
    }
}
