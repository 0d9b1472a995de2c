//! Transport, shared by all venues: the REST client (weight budget, 429/418, typed errors),
//! the connection-rate budget and WebSocket connections.

pub mod connects;
pub mod rest;
pub mod ws;

pub use connects::ConnectBudget;
pub use rest::{snapshot_backoff, RestBudget, RestClient, RestConfig, RestError};
