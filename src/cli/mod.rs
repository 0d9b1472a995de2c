//! Command-line interface of the `tickflow` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::schema;

pub mod schemas;
pub mod smoke;

/// Exit code for a configuration error.
pub const EXIT_CONFIG: u8 = 2;

/// tickflow: exchange market data into Kafka as schema-registered protobuf.
#[derive(Debug, Parser)]
#[command(name = "tickflow", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber (`RUST_LOG` filters; default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    // Colour only on a terminal: logs written to a file or a pipe carry no ANSI codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => b.try_init(),
        LogFormat::Json => b.json().try_init(),
    };
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: feeds (and replay servers, when configured) into Kafka.
    Run {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Record the normalized topics into PostgreSQL (`[recorder]`) until SIGINT/SIGTERM.
    Record {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Read the normalized topics back and check them: per (exchange, symbol), the intervals
    /// whose delta chain is contiguous, every break and whether a FeedEvent announced it,
    /// duplicate trades. Prints a JSON report; exits 1 on anything unannounced.
    Audit {
        /// The TOML config file (the broker and the topic prefix).
        #[arg(long)]
        config: PathBuf,
        /// Only records from this time: RFC 3339 or milliseconds since the epoch.
        #[arg(long)]
        from: Option<String>,
        /// Only records before this time: RFC 3339 or milliseconds since the epoch.
        #[arg(long)]
        to: Option<String>,
    },
    /// Print which instance (or shard) carries each (venue, symbol, channel group)
    /// subscription of the config: one tab-separated line per subscription, then the count per
    /// instance. Without `--instances` or `--shards`, the config's `[cluster]` says which.
    Plan {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
        /// Static sharding over this many instances.
        #[arg(long, conflicts_with = "shards")]
        instances: Option<u32>,
        /// Dynamic sharding: the shards (control-topic partitions) instead of instances.
        #[arg(long)]
        shards: Option<u32>,
    },
    /// Validate a config file and print the effective config, secrets redacted.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Send N events through the producer actors and report acks, nacks and latency (JSON).
    Smoke(smoke::SmokeArgs),
    /// Schema maintenance.
    Schemas {
        /// What to do with the schemas.
        #[command(subcommand)]
        action: SchemasAction,
    },
}

/// `tickflow schemas …`.
#[derive(Debug, Subcommand)]
pub enum SchemasAction {
    /// Register every value schema under its subject.
    Register {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check the local schemas against the registry's latest versions; fail on a breaking change.
    Check {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Write the compiled descriptor set as the new compatibility baseline.
    Baseline {
        /// Where to write it.
        #[arg(
            long,
            default_value = "proto/baseline/tickflow.normalized.v2beta1.binpb"
        )]
        out: PathBuf,
    },
}

fn load_or_explain(file: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(file).map_err(|e| {
        eprintln!("tickflow: invalid configuration in {}: {e}", file.display());
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop requested");
}

fn run_service(file: &std::path::Path) -> ExitCode {
    let cfg = match load_or_explain(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let system = actix::System::new();
    let result = system.block_on(async move {
        let service = crate::service::Service::start(cfg).await?;
        service.run_until(stop_signal()).await;
        Ok::<(), crate::service::ServiceError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickflow: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_recorder(file: &std::path::Path) -> ExitCode {
    let cfg = match load_or_explain(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tickflow record: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let metrics = crate::metrics::Metrics::new();
        if let Some(listen) = &cfg.recorder.metrics_listen {
            let addr = crate::recorder::serve_metrics(listen, metrics.clone())
                .await
                .map_err(|e| {
                    crate::recorder::RecorderError::Kafka(format!("metrics endpoint: {e}"))
                })?;
            tracing::info!(%addr, "recorder metrics endpoint");
        }
        crate::recorder::Recorder::start(cfg, metrics)?
            .run_until(stop_signal())
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickflow record: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A time given on the command line (RFC 3339 or ms since the epoch), in ms.
fn time_ms(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        crate::venues::json::rfc3339_to_us(text)
            .ok()
            .map(|us| us.div_euclid(1_000))
    })
}

fn run_audit(file: &std::path::Path, from: Option<&str>, to: Option<&str>) -> ExitCode {
    let cfg = match load_or_explain(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut range = crate::audit::AuditRange::default();
    for (name, text, slot) in [
        ("--from", from, &mut range.from_ms),
        ("--to", to, &mut range.to_ms),
    ] {
        if let Some(text) = text {
            match time_ms(text) {
                Some(ms) => *slot = Some(ms),
                None => {
                    eprintln!("tickflow audit: {name} {text:?} is neither RFC 3339 nor ms since the epoch");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
    }
    match crate::audit::run(&cfg, &range) {
        Ok(audit) => {
            out(&serde_json::to_string_pretty(&audit).unwrap_or_default());
            if audit.clean {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "tickflow audit: {} unannounced break(s), {} duplicate trade id(s), {} undecodable record(s)",
                    audit.report.unannounced_breaks, audit.report.duplicate_trades, audit.undecodable
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("tickflow audit: {e}");
            ExitCode::from(3)
        }
    }
}

fn run_plan(file: &std::path::Path, instances: Option<u32>, shards: Option<u32>) -> ExitCode {
    let cfg = match load_or_explain(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (nodes, what) = match (instances, shards) {
        (Some(n), _) => (n, "instance"),
        (None, Some(n)) => (n, "shard"),
        (None, None) => match (cfg.cluster.instances, &cfg.cluster.group) {
            (Some(n), _) => (n, "instance"),
            (None, Some(_)) => (cfg.cluster.shards, "shard"),
            (None, None) => (1, "instance"),
        },
    };
    if nodes == 0 || nodes > crate::cluster::config::MAX_SHARDS {
        eprintln!(
            "tickflow plan: the number of {what}s must be within 1..={}",
            crate::cluster::config::MAX_SHARDS
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    match crate::cluster::plan::subscriptions(&cfg) {
        Ok(subs) => {
            use std::io::Write;
            let _ = write!(
                std::io::stdout(),
                "{}",
                crate::cluster::plan::render(&subs, nodes, what)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tickflow plan: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Prints a line on stdout; a closed pipe (e.g. `| head`) is not an error.
pub fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_logs(cli.log_format);
    match cli.command {
        Command::Run { config } => run_service(&config),
        Command::Record { config } => run_recorder(&config),
        Command::Audit { config, from, to } => run_audit(&config, from.as_deref(), to.as_deref()),
        Command::Plan {
            config,
            instances,
            shards,
        } => run_plan(&config, instances, shards),
        Command::CheckConfig { file } => match load_or_explain(&file) {
            Ok(cfg) => {
                out(&cfg.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Smoke(args) => {
            let cfg = match load_or_explain(&args.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = actix::System::new().block_on(smoke::smoke(cfg, &args));
            match result {
                Ok(summary) => {
                    out(&serde_json::to_string(&summary).unwrap_or_default());
                    if summary.nacked > 0 && !args.allow_nacks {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("tickflow smoke: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Schemas {
            action: SchemasAction::Register { config },
        } => {
            let cfg = match load_or_explain(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match actix::System::new().block_on(schemas::register(&cfg)) {
                Ok(lines) => {
                    lines.iter().for_each(|l| out(l));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tickflow schemas register: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Schemas {
            action: SchemasAction::Check { config },
        } => {
            let cfg = match load_or_explain(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match actix::System::new().block_on(schemas::check(&cfg)) {
                Ok((lines, broken)) => {
                    lines.iter().for_each(|l| out(l));
                    if broken {
                        eprintln!("tickflow schemas check: breaking changes against the registry");
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("tickflow schemas check: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Schemas {
            action: SchemasAction::Baseline { out },
        } => {
            let written = out
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&out, schema::DESCRIPTOR_SET));
            match written {
                Ok(()) => {
                    crate::cli::out(&format!("wrote {}", out.display()));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tickflow: cannot write {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
