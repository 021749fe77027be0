//! The synthetic shop, pure: no I/O, no clock, no task. The simulator plays it to Kafka;
//! tests use it to generate sessions without running the simulator.
//!
//! # Layout
//! - [`geo`]: countries, states and cities with coherent coordinates.
//! - [`catalog`]: categories, products, payment methods and users, derived from a seed.
//! - [`session`]: one session as a pure function of randomness, catalog, user and start
//!   time (the state machine of a visit: browse, cart, purchase, end).
//! - [`ids`]: ids drawn from the caller's randomness.

pub mod catalog;
pub mod geo;
pub mod ids;
pub mod session;
