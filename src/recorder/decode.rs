//! Kafka value → `Normalized`: the Confluent framing gives the schema id, the registry (asked
//! once per id, answers cached and checked again every [`RECHECK`]) says which normalized
//! message that id is, prost decodes it. A registry that does not know an id (404: a wrong
//! URL, or a registry restarted empty) is not a bad record: it is unavailable, and the
//! record waits (never skipped).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::config::SchemaRegistryConfig;
use crate::schema::{wire, DataType, Normalized, PACKAGE};

/// A record that can never be decoded (it is counted and dead-lettered, never retried).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BadRecord {
    /// No value (a tombstone).
    #[error("record has no value")]
    Empty,
    /// The Confluent framing is broken.
    #[error("bad framing: {0}")]
    Frame(String),
    /// The schema id names something other than a normalized record.
    #[error("schema id {0} is not a normalized record ({1})")]
    ForeignSchema(u32, String),
    /// The payload is not a valid protobuf message of its schema.
    #[error("payload does not decode as {0}: {1}")]
    Undecodable(&'static str, String),
}

impl BadRecord {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            BadRecord::Empty => "empty",
            BadRecord::Frame(_) => "bad_frame",
            BadRecord::ForeignSchema(..) => "foreign_schema",
            BadRecord::Undecodable(..) => "undecodable",
        }
    }
}

/// The registry could not be asked (down, timing out, refusing us): retry later.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("schema registry unavailable: {0}")]
pub struct RegistryUnavailable(pub String);

/// How long a cached answer is used before the registry is asked again (a registry
/// restarted empty may give an id to another schema, or forget it).
pub const RECHECK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Cached {
    Known(DataType, Instant),
    Foreign(String, Instant),
}

/// What the registry said about one id.
enum Fetched {
    Schema(String),
    NotFound,
}

/// Decodes framed values, looking schema ids up in the registry (cached).
#[derive(Debug)]
pub struct Decoder {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, Option<String>)>,
    cache: HashMap<u32, Cached>,
}

impl Decoder {
    /// A decoder asking the registry of `cfg`.
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Decoder, RegistryUnavailable> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| RegistryUnavailable(crate::redact::redact(&e.to_string())))?;
        Ok(Decoder {
            http,
            base: cfg.url.trim_end_matches('/').to_string(),
            auth: cfg.username.as_ref().map(|u| {
                (
                    u.clone(),
                    cfg.password.as_ref().map(|p| p.expose().to_string()),
                )
            }),
            cache: HashMap::new(),
        })
    }

    /// A decoder that knows `ids` already and never asks a registry about them (tests, bench).
    pub fn with_known(
        cfg: &SchemaRegistryConfig,
        ids: &[(u32, DataType)],
    ) -> Result<Decoder, RegistryUnavailable> {
        let mut d = Decoder::new(cfg)?;
        // Far in the future: never checked again.
        let never = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        for (id, dt) in ids {
            d.cache.insert(*id, Cached::Known(*dt, never));
        }
        Ok(d)
    }

    /// Decodes one Kafka value.
    pub async fn decode(
        &mut self,
        value: Option<&[u8]>,
    ) -> Result<Result<Normalized, BadRecord>, RegistryUnavailable> {
        let Some(value) = value else {
            return Ok(Err(BadRecord::Empty));
        };
        let frame = match wire::parse(value) {
            Ok(f) => f,
            Err(e) => return Ok(Err(BadRecord::Frame(e.to_string()))),
        };
        let data_type = match self.data_type(frame.schema_id).await? {
            Ok(dt) => dt,
            Err(bad) => return Ok(Err(bad)),
        };
        if frame.message_indexes != [0] {
            return Ok(Err(BadRecord::ForeignSchema(
                frame.schema_id,
                format!("message indexes {:?}", frame.message_indexes),
            )));
        }
        Ok(Normalized::decode(data_type, frame.payload)
            .map_err(|e| BadRecord::Undecodable(data_type.message_name(), e.to_string())))
    }

    async fn data_type(
        &mut self,
        id: u32,
    ) -> Result<Result<DataType, BadRecord>, RegistryUnavailable> {
        let now = Instant::now();
        let cached = self.cache.get(&id).cloned();
        let answer = |c: &Cached| match c {
            Cached::Known(dt, _) => Ok(*dt),
            Cached::Foreign(why, _) => Err(BadRecord::ForeignSchema(id, why.clone())),
        };
        match &cached {
            Some(c @ (Cached::Known(_, at) | Cached::Foreign(_, at)))
                if now.saturating_duration_since(*at) < RECHECK =>
            {
                return Ok(answer(c))
            }
            _ => {}
        }
        let fetched = match self.fetch(id).await {
            Ok(f) => f,
            // Unreachable while checking a cached answer again: keep using it (the registry
            // being down says nothing about what the id means).
            Err(_) if cached.is_some() => {
                let c = cached.map(|c| match c {
                    Cached::Known(dt, _) => Cached::Known(dt, now),
                    Cached::Foreign(why, _) => Cached::Foreign(why, now),
                });
                if let Some(c) = c {
                    let a = answer(&c);
                    self.cache.insert(id, c);
                    return Ok(a);
                }
                return Err(RegistryUnavailable(format!("schema id {id}")));
            }
            Err(e) => return Err(e),
        };
        let entry = match fetched {
            Fetched::NotFound => {
                // Forgotten (or never known): nothing cached is trusted for it any more.
                self.cache.remove(&id);
                return Err(RegistryUnavailable(format!(
                    "the registry does not know schema id {id} (HTTP 404: a wrong registry \
                     URL, or a registry restarted empty); the record waits"
                )));
            }
            Fetched::Schema(text) => match data_type_of(&text) {
                Ok(dt) => Cached::Known(dt, now),
                Err(why) => Cached::Foreign(why, now),
            },
        };
        if let (Some(Cached::Known(old, _)), Cached::Known(new, _)) = (&cached, &entry) {
            if old != new {
                tracing::warn!(
                    id,
                    ?old,
                    ?new,
                    "recorder: the registry now gives this schema id to another type"
                );
            }
        }
        let a = answer(&entry);
        self.cache.insert(id, entry);
        Ok(a)
    }

    /// The schema text of `id`, or that the registry does not know it (404).
    async fn fetch(&self, id: u32) -> Result<Fetched, RegistryUnavailable> {
        let mut req = self.http.get(format!("{}/schemas/ids/{id}", self.base));
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, p.as_ref());
        }
        let unavailable =
            |e: &dyn std::fmt::Display| RegistryUnavailable(crate::redact::redact(&e.to_string()));
        let res = req.send().await.map_err(|e| unavailable(&e))?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Fetched::NotFound);
        }
        if !status.is_success() {
            return Err(RegistryUnavailable(format!(
                "GET /schemas/ids/{id}: HTTP {status}"
            )));
        }
        let body = res.bytes().await.map_err(|e| unavailable(&e))?;
        #[derive(serde::Deserialize)]
        struct Answer {
            schema: String,
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| RegistryUnavailable(format!("GET /schemas/ids/{id}: {e}")))?;
        Ok(Fetched::Schema(answer.schema))
    }
}

/// The normalized data type whose message is the first one of a registered `.proto` text.
pub fn data_type_of(proto: &str) -> Result<DataType, String> {
    let mut package = None;
    let mut first_message = None;
    let mut depth = 0usize;
    for line in proto.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut words = line.split_whitespace().peekable();
        while let Some(w) = words.next() {
            if depth == 0 && w == "package" {
                package = words.next().map(|p| p.trim_end_matches(';').to_string());
            } else if depth == 0 && w == "message" && first_message.is_none() {
                first_message = words.next().map(|m| m.trim_end_matches('{').to_string());
            }
            depth += w.matches('{').count();
            depth = depth.saturating_sub(w.matches('}').count());
        }
    }
    if package.as_deref() != Some(PACKAGE) {
        return Err(format!("package {package:?}"));
    }
    let message = first_message.ok_or_else(|| "no message".to_string())?;
    DataType::ALL
        .into_iter()
        .find(|d| d.message_name() == message)
        .ok_or_else(|| format!("message {message}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_normalized_schema_names_its_type() {
        for dt in DataType::ALL {
            assert_eq!(data_type_of(dt.proto_source()), Ok(dt));
        }
    }

    #[test]
    fn a_foreign_schema_is_refused() {
        let other = "syntax = \"proto3\";\npackage acme.v1;\nmessage Trade { string x = 1; }\n";
        assert!(data_type_of(other).is_err());
        let unknown = format!("syntax = \"proto3\";\npackage {PACKAGE};\nmessage Quote {{}}\n");
        assert!(data_type_of(&unknown).is_err());
    }
}
