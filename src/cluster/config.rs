//! The `[cluster]` config section: how one instance finds its share of the configured
//! subscriptions among many (static sharding by ordinal, or dynamic shards owned through a
//! Kafka consumer group).

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

/// Most shards (partitions of the control topic) a group may have.
pub const MAX_SHARDS: u32 = 4096;

/// `[cluster]`: sharding the feeds over many instances. Without `instances` or `group` the
/// instance carries every subscription of the config (one instance).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Static sharding: how many instances share the config (with `instance` or
    /// `instance_from_env`).
    pub instances: Option<u32>,
    /// Static sharding: this instance's ordinal, `0..instances`.
    pub instance: Option<u32>,
    /// Static sharding: the environment variable holding the ordinal instead of `instance`:
    /// a number, or a name ending in `-<number>` as a StatefulSet gives its pods
    /// (`HOSTNAME=tickflow-2` → 2).
    pub instance_from_env: Option<String>,
    /// Dynamic sharding: the consumer group that instances sharing it join; each owns the
    /// shards (control-topic partitions) the group assigns to it.
    pub group: Option<String>,
    /// Dynamic sharding: how many shards, i.e. partitions of the control topic.
    pub shards: u32,
    /// Dynamic sharding: the control topic (default `<producer.topic_prefix>.cluster.<group>`),
    /// created with `shards` partitions if missing.
    pub control_topic: Option<String>,
    /// Dynamic sharding: how long a silent instance keeps its shards (consumer-group session
    /// timeout).
    pub session_timeout_ms: u64,
    /// Dynamic sharding: `partition.assignment.strategy` of the group (the cooperative one
    /// moves only the shards that change owner; `range`/`roundrobin` stop every shard at
    /// each rebalance).
    pub assignor: String,
    /// The name of this instance in logs, `/status` and every `FeedEvent` it emits (default:
    /// `$HOSTNAME-<pid>`, or `instance-<k>` with static sharding).
    pub instance_id: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            instances: None,
            instance: None,
            instance_from_env: None,
            group: None,
            shards: 12,
            control_topic: None,
            session_timeout_ms: 10_000,
            assignor: "cooperative-sticky".into(),
            instance_id: None,
        }
    }
}

/// What the `[cluster]` section asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One instance, every subscription.
    Single,
    /// Instance `instance` of `instances`, fixed.
    Static {
        /// This instance's ordinal.
        instance: u32,
        /// How many instances.
        instances: u32,
    },
    /// Shards owned through the consumer group `group`.
    Dynamic {
        /// The consumer group.
        group: String,
        /// How many shards.
        shards: u32,
    },
}

/// The ordinal in an environment value: a number, or a name ending in `-<number>`.
pub fn ordinal_of(value: &str) -> Option<u32> {
    let value = value.trim();
    let digits = value.rsplit('-').next().unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl ClusterConfig {
    /// The mode, reading `instance_from_env` from the environment when it is set.
    pub fn mode(&self) -> Result<Mode, ConfigError> {
        self.mode_with(&|k| std::env::var(k).ok())
    }

    /// [`ClusterConfig::mode`] with the environment given as a function.
    pub fn mode_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Mode, ConfigError> {
        if let Some(group) = &self.group {
            if self.instances.is_some()
                || self.instance.is_some()
                || self.instance_from_env.is_some()
            {
                return Err(ConfigError::invalid(
                    "cluster.group",
                    "dynamic sharding (group) and static sharding (instances, instance, \
                     instance_from_env) exclude each other: set one",
                ));
            }
            if group.trim().is_empty() {
                return Err(ConfigError::invalid("cluster.group", "must not be empty"));
            }
            if self.shards == 0 || self.shards > MAX_SHARDS {
                return Err(ConfigError::invalid(
                    "cluster.shards",
                    format!("must be within 1..={MAX_SHARDS}"),
                ));
            }
            if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
                return Err(ConfigError::invalid(
                    "cluster.session_timeout_ms",
                    "must be within 1000..=3600000",
                ));
            }
            if self.assignor.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "cluster.assignor",
                    "must not be empty",
                ));
            }
            return Ok(Mode::Dynamic {
                group: group.clone(),
                shards: self.shards,
            });
        }
        let Some(instances) = self.instances else {
            if self.instance.is_some() || self.instance_from_env.is_some() {
                return Err(ConfigError::invalid(
                    "cluster.instances",
                    "must be set with cluster.instance or cluster.instance_from_env",
                ));
            }
            return Ok(Mode::Single);
        };
        if instances == 0 {
            return Err(ConfigError::invalid(
                "cluster.instances",
                "must be at least 1",
            ));
        }
        let instance = match (self.instance, &self.instance_from_env) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "cluster.instance",
                    "set cluster.instance or cluster.instance_from_env, not both",
                ))
            }
            (Some(k), None) => k,
            (None, Some(var)) => {
                let value = env(var).ok_or_else(|| {
                    ConfigError::invalid(
                        "cluster.instance_from_env",
                        format!("the environment variable {var} is not set"),
                    )
                })?;
                ordinal_of(&value).ok_or_else(|| {
                    ConfigError::invalid(
                        "cluster.instance_from_env",
                        format!(
                            "{var}={value:?} is neither a number nor a name ending in -<number>"
                        ),
                    )
                })?
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    "cluster.instance",
                    "static sharding needs this instance's ordinal: cluster.instance or \
                     cluster.instance_from_env",
                ))
            }
        };
        if instance >= instances {
            return Err(ConfigError::invalid(
                "cluster.instance",
                format!("is {instance} but must be below cluster.instances ({instances})"),
            ));
        }
        Ok(Mode::Static {
            instance,
            instances,
        })
    }

    /// Checks the section; the variable of `instance_from_env` is read when the service
    /// starts (so a config can be checked, or planned, away from its pods).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mode_with(&|_| Some("0".into())).map(|_| ())
    }

    /// This instance's name (see `instance_id`).
    pub fn instance_id(&self, mode: &Mode) -> String {
        if let Some(id) = &self.instance_id {
            return id.clone();
        }
        match mode {
            Mode::Static { instance, .. } => format!("instance-{instance}"),
            _ => {
                let host = std::env::var("HOSTNAME")
                    .ok()
                    .filter(|h| !h.trim().is_empty())
                    .unwrap_or_else(|| "tickflow".into());
                format!("{host}-{}", std::process::id())
            }
        }
    }

    /// The control topic under `topic_prefix`.
    pub fn control_topic(&self, topic_prefix: &str, group: &str) -> String {
        self.control_topic
            .clone()
            .unwrap_or_else(|| format!("{topic_prefix}.cluster.{group}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| (k == var).then(|| value.to_string())
    }

    #[test]
    fn a_statefulset_hostname_gives_its_ordinal() {
        assert_eq!(ordinal_of("tickflow-2"), Some(2));
        assert_eq!(ordinal_of("my-feed-set-13"), Some(13));
        assert_eq!(ordinal_of("7"), Some(7));
        assert_eq!(ordinal_of("tickflow"), None);
        assert_eq!(ordinal_of("tickflow-"), None);
        assert_eq!(ordinal_of("tickflow-2a"), None);
    }

    #[test]
    fn modes_and_their_errors() {
        let none = |_: &str| None;
        assert_eq!(
            ClusterConfig::default().mode_with(&none).unwrap(),
            Mode::Single
        );
        let st = ClusterConfig {
            instances: Some(3),
            instance_from_env: Some("HOSTNAME".into()),
            ..Default::default()
        };
        assert_eq!(
            st.mode_with(&env("HOSTNAME", "tickflow-2")).unwrap(),
            Mode::Static {
                instance: 2,
                instances: 3
            }
        );
        let e = st.mode_with(&env("HOSTNAME", "tickflow-3")).unwrap_err();
        assert!(e.to_string().contains("below cluster.instances (3)"), "{e}");
        let e = st.mode_with(&none).unwrap_err();
        assert!(e.to_string().contains("HOSTNAME is not set"), "{e}");
        let both = ClusterConfig {
            instances: Some(3),
            group: Some("g".into()),
            ..Default::default()
        };
        assert!(both.mode_with(&none).is_err());
        let dynamic = ClusterConfig {
            group: Some("g".into()),
            shards: 6,
            ..Default::default()
        };
        assert_eq!(
            dynamic.mode_with(&none).unwrap(),
            Mode::Dynamic {
                group: "g".into(),
                shards: 6
            }
        );
        let no_ordinal = ClusterConfig {
            instances: Some(2),
            ..Default::default()
        };
        assert!(no_ordinal.mode_with(&none).is_err());
    }
}
