//! The event envelope and the seven event types. Field names, `event_type` strings and JSON
//! shapes are those of the original system (`parameters` is untagged; the type is named by
//! `event_type`), plus `schema_version` on the envelope and `transaction_id` on purchases.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{
    CountryCode, Currency, DurationSeconds, EntityId, Latitude, Longitude, Money, PlaceName,
    Quantity, Text,
};

/// Display names of catalog entities.
pub type Name = Text<200>;
/// A browser user-agent string.
pub type UserAgent = Text<512>;

/// Most lines one purchase may carry.
pub const MAX_PURCHASE_ITEMS: usize = 100;

/// The seven kinds of event, with their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    SessionStarted,
    CategoryViewed,
    ProductViewed,
    ProductAddedToCart,
    ProductRemovedFromCart,
    Purchase,
    SessionEnded,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        Self::SessionStarted,
        Self::CategoryViewed,
        Self::ProductViewed,
        Self::ProductAddedToCart,
        Self::ProductRemovedFromCart,
        Self::Purchase,
        Self::SessionEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStarted => "session_started",
            Self::CategoryViewed => "category_viewed",
            Self::ProductViewed => "product_viewed",
            Self::ProductAddedToCart => "product_added_to_cart",
            Self::ProductRemovedFromCart => "product_removed_from_cart",
            Self::Purchase => "purchase",
            Self::SessionEnded => "session_ended",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the user is (and, for purchases, where the order ships).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub country: CountryCode,
    pub state: PlaceName,
    pub city: PlaceName,
    pub latitude: Latitude,
    pub longitude: Longitude,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: EntityId,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: EntityId,
    pub name: Name,
    pub category: Category,
    pub price: Money,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub id: EntityId,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseItem {
    pub product: Product,
    pub quantity: Quantity,
    /// `product.price x quantity`, exactly.
    pub subtotal: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSessionParameters {
    pub user_agent: UserAgent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryParameters {
    pub category: Category,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductParameters {
    pub product: Product,
}

/// Parameters of `product_added_to_cart` and `product_removed_from_cart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartParameters {
    pub product: Product,
    pub quantity: Quantity,
}

/// A completed order. Amounts follow the original's meaning: `total_amount` is the sum of
/// the item subtotals, before `discount_amount` and without `shipping_cost`; what the buyer
/// paid is `total_amount - discount_amount + shipping_cost` ([`Self::amount_paid`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseParameters {
    /// Unique per order; stays the same if the event is re-sent.
    pub transaction_id: Uuid,
    pub items: Vec<PurchaseItem>,
    pub total_amount: Money,
    pub discount_amount: Money,
    pub shipping_address: Location,
    pub shipping_cost: Money,
    pub payment_method: PaymentMethod,
    #[serde(with = "rfc3339")]
    pub estimated_delivery_date: DateTime<Utc>,
}

impl PurchaseParameters {
    /// The currency of the order: every item's product carries the same one (validated).
    pub fn currency(&self) -> Currency {
        self.items
            .first()
            .map_or(Currency::USD, |i| i.product.currency)
    }

    pub fn item_count(&self) -> u64 {
        self.items.iter().map(|i| u64::from(i.quantity.get())).sum()
    }

    /// Goods after discount, plus shipping.
    pub fn amount_paid(&self) -> u64 {
        self.total_amount.minor() - self.discount_amount.minor() + self.shipping_cost.minor()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSessionParameters {
    pub seconds_duration: DurationSeconds,
}

/// The type-specific part of an event. Serialized untagged, as the `parameters` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    SessionStarted(StartSessionParameters),
    CategoryViewed(CategoryParameters),
    ProductViewed(ProductParameters),
    ProductAddedToCart(CartParameters),
    ProductRemovedFromCart(CartParameters),
    Purchase(PurchaseParameters),
    SessionEnded(EndSessionParameters),
}

impl Payload {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::SessionStarted(_) => EventType::SessionStarted,
            Self::CategoryViewed(_) => EventType::CategoryViewed,
            Self::ProductViewed(_) => EventType::ProductViewed,
            Self::ProductAddedToCart(_) => EventType::ProductAddedToCart,
            Self::ProductRemovedFromCart(_) => EventType::ProductRemovedFromCart,
            Self::Purchase(_) => EventType::Purchase,
            Self::SessionEnded(_) => EventType::SessionEnded,
        }
    }
}

/// One user action. `session_id` is also the Kafka key, so a session's events share a
/// partition and keep their order.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub location: Location,
    pub payload: Payload,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    /// The Kafka record key: the session id, hyphenated lower-case.
    pub fn key(&self) -> String {
        self.session_id.hyphenated().to_string()
    }
}

/// RFC 3339 timestamps in UTC with a `Z` suffix; fractional seconds only when present.
/// Decoding requires an explicit offset (naive times are rejected) and converts to UTC.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::error::{FieldErrorKind, ValueError};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn parse(s: &str) -> Result<DateTime<Utc>, ValueError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                ValueError::new(
                    FieldErrorKind::Invalid,
                    format!("{s:?} is not an RFC 3339 timestamp with offset: {e}"),
                )
            })
    }
}
