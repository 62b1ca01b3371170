//! Random durations: spawn, service, shutdown and think times.

use crate::duration::SimDuration;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A duration drawn per use. In TOML a plain string is a fixed duration ("20ms"); a table
/// names the distribution: `{ dist = "uniform", min = "10ms", max = "30ms" }`,
/// `{ dist = "exponential", mean = "20ms" }`, `{ dist = "lognormal", median = "15ms",
/// p99 = "200ms" }`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    Fixed(SimDuration),
    Uniform {
        min: SimDuration,
        max: SimDuration,
    },
    Exponential {
        mean: SimDuration,
    },
    /// Given by its median and 99th percentile, which people know about their app, rather
    /// than by the log-space mean and deviation.
    LogNormal {
        median: SimDuration,
        p99: SimDuration,
    },
}

/// The table form, as serde reads and writes it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
enum DistTable {
    Fixed {
        value: SimDuration,
    },
    Uniform {
        min: SimDuration,
        max: SimDuration,
    },
    Exponential {
        mean: SimDuration,
    },
    LogNormal {
        median: SimDuration,
        p99: SimDuration,
    },
}

/// The standard normal's 99th percentile: ln(p99 / median) = Z99 · sigma.
const Z99: f64 = 2.326_347_874_040_841;

impl Dist {
    pub fn is_zero(&self) -> bool {
        *self == Dist::Fixed(SimDuration::ZERO)
    }

    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Dist::Uniform { min, max } if min > max => {
                Err(format!("uniform: min ({min}) is above max ({max})"))
            }
            Dist::LogNormal { median, p99 } if p99 < median || median.0 == 0 => Err(format!(
                "lognormal: median ({median}) must be above zero and p99 ({p99}) at least the median"
            )),
            _ => Ok(()),
        }
    }

    /// The long-run average, for planning (swarm sizes, reports).
    pub fn mean_nanos(&self) -> f64 {
        match *self {
            Dist::Fixed(d) => d.0 as f64,
            Dist::Uniform { min, max } => (min.0 as f64 + max.0 as f64) / 2.0,
            Dist::Exponential { mean } => mean.0 as f64,
            Dist::LogNormal { median, p99 } => {
                let sigma = lognormal_sigma(median, p99);
                median.0 as f64 * (sigma * sigma / 2.0).exp()
            }
        }
    }

    pub fn sampler(&self) -> Sampler {
        match *self {
            Dist::Fixed(d) => Sampler::Fixed(d.0),
            Dist::Uniform { min, max } if min == max => Sampler::Fixed(min.0),
            Dist::Uniform { min, max } => Sampler::Uniform(min.0, max.0),
            Dist::Exponential { mean } if mean.0 == 0 => Sampler::Fixed(0),
            Dist::Exponential { mean } => {
                Sampler::Exponential(Exp::new(1.0 / mean.0 as f64).expect("rate is positive"))
            }
            Dist::LogNormal { median, p99 } => Sampler::LogNormal(
                LogNormal::new((median.0 as f64).ln(), lognormal_sigma(median, p99))
                    .expect("sigma is finite and not negative"),
            ),
        }
    }
}

fn lognormal_sigma(median: SimDuration, p99: SimDuration) -> f64 {
    ((p99.0.max(1) as f64) / (median.0.max(1) as f64)).ln() / Z99
}

/// A [`Dist`] ready to draw from, built once per run.
#[derive(Clone, Debug)]
pub enum Sampler {
    Fixed(u64),
    Uniform(u64, u64),
    Exponential(Exp<f64>),
    LogNormal(LogNormal<f64>),
}

/// No single draw runs past a year: keeps sums of virtual time far from overflow.
const SAMPLE_NANOS_MAX: f64 = 365.0 * 86_400e9;

impl Sampler {
    /// A duration in nanoseconds.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Sampler::Fixed(nanos) => *nanos,
            Sampler::Uniform(min, max) => rng.random_range(*min..=*max),
            Sampler::Exponential(exp) => exp.sample(rng).min(SAMPLE_NANOS_MAX).round() as u64,
            Sampler::LogNormal(lognormal) => {
                lognormal.sample(rng).min(SAMPLE_NANOS_MAX).round() as u64
            }
        }
    }
}

impl Serialize for Dist {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Dist::Fixed(d) => d.serialize(serializer),
            Dist::Uniform { min, max } => DistTable::Uniform { min, max }.serialize(serializer),
            Dist::Exponential { mean } => DistTable::Exponential { mean }.serialize(serializer),
            Dist::LogNormal { median, p99 } => {
                DistTable::LogNormal { median, p99 }.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Dist {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DistVisitor;
        impl<'de> Visitor<'de> for DistVisitor {
            type Value = Dist;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration (\"20ms\") or a table such as { dist = \"exponential\", mean = \"20ms\" }",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Dist, E> {
                crate::duration::parse_duration(text)
                    .map(Dist::Fixed)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Dist, A::Error> {
                let table = DistTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(match table {
                    DistTable::Fixed { value } => Dist::Fixed(value),
                    DistTable::Uniform { min, max } => Dist::Uniform { min, max },
                    DistTable::Exponential { mean } => Dist::Exponential { mean },
                    DistTable::LogNormal { median, p99 } => Dist::LogNormal { median, p99 },
                })
            }
        }
        deserializer.deserialize_any(DistVisitor)
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dist::Fixed(d) => write!(f, "{d}"),
            Dist::Uniform { min, max } => write!(f, "uniform {min}..{max}"),
            Dist::Exponential { mean } => write!(f, "exponential, mean {mean}"),
            Dist::LogNormal { median, p99 } => write!(f, "lognormal, median {median}, p99 {p99}"),
        }
    }
}
