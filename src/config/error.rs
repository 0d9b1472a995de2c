//! The error of loading or validating the configuration.

use thiserror::Error;

/// A configuration that could not be loaded or is invalid; always names the key.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file or an environment value could not be read or parsed into the typed config.
    #[error("config: {0}")]
    Load(String),
    /// A value was read but is not acceptable.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        let msgs: Vec<String> = e
            .into_iter()
            .map(|e| {
                let key = e.path.join(".");
                let what = e.kind.to_string();
                let src = e
                    .metadata
                    .as_ref()
                    .map(|m| format!(" (from {})", m.name))
                    .unwrap_or_default();
                if key.is_empty() {
                    format!("{what}{src}")
                } else {
                    format!("key `{key}`: {what}{src}")
                }
            })
            .collect();
        ConfigError::Load(msgs.join("; "))
    }
}
