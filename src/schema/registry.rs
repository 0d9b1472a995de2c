//! Schema-registry access: subject naming and registration of the normalized schemas
//! (through `schema_registry_converter`, `POST /subjects/{s}/versions`).

use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use thiserror::Error;

use super::DataType;
use crate::config::SchemaRegistryConfig;
pub use crate::config::SubjectStrategy;

impl SubjectStrategy {
    /// The subject for a value of `data_type` written to `topic`.
    pub fn subject(self, topic: &str, data_type: DataType) -> String {
        match self {
            SubjectStrategy::TopicName => format!("{topic}-value"),
            SubjectStrategy::RecordName => data_type.full_name(),
        }
    }
}

/// A schema-registry failure, with whether retrying can help.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("schema registry: {message}")]
pub struct RegistryError {
    /// What went wrong, as the client reported it.
    pub message: String,
    /// True for transport errors and 5xx answers; false for rejected schemas.
    pub retriable: bool,
}

impl From<SRCError> for RegistryError {
    /// The client's text names the URL it failed on (a reqwest error's `for url (…)`): every URL
    /// in it loses its userinfo and query before the message goes anywhere.
    fn from(e: SRCError) -> Self {
        let message = match e.cause {
            Some(c) => format!("{} ({c})", e.error),
            None => e.error,
        };
        RegistryError {
            message: crate::redact::redact(&message),
            retriable: e.retriable,
        }
    }
}

/// A client for one Confluent-compatible registry.
#[derive(Debug, Clone)]
pub struct Registry {
    settings: SrSettings,
}

impl Registry {
    /// Builds a client from the config (URL, timeout, optional basic auth).
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Registry, RegistryError> {
        let mut b = SrSettings::new_builder(cfg.url.clone());
        b.set_timeout(cfg.timeout);
        if let Some(user) = &cfg.username {
            b.set_basic_authorization(user, cfg.password.as_ref().map(|p| p.expose()));
        }
        Ok(Registry {
            settings: b.build()?,
        })
    }

    /// Registers `schema` (a self-contained `.proto` text) under `subject`; returns its id.
    /// Registering an identical schema again returns the existing id.
    pub async fn register_proto(
        &self,
        subject: &str,
        full_name: &str,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        let supplied = SuppliedSchema::new(
            Some(full_name.to_string()),
            SchemaType::Protobuf,
            schema.to_string(),
        );
        Ok(post_schema(&self.settings, subject.to_string(), supplied)
            .await?
            .id)
    }

    /// Registers the normalized schema of `data_type` under `subject`.
    pub async fn register(&self, subject: &str, data_type: DataType) -> Result<u32, RegistryError> {
        self.register_proto(subject, &data_type.full_name(), data_type.proto_source())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry that is down, addressed with credentials and a query in its URL (the config
    /// refuses such a URL; the client must not leak it either).
    #[tokio::test]
    async fn a_registry_error_names_no_credentials_or_query() {
        let cfg = SchemaRegistryConfig {
            url: "http://carol:s3cr3t@127.0.0.1:1/?api_key=tok789".into(),
            timeout: std::time::Duration::from_millis(2_000),
            ..SchemaRegistryConfig::default()
        };
        let err = Registry::new(&cfg)
            .unwrap()
            .register("t-value", DataType::Trade)
            .await
            .unwrap_err();
        assert!(err.retriable, "{err:?}");
        assert!(err.message.contains("127.0.0.1:1"), "{}", err.message);
        for secret in ["carol", "s3cr3t", "api_key", "tok789"] {
            assert!(!err.message.contains(secret), "{secret} in {}", err.message);
        }
    }
}
