//! Stores fed beside Kafka with the records the producer streams hand to it.

pub mod redis;
