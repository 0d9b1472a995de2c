//! Embedding API for test tooling: producer actors only (no feeds), started inside the
//! caller's actix system, or — for any other runtime — on an actix system thread of its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tickflow::embed::ProducerSystem;
//! use tickflow::producer::ProduceEvent;
//! use tickflow::schema::{Normalized, Trade};
//!
//! let system = ProducerSystem::from_file("config/default.toml")?;
//! let ack = system.produce(ProduceEvent::typed(Normalized::Trade(Trade::default()))).await?;
//! println!("{}@{:?}", ack.partition, ack.offset);
//! system.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::Path;

use thiserror::Error;

use crate::config::{Config, ConfigError};
use crate::producer::{Ack, Nack, ProduceEvent};
use crate::supervisor::{ProducerHandle, StartError};

/// The embedded system could not start.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Kafka or registry clients could not be created.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The system thread could not be started.
    #[error("cannot start the actor system thread: {0}")]
    Thread(String),
}

/// A running set of producer actors.
pub struct ProducerSystem {
    handle: ProducerHandle,
    own: Option<(actix::System, std::thread::JoinHandle<()>)>,
}

impl std::fmt::Debug for ProducerSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerSystem")
            .field("own_thread", &self.own.is_some())
            .finish_non_exhaustive()
    }
}

impl ProducerSystem {
    /// Starts from a config file (layered with `TICKFLOW_*` environment variables).
    pub fn from_file(path: impl AsRef<Path>) -> Result<ProducerSystem, EmbedError> {
        Self::start(Config::load(path.as_ref())?)
    }

    /// Starts from a config: inside the current actix system if there is one, otherwise on an
    /// actix system thread of its own (usable from any async runtime).
    pub fn start(config: Config) -> Result<ProducerSystem, EmbedError> {
        config.validate()?;
        if actix::System::try_current().is_some() {
            return Ok(ProducerSystem {
                handle: ProducerHandle::start(config)?,
                own: None,
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tickflow-actors".into())
            .spawn(move || {
                let system = actix::System::new();
                system.block_on(async {
                    let started = ProducerHandle::start(config);
                    let _ = tx.send((started, actix::System::current()));
                });
                if let Err(e) = system.run() {
                    tracing::error!(error = %e, "actor system thread ended with an error");
                }
            })
            .map_err(|e| EmbedError::Thread(e.to_string()))?;
        let (started, system) = rx.recv().map_err(|e| EmbedError::Thread(e.to_string()))?;
        match started {
            Ok(handle) => Ok(ProducerSystem {
                handle,
                own: Some((system, thread)),
            }),
            Err(e) => {
                system.stop();
                let _ = thread.join();
                Err(e.into())
            }
        }
    }

    /// The handle (cheap to clone, `Send`), for callers that keep it.
    pub fn handle(&self) -> &ProducerHandle {
        &self.handle
    }

    /// Produces one event: its Ack or Nack.
    pub async fn produce(&self, event: ProduceEvent) -> Result<Ack, Nack> {
        self.handle.produce(event).await
    }

    /// Produces events concurrently; answers in the same order.
    pub async fn produce_batch(&self, events: Vec<ProduceEvent>) -> Vec<Result<Ack, Nack>> {
        self.handle.produce_batch(events).await
    }

    /// Stops gracefully (every pending event answered) and ends the system thread if it owns one.
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
        if let Some((system, thread)) = self.own {
            system.stop();
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
