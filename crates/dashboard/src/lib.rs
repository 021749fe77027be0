//! The dashboard: the shop's analytics and the pipeline's health, live in a browser.
//!
//! - [`overview`]: the figures of a day (or lifetime) and the day before, read from Firestore
//!   through the schema module (`analytics::report`), never from an instance's memory: any
//!   number of analytics instances, and real Firestore, give the same page.
//! - [`pipeline`]: each analytics instance's Prometheus `/metrics`, scraped and parsed.
//! - [`browse`]: the data browser (collections, documents, fields), read-only and paged.
//! - [`live`]: one reader per overview pages watch, reading again as soon as a flush lands.
//! - [`server`]: the axum routes: the page and its embedded assets ([`assets`]), the JSON
//!   endpoints, and the server-sent events that push the figures as they change.

pub mod assets;
pub mod browse;
pub mod live;
pub mod overview;
pub mod pipeline;
pub mod server;
