//! Transport, shared by all venues: the REST client (weight budget, 429/418, typed errors)
//! and WebSocket connections.

pub mod rest;
pub mod ws;

pub use rest::{snapshot_backoff, RestBudget, RestClient, RestConfig, RestError};
