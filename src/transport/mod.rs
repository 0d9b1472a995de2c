//! Transport, shared by all venues: the REST client (weight budget, 429/418, typed errors),
//! the connection-rate budget, WebSocket connections, and the per-feed egress proxy both use.

pub mod connects;
pub mod proxy;
pub mod rest;
pub mod ws;

pub use connects::ConnectBudget;
pub use proxy::{Proxy, ProxyError, ProxyScheme};
pub use rest::{snapshot_backoff, RestBudget, RestClient, RestConfig, RestError};
