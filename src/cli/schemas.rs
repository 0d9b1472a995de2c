//! `tickflow schemas register|check`: registers every normalized value schema under its subject,
//! or checks the local schemas against the registry's latest versions (breaking change = fail).

use prost_types::FileDescriptorSet;

use crate::config::Config;
use crate::producer::routing::Routing;
use crate::schema::compat::breaking_changes;
use crate::schema::registry::Registry;
use crate::schema::DataType;

/// The subject of each data type's consolidated topic.
fn subjects(cfg: &Config) -> Vec<(DataType, String)> {
    let routing = Routing::new(&cfg.producer);
    DataType::ALL
        .into_iter()
        .map(|dt| {
            (
                dt,
                cfg.schema_registry
                    .subject_strategy
                    .subject(&routing.consolidated_topic(dt), dt),
            )
        })
        .collect()
}

/// A registry client error as text fit for a terminal or a log: the URL it failed on is left out
/// (`without_url`: the configured URL may carry a token in its query or userinfo), and any URL
/// still in the text (e.g. from a source error) is cut to scheme, host, port and path.
fn registry_error(e: reqwest::Error) -> String {
    format!(
        "registry: {}",
        crate::redact::redact(&e.without_url().to_string())
    )
}

fn compile(name: &str, text: &str) -> Result<FileDescriptorSet, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string())?;
    protox::compile([name], [dir.path()]).map_err(|e| format!("{name}: {e}"))
}

/// Registers all schemas; prints `subject id` lines.
pub async fn register(cfg: &Config) -> Result<Vec<String>, String> {
    let registry = Registry::new(&cfg.schema_registry).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (dt, subject) in subjects(cfg) {
        let id = registry
            .register(&subject, dt)
            .await
            .map_err(|e| format!("{subject}: {e}"))?;
        out.push(format!("{subject} {id}"));
    }
    Ok(out)
}

/// Compares local schemas with the registry's latest; returns report lines and whether any
/// change is breaking.
pub async fn check(cfg: &Config) -> Result<(Vec<String>, bool), String> {
    let http = reqwest::Client::builder()
        .timeout(cfg.schema_registry.timeout)
        .build()
        .map_err(registry_error)?;
    let base = cfg.schema_registry.url.trim_end_matches('/');
    let mut lines = Vec::new();
    let mut broken = false;
    for (dt, subject) in subjects(cfg) {
        let mut req = http.get(format!("{base}/subjects/{subject}/versions/latest"));
        if let Some(user) = &cfg.schema_registry.username {
            req = req.basic_auth(
                user,
                cfg.schema_registry.password.as_ref().map(|p| p.expose()),
            );
        }
        let resp = req.send().await.map_err(registry_error)?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            lines.push(format!("{subject}: not registered yet"));
            continue;
        }
        if !resp.status().is_success() {
            return Err(format!("registry: {subject}: HTTP {}", resp.status()));
        }
        let body: serde_json::Value = resp.json().await.map_err(registry_error)?;
        let Some(remote) = body["schema"].as_str() else {
            return Err(format!("registry: {subject}: no schema in the answer"));
        };
        let file = format!("{}.proto", dt.as_str());
        let remote = compile(&file, remote)?;
        let local = compile(&file, dt.proto_source())?;
        let breaks = breaking_changes(&remote, &local);
        if breaks.is_empty() {
            lines.push(format!(
                "{subject}: compatible (version {})",
                body["version"]
            ));
        } else {
            broken = true;
            for b in breaks {
                lines.push(format!("{subject}: BREAKING {b}"));
            }
        }
    }
    Ok((lines, broken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_registry_error_names_neither_query_nor_password() {
        // Nothing listens on port 1: the request fails in the client, whose raw error text
        // carries the URL with its query.
        let mut cfg = Config::default();
        cfg.schema_registry.url = "http://127.0.0.1:1/?api_key=k3y-0f-the-registry".into();
        cfg.schema_registry.username = Some("reg-user".into());
        cfg.schema_registry.password = Some(crate::config::Secret::new("pa55-w0rd"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(check(&cfg)).unwrap_err();
        assert!(err.starts_with("registry: "), "{err}");
        for secret in ["k3y-0f-the-registry", "api_key", "pa55-w0rd"] {
            assert!(!err.contains(secret), "{secret} in {err}");
        }
    }
}
