//! The wire contract of the e-commerce event stream, shared by every service.
//!
//! # Layout
//! - [`model`]: the envelope ([`Event`]) and the seven event types with their parameters,
//!   field for field the JSON of the original Python system, plus `schema_version` and a
//!   `transaction_id` on purchases.
//! - [`values`]: validated value types ([`Money`], [`Currency`], [`EntityId`], ...). Each one
//!   refuses out-of-range or unsafe input at decode time, so a decoded event is safe to turn
//!   into Firestore paths and exact sums.
//! - [`codec`]: [`encode`] and the strict [`decode`], which never panics on arbitrary bytes.
//! - [`dlq`]: the headers of the dead-letter topic.
//! - [`error`]: [`DecodeError`], whose variants say what is wrong and carry a stable
//!   [`DecodeError::reason`] code for dead-letter headers and metrics.
//!
//! This crate is serde only: no I/O, no clock, no Kafka.

pub mod codec;
pub mod dlq;
pub mod error;
pub mod model;
pub mod values;

pub use codec::{
    decode, decode_field_by_field, decode_with_limit, encode, MAX_EVENT_BYTES, SCHEMA_VERSION,
};
pub use error::{DecodeError, FieldErrorKind};
pub use model::{
    CartParameters, Category, CategoryParameters, EndSessionParameters, Event, EventType, Location,
    Payload, PaymentMethod, Product, ProductParameters, PurchaseItem, PurchaseParameters,
    StartSessionParameters,
};
pub use values::{CountryCode, Currency, EntityId, Money, PlaceName, Quantity, Text};
