//! Transport: shared clients for venue I/O beyond the feed WebSockets.

pub mod rest;

pub use rest::{snapshot_backoff, RestBudget, RestClient, RestConfig, RestError};
