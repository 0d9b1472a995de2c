//! tickflow: exchange market data → normalized protobuf → schema registry → Kafka,
//! as an actix actor system.
#![warn(missing_docs)]

pub mod audit;
pub mod book;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod embed;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod producer;
pub mod recorder;
pub mod redact;
pub mod replay;
pub mod schema;
pub mod service;
pub mod sinks;
pub mod supervisor;
pub mod transport;
pub mod venues;
