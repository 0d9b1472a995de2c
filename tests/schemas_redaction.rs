//! `tickflow schemas check` against a registry that cannot be reached: the error it prints names
//! no secret of the configured registry URL (its query) nor the basic-auth password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// A local port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn schemas_check_against_an_unreachable_registry_prints_no_secret() {
    const KEY: &str = "sk-live-7f3a9c2e";
    const PASSWORD: &str = "hunter2-registry";
    let url = format!("http://127.0.0.1:{}/?api_key={KEY}", closed_port());
    let cfg = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        cfg.path(),
        format!(
            "[schema_registry]\nurl = \"{url}\"\nusername = \"reg-user\"\ntimeout_ms = 2000\n\
             [producer]\ntopic_prefix = \"redaction\"\n[http]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("tickflow")
        .unwrap()
        .args(["schemas", "check", "--config", cfg.path().to_str().unwrap()])
        .env("TICKFLOW_SCHEMA_REGISTRY__PASSWORD", PASSWORD)
        .env_remove("TICKFLOW_SCHEMA_REGISTRY__URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It failed on the registry (not on the config): exit 1 and the registry's error line.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("tickflow schemas check: registry: "),
        "{stderr}"
    );
    for secret in [KEY, "api_key", PASSWORD] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{secret} printed:\n{stdout}\n{stderr}"
        );
    }
}
