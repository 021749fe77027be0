//! The Firestore schema of `docs/firestore-schema.md`: the one place document paths and
//! field names are spelled. Writers build paths with [`path`] and name fields with
//! [`field`]; readers get typed figures ([`Totals`], [`ProductStats`], [`SessionState`]).
//! A change of physical layout touches this module only; `tests/schema_home.rs` checks that
//! no other source spells a path or a field of it.

pub use firestore::gcloud_sdk::google::firestore::v1::Document;
use serde::Serialize;

use std::collections::BTreeMap;

use crate::client::{int_field, json_of, json_of_fields, str_array, str_field};
use crate::FieldValue;

/// The bucket of every counter that is not per day.
pub const LIFETIME: &str = "lifetime";

/// The bucket of a day: `YYYY-MM-DD`, UTC.
pub fn day_bucket(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    // Written out (twice per event): chrono's `format` interprets its pattern every call.
    match t.year() {
        y @ 0..=9999 => format!("{y:04}-{:02}-{:02}", t.month(), t.day()),
        _ => t.format("%Y-%m-%d").to_string(),
    }
}

/// The hour bucket of an event time (`YYYY-MM-DDTHH`, UTC): `statistics/{hour}` holds the
/// headline counters only (sessions, orders, revenue, the funnel), each country's as the
/// entries of its [`field::BY_COUNTRY`] map; no entity counters, no derived documents.
pub fn hour_bucket(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    format!("{}T{:02}", day_bucket(t), t.hour())
}

/// Whether `bucket` is an hour's (see [`hour_bucket`]).
pub fn is_hour_bucket(bucket: &str) -> bool {
    bucket.len() == 13 && bucket.as_bytes()[10] == b'T'
}

/// Event ids kept in a session's document; further ids go to overflow pages of as many each
/// ([`path::session_ids_page`]), so no document outgrows Firestore's 1 MiB whatever the
/// session's length.
pub const EVENT_IDS_PER_DOC: u64 = 5_000;

/// The overflow page holding the `index`-th distinct event id of a session (from 0), if it is
/// past the ids its document keeps.
pub fn event_id_page(index: u64) -> Option<u64> {
    index
        .checked_sub(EVENT_IDS_PER_DOC)
        .map(|over| over / EVENT_IDS_PER_DOC)
}

/// Overflow pages holding the ids of a session of `event_count` distinct events.
pub fn event_id_pages(event_count: u64) -> u64 {
    event_count
        .saturating_sub(EVENT_IDS_PER_DOC)
        .div_ceil(EVENT_IDS_PER_DOC)
}

/// The entities with statistics of their own, each a top-level collection of named documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Category,
    Product,
    Payment,
}

impl Entity {
    /// Its collection of names (`products/{id}`), and the map of its counters in a
    /// statistics document (`products.{id}.views_count`).
    pub const fn collection(self) -> &'static str {
        match self {
            Entity::Category => "categories",
            Entity::Product => "products",
            Entity::Payment => "payments",
        }
    }
}

/// What a document is, for accounting (metrics of the work per kind of document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DocKind {
    /// A `…/statistics/{b}` counter document.
    Counter,
    /// A `sessions_history/{session}` document.
    Session,
    /// An overflow page of a session's event ids.
    SessionIdsPage,
    /// An entity's names (`products/{id}`, `countries/{cc}`, …).
    Entity,
    /// Anything else (bookkeeping, derived documents).
    Other,
}

impl DocKind {
    pub const ALL: [DocKind; 5] = [
        DocKind::Counter,
        DocKind::Session,
        DocKind::SessionIdsPage,
        DocKind::Entity,
        DocKind::Other,
    ];

    /// The kind of the document at `path`.
    pub fn of(path: &str) -> DocKind {
        let segments: Vec<&str> = path.split('/').collect();
        let parent = |i: usize| segments.len().checked_sub(i).map(|j| segments[j]);
        match (segments.first().copied(), parent(2)) {
            (Some(path::SESSIONS), Some("event_ids")) => DocKind::SessionIdsPage,
            (Some(path::SESSIONS), _) => DocKind::Session,
            (_, Some(path::STATISTICS)) => DocKind::Counter,
            (_, Some(path::SHARDS)) => DocKind::Counter,
            (Some(first), _) if first.starts_with('_') => DocKind::Other,
            (Some(path::METRICS | path::TRENDING | path::INTEREST), _) => DocKind::Other,
            _ => DocKind::Entity,
        }
    }

    /// Its metric label.
    pub fn label(self) -> &'static str {
        match self {
            DocKind::Counter => "counter",
            DocKind::Session => "session",
            DocKind::SessionIdsPage => "session_ids_page",
            DocKind::Entity => "entity",
            DocKind::Other => "other",
        }
    }
}

/// Document paths, relative to the database's documents root.
pub mod path {
    use std::fmt::Display;

    use super::Entity;

    /// Top-level collections that are listed.
    pub const STATISTICS: &str = "statistics";
    pub const SHARDS: &str = "shards";
    pub const COUNTRIES: &str = "countries";
    /// Bookkeeping collections (see the schema's last table).
    pub const JOURNAL: &str = "_journal";
    pub const FLUSHES: &str = "_flushes";
    pub const DERIVED: &str = "_derived";
    const OFFSETS: &str = "_offsets";
    const LEASES: &str = "_leases";
    pub(super) const SESSIONS: &str = "sessions_history";
    pub const METRICS: &str = "metrics";
    pub(super) const TRENDING: &str = "trending";
    pub(super) const INTEREST: &str = "interest";

    /// `statistics/{b}`: the shop's totals, and its categories', products' and payment
    /// methods' counters as maps keyed by id (see [`super::field::nested`]).
    pub fn statistics(bucket: &str) -> String {
        format!("{STATISTICS}/{bucket}")
    }

    /// `countries/{cc}`.
    pub fn country(cc: &str) -> String {
        format!("{COUNTRIES}/{cc}")
    }

    /// `countries/{cc}/statistics/{b}`: the same for the users of one country, and the
    /// deliveries to its states (`shipping.{state}.…`).
    pub fn country_statistics(cc: &str, bucket: &str) -> String {
        format!("{COUNTRIES}/{cc}/{STATISTICS}/{bucket}")
    }

    /// `products/{id}`, `categories/{id}`, `payments/{id}`: the entity's names.
    pub fn entity(kind: Entity, id: &str) -> String {
        format!("{}/{id}", kind.collection())
    }

    /// `countries/{cc}/states/{state}`.
    pub fn state(cc: &str, state: &str) -> String {
        format!("{COUNTRIES}/{cc}/states/{state}")
    }

    /// `sessions_history/{session}`.
    pub fn session(session: impl Display) -> String {
        format!("{SESSIONS}/{session}")
    }

    /// `sessions_history/{session}/event_ids/{page}`: an overflow page of its event ids.
    pub fn session_ids_page(session: impl Display, page: u64) -> String {
        format!("{SESSIONS}/{session}/event_ids/{page}")
    }

    /// `metrics/{b}`, `trending/{b}`, `interest/{b}`: the derived documents.
    pub fn metrics(bucket: &str) -> String {
        format!("{METRICS}/{bucket}")
    }

    pub fn trending(bucket: &str) -> String {
        format!("{TRENDING}/{bucket}")
    }

    pub fn interest(bucket: &str) -> String {
        format!("{INTEREST}/{bucket}")
    }

    /// `_offsets/{group}~{topic}~{partition}`: where consumption of a partition resumes.
    pub fn offsets(group: &str, topic: &str, partition: i32) -> String {
        format!("{OFFSETS}/{group}~{topic}~{partition}")
    }

    /// `_leases/{group}~{topic}~{partition}`: written by each new owner of the partition;
    /// its checkpoints of session documents are valid only while its lease is the last one.
    pub fn lease(group: &str, topic: &str, partition: i32) -> String {
        format!("{LEASES}/{group}~{topic}~{partition}")
    }

    /// `_journal/{flush}-{i}`: one chunk of a flush's deltas.
    pub fn journal_chunk(flush: impl Display, index: usize) -> String {
        format!("{JOURNAL}/{flush}-{index}")
    }

    /// `_flushes/{flush}`: a flush's manifest.
    pub fn flush_manifest(flush: impl Display) -> String {
        format!("{FLUSHES}/{flush}")
    }

    /// `_derived/{b}~{writer}`: the last flush of `writer` that changed the bucket (one
    /// marker per writer, so no marker is written by several instances).
    pub fn derived_marker(bucket: &str, writer: i32) -> String {
        format!("{DERIVED}/{bucket}~{writer}")
    }

    /// The bucket a derived marker (its id or path) is about.
    pub fn bucket_of_marker(marker: &str) -> &str {
        let id = id_of(marker);
        id.split_once('~').map_or(id, |(b, _)| b)
    }

    /// The writer of a derived marker (its id or path): the key of its entry in the
    /// bucket's `metrics/{b}.covered`.
    pub fn writer_of_marker(marker: &str) -> &str {
        id_of(marker).split_once('~').map_or("", |(_, w)| w)
    }

    /// `{statistics document}/shards`: the documents whose counters sum to it.
    pub fn shards(statistics: &str) -> String {
        format!("{statistics}/{SHARDS}")
    }

    /// `{statistics document}/shards/{writer}-{group}`: the counters of group `group` (see
    /// [`super::counter_group`]) written by the owner of partition `writer`.
    pub fn counter_shard(statistics: &str, writer: i32, group: u32) -> String {
        format!("{statistics}/{SHARDS}/{writer}-{group}")
    }

    /// The writer of a [`counter_shard`] path; `None` for any other document.
    pub fn writer_of_shard(shard: &str) -> Option<i32> {
        let (parent, id) = shard.rsplit_once('/')?;
        let (_, collection) = parent.rsplit_once('/')?;
        (collection == SHARDS).then_some(())?;
        id.split_once('-')?.0.parse().ok()
    }

    /// The bucket (`lifetime` or a day) of a statistics document or of one of its shards,
    /// whose derived documents depend on it; `None` for any other document, and for an
    /// hour's (which has no derived documents).
    pub fn bucket_of(path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        let n = segments.len();
        let bucket = match segments.as_slice() {
            [.., STATISTICS, b] => Some(*b),
            [.., STATISTICS, _, SHARDS, _] if n >= 4 => Some(segments[n - 3]),
            _ => None,
        };
        bucket.filter(|b| !super::is_hour_bucket(b))
    }

    /// The last segment of a path or document name: the document's id.
    pub fn id_of(path: &str) -> &str {
        path.rsplit('/').next().unwrap_or_default()
    }
}

/// Field names, grouped by the documents that hold them.
pub mod field {
    /// The map of a country statistics document that holds its states' deliveries.
    pub const SHIPPING: &str = "shipping";
    /// The map of an hour's `statistics/{hour}` that holds each country's headline counters
    /// (`` countries.`DE`.purchase_count ``; see [`super::in_country`]).
    pub const BY_COUNTRY: &str = "countries";

    /// The field path of `field` in the entry `key` of the map `map`:
    /// `` products.`{id}`.views_count ``. The key is quoted: ids and state names are not
    /// plain identifiers.
    pub fn nested(map: &str, key: &str, field: &str) -> String {
        // Spelled out: several per event.
        let mut path = String::with_capacity(map.len() + key.len() + field.len() + 4);
        path.push_str(map);
        path.push_str(".`");
        for c in key.chars() {
            if matches!(c, '\\' | '`') {
                path.push('\\');
            }
            path.push(c);
        }
        path.push_str("`.");
        path.push_str(field);
        path
    }

    // statistics/{b}, countries/{cc}/statistics/{b}
    pub const STARTED_SESSIONS: &str = "started_sessions_count";
    pub const ENDED_SESSIONS: &str = "ended_sessions_count";
    pub const SESSIONS_DURATION_SECONDS: &str = "total_sessions_duration_seconds";
    pub const PURCHASES: &str = "purchase_count";
    /// Gross: Σ item subtotals (also of entities).
    pub const AMOUNT_CENTS: &str = "total_amount_cents";
    pub const DISCOUNT_CENTS: &str = "total_discount_cents";
    pub const SHIPPING_CENTS: &str = "total_shipping_cents";
    pub const NET_REVENUE_CENTS: &str = "net_revenue_cents";
    pub const PAID_CENTS: &str = "total_paid_cents";
    pub const ITEMS_PURCHASED: &str = "total_items_purchased";
    // The session funnel, counted by sessions (each at the event that first reaches a step):
    // sessions that viewed a product, added to the cart, purchased; carts abandoned (ended
    // with items in the cart and no purchase); and the time from a session's start to its
    // first purchase (sum and count: an average is derived).
    pub const VIEWED_SESSIONS: &str = "sessions_with_product_view_count";
    pub const CARTED_SESSIONS: &str = "sessions_with_cart_count";
    pub const PURCHASED_SESSIONS: &str = "sessions_with_purchase_count";
    pub const ABANDONED_CARTS: &str = "abandoned_carts_count";
    pub const FIRST_PURCHASE_SECONDS: &str = "first_purchase_seconds_total";
    pub const FIRST_PURCHASES_TIMED: &str = "first_purchase_timed_count";

    // {categories,products}/{id}/statistics/{b} (and per country)
    pub const VIEWS: &str = "views_count";
    pub const PRODUCT_RELATED_VIEWS: &str = "product_related_view_count";
    pub const ADDED_QUANTITY: &str = "added_to_cart_quantity";
    pub const ADDED_COUNT: &str = "added_to_cart_count";
    pub const REMOVED_QUANTITY: &str = "removed_from_cart_quantity";
    pub const REMOVED_COUNT: &str = "removed_from_cart_count";
    pub const ORDERS: &str = "orders_count";

    // payments/{id}/statistics/{b}
    pub const USAGE: &str = "usage_count";

    // countries/{cc}/states/{state}/shipping/{b}
    pub const SHIPPING_COUNT: &str = "shipping_count";
    pub const ITEMS_DELIVERED: &str = "total_items_delivered";
    pub const SHIPPING_COST_CENTS: &str = "total_shipping_cost_cents";
    pub const DELIVERY_HOURS_WAITING: &str = "estimated_delivery_hours_waiting";

    // Entities: products/{id}, categories/{id}, payments/{id}, countries/{cc}, states.
    pub const NAME: &str = "name";
    pub const CODE: &str = "code";
    pub const CATEGORY_ID: &str = "category_id";
    pub const CATEGORY_NAME: &str = "category_name";
    pub const PRICE_CENTS: &str = "price_cents";
    pub const CURRENCY: &str = "currency";
    /// The fields of the entity documents, for listings.
    pub const ENTITY: &[&str] = &[NAME, CODE, CATEGORY_ID, CATEGORY_NAME];

    // sessions_history/{session}
    pub const START_TIME: &str = "start_time";
    pub const USER_ID: &str = "user_id";
    pub const LOCATION: &str = "location";
    pub const AGENT: &str = "agent";
    pub const END_TIME: &str = "end_time";
    pub const SESSION_DURATION_SECONDS: &str = "session_duration_seconds";
    pub const EVENT_COUNT: &str = "event_count";
    pub const EVENT_IDS: &str = "event_ids";
    pub const HISTORY_BYTES: &str = "history_bytes";
    pub const HISTORY_TRUNCATED_EVENTS: &str = "history_truncated_events";
    /// The funnel steps the session reached (bits: 1 viewed a product, 2 added to the
    /// cart, 4 purchased) and the units in its cart.
    pub const FUNNEL_STEPS: &str = "funnel_steps";
    pub const CART_UNITS: &str = "cart_units";
    /// The ids of an overflow page, `sessions_history/{session}/event_ids/{page}`.
    pub const PAGE_IDS: &str = "ids";
    /// The session's detail arrays and their elements' keys.
    pub const CATEGORIES_VIEWED: &str = "categories_viewed";
    pub const PRODUCTS_VIEWED: &str = "products_viewed";
    pub const ADDED_TO_CART: &str = "added_to_cart";
    pub const REMOVED_FROM_CART: &str = "removed_from_cart";
    pub const PURCHASE: &str = "purchase";
    pub const CATEGORY: &str = "category";
    pub const PRODUCT: &str = "product";
    pub const QUANTITY: &str = "quantity";
    pub const EVENT_ID: &str = "event_id";
    pub const TIMESTAMP: &str = "timestamp";
    pub const TRANSACTION_ID: &str = "transaction_id";
    pub const ITEMS: &str = "items";
    pub const SUBTOTAL_CENTS: &str = "subtotal_cents";
    pub const DISCOUNT_AMOUNT_CENTS: &str = "discount_amount_cents";
    pub const SHIPPING_COST_AMOUNT_CENTS: &str = "shipping_cost_cents";
    pub const PAYMENT_METHOD: &str = "payment_method";
    pub const SHIPPING_ADDRESS: &str = "shipping_address";
    pub const ESTIMATED_DELIVERY_DATE: &str = "estimated_delivery_date";
    /// A location's keys.
    pub const COUNTRY: &str = "country";
    pub const STATE: &str = "state";
    pub const CITY: &str = "city";
    pub const LATITUDE: &str = "latitude";
    pub const LONGITUDE: &str = "longitude";

    // metrics/{b}
    pub const SESSIONS_STARTED: &str = "sessions_started";
    pub const SESSIONS_ENDED: &str = "sessions_ended";
    pub const ACTIVE_SESSIONS: &str = "active_sessions";
    pub const AVERAGE_SESSION_DURATION_SECONDS: &str = "average_session_duration_seconds";
    /// Orders (in `metrics/` and in rankings).
    pub const ORDERS_FIGURE: &str = "orders";
    pub const CONVERSION_RATE: &str = "conversion_rate";
    pub const GROSS_REVENUE_CENTS: &str = "gross_revenue_cents";
    pub const DISCOUNTS_CENTS: &str = "discounts_cents";
    pub const METRIC_SHIPPING_CENTS: &str = "shipping_cents";
    pub const METRIC_PAID_CENTS: &str = "paid_cents";
    pub const AVERAGE_ORDER_VALUE_CENTS: &str = "average_order_value_cents";
    pub const MOST_USED_PAYMENT_METHOD: &str = "most_used_payment_method";
    pub const UPDATED_AT: &str = "updated_at";

    // trending/{b}, interest/{b}: ranked products and categories.
    pub const PRODUCTS: &str = "products";
    pub const CATEGORIES: &str = "categories";
    pub const WEIGHTS: &str = "weights";
    pub const ID: &str = "id";
    pub const UNITS: &str = "units";
    pub const RANK_VIEWS: &str = "views";
    pub const CONVERSION: &str = "conversion";
    pub const REVENUE_CENTS: &str = "revenue_cents";
    pub const INTEREST_SCORE: &str = "interest_score";
    pub const WEIGHT_VIEW: &str = "view";
    pub const WEIGHT_ADD: &str = "add";
    pub const WEIGHT_REMOVE: &str = "remove";
    pub const WEIGHT_PURCHASE: &str = "purchase";

    // Bookkeeping: _offsets, _leases, _journal, _flushes, _derived.
    pub const NEXT_OFFSET: &str = "next_offset";
    /// Every event of the partition below it is in its session's `sessions_history`
    /// document (≤ `next_offset`: session documents are checkpointed less often).
    pub const SESSIONS_NEXT_OFFSET: &str = "sessions_next_offset";
    pub const GROUP: &str = "group";
    pub const TOPIC: &str = "topic";
    pub const PARTITION: &str = "partition";
    pub const DELTAS: &str = "deltas";
    pub const FLUSH: &str = "flush";
    pub const CHUNKS: &str = "chunks";
    pub const CREATED_AT: &str = "created_at";
    pub const MARKED_AT: &str = "marked_at";
    /// `metrics/{b}.covered`: writer → the flush of its `_derived` marker the derived
    /// documents include.
    pub const COVERED: &str = "covered";
    /// The instance holding a partition's lease.
    pub const OWNER: &str = "owner";
}

fn int(doc: Option<&Document>, f: &str) -> i64 {
    doc.and_then(|d| int_field(d, f)).unwrap_or(0)
}

/// The entry `key` of the map field `map` (`products.{id}` in a statistics document).
fn entry<'a>(
    doc: Option<&'a Document>,
    map: &str,
    key: &str,
) -> Option<
    &'a std::collections::HashMap<String, firestore::gcloud_sdk::google::firestore::v1::Value>,
> {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    let map_of = |v: &'a firestore::gcloud_sdk::google::firestore::v1::Value| match &v.value_type {
        Some(ValueType::MapValue(m)) => Some(&m.fields),
        _ => None,
    };
    map_of(doc?.fields.get(map)?)?.get(key).and_then(map_of)
}

/// The integer `field` of the entry `key` of the map `map`; 0 where missing.
fn nested_int(doc: Option<&Document>, map: &str, key: &str, f: &str) -> i64 {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    match entry(doc, map, key)
        .and_then(|e| e.get(f))
        .and_then(|v| v.value_type.as_ref())
    {
        Some(ValueType::IntegerValue(n)) => *n,
        _ => 0,
    }
}

/// The counters of country `cc` in an hour's statistics document (the entries of its
/// [`field::BY_COUNTRY`] map) as a document of their own, for [`Totals::read`] and
/// [`Funnel::read`]; `None` where the country has none.
pub fn in_country(doc: Option<&Document>, cc: &str) -> Option<Document> {
    entry(doc, field::BY_COUNTRY, cc).map(|fields| Document {
        name: String::new(),
        fields: fields.clone(),
        create_time: None,
        update_time: None,
    })
}

/// The integer entry `key` of the map field `map` (`weights.view` of `interest/{b}`).
pub fn map_int(doc: Option<&Document>, map: &str, key: &str) -> Option<i64> {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    match doc?.fields.get(map)?.value_type.as_ref()? {
        ValueType::MapValue(m) => match m.fields.get(key)?.value_type.as_ref()? {
            ValueType::IntegerValue(n) => Some(*n),
            _ => None,
        },
        _ => None,
    }
}

/// The keys of the map field `map` (the ids with counters in a statistics document).
pub fn keys(doc: Option<&Document>, map: &str) -> Vec<String> {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    match doc
        .and_then(|d| d.fields.get(map))
        .and_then(|v| v.value_type.as_ref())
    {
        Some(ValueType::MapValue(m)) => {
            let mut k: Vec<String> = m.fields.keys().cloned().collect();
            k.sort();
            k
        }
        _ => Vec::new(),
    }
}

/// Groups a statistics document's counters are spread over in its shards: each shard
/// document then takes at most about a quarter of them per flush, within Firestore's 500
/// field transforms per document and commit for catalogs of a few hundred products.
pub const COUNTER_GROUPS: u32 = 4;

/// A statistics document's delta with at most this many counters goes to one shard (group
/// 0) instead of being spread over [`COUNTER_GROUPS`]: most documents of a flush (a country's
/// buckets) change a few tens of counters, and one write instead of up to four keeps a live
/// flush within one commit. Readers sum every shard, so a counter may be in group 0 after
/// one flush and in its own group after another (at most two shards of a writer hold it).
pub const SPREAD_ABOVE: usize = 250;

/// The group of a counter field path: 0 for the totals; map entries by their key (stable
/// FNV-1a hash), so an entity's counters stay together.
pub fn counter_group(field_path: &str) -> u32 {
    let Some((_, rest)) = field_path.split_once('`') else {
        return 0;
    };
    let key = rest.split('`').next().unwrap_or_default();
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1 + (hash % u64::from(COUNTER_GROUPS - 1)) as u32
}

/// Spread the counter documents of `deltas` over the shards of `writer` (the owner of that
/// partition, so no shard has two writers): `statistics/{b}` becomes
/// `statistics/{b}/shards/{writer}-{group}`. Readers sum the shards ([`read_counters`]).
/// Every other document is left as it is.
pub fn shard_counters(
    deltas: impl IntoIterator<Item = (String, crate::DocDelta)>,
    writer: i32,
) -> std::collections::BTreeMap<String, crate::DocDelta> {
    let mut out: std::collections::BTreeMap<String, crate::DocDelta> = Default::default();
    for (doc, delta) in deltas {
        if DocKind::of(&doc) != DocKind::Counter || doc.contains(&format!("/{}/", path::SHARDS)) {
            out.entry(doc).or_default().merge(delta);
            continue;
        }
        let crate::DocDelta {
            increments,
            sets,
            unions,
            whole: _,
        } = delta;
        if !sets.is_empty() || !unions.is_empty() {
            let first = out.entry(path::counter_shard(&doc, writer, 0)).or_default();
            first.merge(crate::DocDelta {
                sets,
                unions,
                ..Default::default()
            });
        }
        let spread = increments.len() > SPREAD_ABOVE;
        for (field, by) in increments {
            let group = if spread { counter_group(&field) } else { 0 };
            let shard = path::counter_shard(&doc, writer, group);
            *out.entry(shard)
                .or_default()
                .increments
                .entry(field)
                .or_default() += by;
        }
    }
    out
}

/// A statistics document as its readers see it: the sum of its shards' counters (maps
/// summed entry by entry); `None` without any shard.
pub async fn read_counters(
    store: &crate::Store,
    statistics: &str,
) -> Result<Option<Document>, crate::StoreError> {
    let shards = store.list_whole(&path::shards(statistics)).await?;
    if shards.is_empty() {
        return Ok(None);
    }
    let mut fields = std::collections::HashMap::new();
    for shard in shards {
        add_counters(&mut fields, shard.fields);
    }
    Ok(Some(Document {
        name: statistics.to_owned(),
        fields,
        create_time: None,
        update_time: None,
    }))
}

type Fields =
    std::collections::HashMap<String, firestore::gcloud_sdk::google::firestore::v1::Value>;

/// A counter shard's fields as the field paths its increments name (`name`, or
/// ``map.`key`.name`` for an entry of a map, see [`field::nested`]) with their values;
/// `None` if it holds anything but counters (it is then only ever incremented).
pub fn counters_of(fields: &Fields) -> Option<std::collections::BTreeMap<String, i64>> {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in fields {
        match value.value_type.as_ref()? {
            ValueType::IntegerValue(n) => {
                out.insert(name.clone(), *n);
            }
            ValueType::MapValue(entries) => {
                for (key, entry) in &entries.fields {
                    let ValueType::MapValue(counters) = entry.value_type.as_ref()? else {
                        return None;
                    };
                    for (counter, n) in &counters.fields {
                        let ValueType::IntegerValue(n) = n.value_type.as_ref()? else {
                            return None;
                        };
                        out.insert(field::nested(name, key, counter), *n);
                    }
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The inverse of [`counters_of`]: the top-level fields of a shard holding `counters`, for
/// a whole-document write; `None` if a field path is of neither form.
pub fn counter_fields(counters: &BTreeMap<String, i64>) -> Option<BTreeMap<String, FieldValue>> {
    let mut out: BTreeMap<String, FieldValue> = BTreeMap::new();
    for (path, n) in counters {
        if !path.contains(['.', '`']) {
            out.insert(path.clone(), FieldValue::Int(*n));
            continue;
        }
        let (map, key, counter) = split_nested(path)?;
        let FieldValue::Map(entries) = out
            .entry(map.to_owned())
            .or_insert_with(|| FieldValue::Map(BTreeMap::new()))
        else {
            return None;
        };
        let FieldValue::Map(entry) = entries
            .entry(key)
            .or_insert_with(|| FieldValue::Map(BTreeMap::new()))
        else {
            return None;
        };
        entry.insert(counter.to_owned(), FieldValue::Int(*n));
    }
    Some(out)
}

/// ``map.`key`.field`` (as [`field::nested`] spells it) as `(map, key, field)`.
fn split_nested(path: &str) -> Option<(&str, String, &str)> {
    let (map, rest) = path.split_once(".`")?;
    let mut key = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => key.push(chars.next()?.1),
            '`' => {
                let field = rest[i + 1..].strip_prefix('.')?;
                let plain = |s: &str| !s.is_empty() && !s.contains(['.', '`']);
                return (plain(map) && plain(field)).then_some((map, key, field));
            }
            c => key.push(c),
        }
    }
    None
}

/// Add the integer counters of `from` into `into`, maps entry by entry.
fn add_counters(into: &mut Fields, from: Fields) {
    use firestore::gcloud_sdk::google::firestore::v1::{value::ValueType, MapValue};
    for (k, v) in from {
        match (
            into.get_mut(&k).and_then(|e| e.value_type.as_mut()),
            v.value_type,
        ) {
            (Some(ValueType::IntegerValue(a)), Some(ValueType::IntegerValue(b))) => *a += b,
            (Some(ValueType::MapValue(a)), Some(ValueType::MapValue(b))) => {
                add_counters(&mut a.fields, b.fields)
            }
            (None, Some(ValueType::MapValue(b))) => {
                let mut m = Fields::new();
                add_counters(&mut m, b.fields);
                into.insert(
                    k,
                    firestore::gcloud_sdk::google::firestore::v1::Value {
                        value_type: Some(ValueType::MapValue(MapValue { fields: m })),
                    },
                );
            }
            (None, other) => {
                into.insert(
                    k,
                    firestore::gcloud_sdk::google::firestore::v1::Value { value_type: other },
                );
            }
            _ => {}
        }
    }
}

/// The totals of a `statistics/{b}` (or country) document, money in cents; zeros where it or
/// a field is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub sessions_started: i64,
    pub sessions_ended: i64,
    pub sessions_duration_seconds: i64,
    pub orders: i64,
    pub gross_cents: i64,
    pub discounts_cents: i64,
    pub net_revenue_cents: i64,
    pub shipping_cents: i64,
    pub paid_cents: i64,
}

/// The session funnel of a `statistics/{b}` document (zeros where missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Funnel {
    pub sessions_viewed_product: i64,
    pub sessions_added_to_cart: i64,
    pub sessions_purchased: i64,
    pub abandoned_carts: i64,
    pub first_purchase_seconds_total: i64,
    pub first_purchases_timed: i64,
}

impl Funnel {
    pub fn read(doc: Option<&Document>) -> Funnel {
        Funnel {
            sessions_viewed_product: int(doc, field::VIEWED_SESSIONS),
            sessions_added_to_cart: int(doc, field::CARTED_SESSIONS),
            sessions_purchased: int(doc, field::PURCHASED_SESSIONS),
            abandoned_carts: int(doc, field::ABANDONED_CARTS),
            first_purchase_seconds_total: int(doc, field::FIRST_PURCHASE_SECONDS),
            first_purchases_timed: int(doc, field::FIRST_PURCHASES_TIMED),
        }
    }
}

impl Totals {
    pub fn read(doc: Option<&Document>) -> Totals {
        Totals {
            sessions_started: int(doc, field::STARTED_SESSIONS),
            sessions_ended: int(doc, field::ENDED_SESSIONS),
            sessions_duration_seconds: int(doc, field::SESSIONS_DURATION_SECONDS),
            orders: int(doc, field::PURCHASES),
            gross_cents: int(doc, field::AMOUNT_CENTS),
            discounts_cents: int(doc, field::DISCOUNT_CENTS),
            net_revenue_cents: int(doc, field::NET_REVENUE_CENTS),
            shipping_cents: int(doc, field::SHIPPING_CENTS),
            paid_cents: int(doc, field::PAID_CENTS),
        }
    }
}

/// The counters of product `id` in a `statistics/{b}` document (zeros where missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductStats {
    pub views: i64,
    pub adds: i64,
    pub added_units: i64,
    pub removes: i64,
    /// Units purchased.
    pub units: i64,
    pub orders: i64,
    pub revenue_cents: i64,
}

impl ProductStats {
    pub fn read(stats: Option<&Document>, id: &str) -> ProductStats {
        let n = |f| nested_int(stats, Entity::Product.collection(), id, f);
        ProductStats {
            views: n(field::VIEWS),
            adds: n(field::ADDED_COUNT),
            added_units: n(field::ADDED_QUANTITY),
            removes: n(field::REMOVED_COUNT),
            units: n(field::ITEMS_PURCHASED),
            orders: n(field::ORDERS),
            revenue_cents: n(field::AMOUNT_CENTS),
        }
    }
}

/// How often payment method `id` was used, from a `statistics/{b}` document.
pub fn payment_uses(stats: Option<&Document>, id: &str) -> i64 {
    nested_int(stats, Entity::Payment.collection(), id, field::USAGE)
}

/// The names of an entity document (`products/{id}`, `payments/{id}`, ...), as listed with
/// the [`field::ENTITY`] mask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityNames {
    pub name: Option<String>,
    pub category_id: Option<String>,
    pub category_name: Option<String>,
}

impl EntityNames {
    pub fn read(doc: &Document) -> EntityNames {
        let s = |f| str_field(doc, f).map(str::to_owned);
        EntityNames {
            name: s(field::NAME),
            category_id: s(field::CATEGORY_ID),
            category_name: s(field::CATEGORY_NAME),
        }
    }
}

/// What deduplication needs of a session's document: read with the [`SessionState::MASK`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    /// Distinct events counted.
    pub event_count: u64,
    /// The ids its document keeps (the first [`EVENT_IDS_PER_DOC`]).
    pub event_ids: Vec<String>,
    /// Whether its start was counted.
    pub started: bool,
    /// Journal bytes of its detail arrays.
    pub history_bytes: u64,
    /// Events left out of its detail arrays.
    pub truncated_events: u64,
    /// When it started (its `session_started`'s time, ms since the epoch), if counted.
    pub start_ms: Option<i64>,
    /// The funnel steps it reached ([`field::FUNNEL_STEPS`]) and the units in its cart.
    pub funnel_steps: i64,
    pub cart_units: i64,
}

impl SessionState {
    pub const MASK: &'static [&'static str] = &[
        field::EVENT_IDS,
        field::EVENT_COUNT,
        field::START_TIME,
        field::HISTORY_BYTES,
        field::HISTORY_TRUNCATED_EVENTS,
        field::FUNNEL_STEPS,
        field::CART_UNITS,
    ];

    pub fn read(doc: &Document) -> SessionState {
        let non_negative = |f| u64::try_from(int_field(doc, f).unwrap_or(0)).unwrap_or(0);
        let start = doc.fields.get(field::START_TIME);
        SessionState {
            event_count: non_negative(field::EVENT_COUNT),
            event_ids: str_array(doc, field::EVENT_IDS),
            started: start.is_some(),
            history_bytes: non_negative(field::HISTORY_BYTES),
            truncated_events: non_negative(field::HISTORY_TRUNCATED_EVENTS),
            start_ms: start.and_then(|v| match &v.value_type {
                Some(
                    firestore::gcloud_sdk::google::firestore::v1::value::ValueType::TimestampValue(
                        t,
                    ),
                ) => Some(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000),
                _ => None,
            }),
            funnel_steps: int_field(doc, field::FUNNEL_STEPS).unwrap_or(0),
            cart_units: int_field(doc, field::CART_UNITS).unwrap_or(0),
        }
    }
}

/// A session's detail arrays, in the order the schema lists them.
pub const DETAIL_ARRAYS: [&str; 5] = [
    field::CATEGORIES_VIEWED,
    field::PRODUCTS_VIEWED,
    field::ADDED_TO_CART,
    field::REMOVED_FROM_CART,
    field::PURCHASE,
];

/// A session's detail element as its document stores it: the original system's map
/// (`{product, event_id, timestamp}`, a purchase with its items, ...) as compact JSON text,
/// keys sorted, timestamps RFC 3339 (as [`crate::client::json_of`] gives them). The Firestore
/// emulator charges per value: a text costs it about what one value of the map did, and a
/// session's document about half (`make probe-emulator`). An array union still adds an
/// element once: the same event always gives the same text, and each carries its event id.
///
/// Built entry by entry from borrowed values, and written once ([`Element::text`]).
#[derive(Default)]
pub struct Element<'a>(Vec<(&'static str, Val<'a>)>);

/// A value of an [`Element`].
pub enum Val<'a> {
    Str(&'a str),
    /// Written as its `Display` form (an id).
    Shown(&'a (dyn std::fmt::Display + Sync)),
    Int(i64),
    Double(f64),
    Time(chrono::DateTime<chrono::Utc>),
    Map(Element<'a>),
    List(Vec<Element<'a>>),
}

impl<'a> Element<'a> {
    /// With `key` set to `value`; entries stay sorted by key.
    pub fn with(mut self, key: &'static str, value: Val<'a>) -> Self {
        let at = self.0.partition_point(|(k, _)| *k < key);
        if self.0.get(at).is_some_and(|(k, _)| *k == key) {
            self.0[at].1 = value;
        } else {
            self.0.insert(at, (key, value));
        }
        self
    }

    /// Its text, as the session's document stores it.
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl std::fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Element<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl std::fmt::Debug for Val<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).unwrap_or_default())
    }
}

impl Serialize for Val<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Str(v) => s.serialize_str(v),
            Val::Shown(v) => s.collect_str(v),
            Val::Int(i) => s.serialize_i64(*i),
            Val::Double(d) => s.serialize_f64(*d),
            Val::Time(t) => s.serialize_str(&t.to_rfc3339()),
            Val::Map(m) => m.serialize(s),
            Val::List(l) => s.collect_seq(l),
        }
    }
}

/// A session's detail arrays as readers see them, each element the original system's map as
/// JSON: decoded from this layout's texts ([`Element`]), or converted from the maps of
/// documents written before it. An absent array is empty.
pub fn session_details(doc: &Document) -> BTreeMap<&'static str, Vec<serde_json::Value>> {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    DETAIL_ARRAYS
        .into_iter()
        .map(|array| {
            let elements = match doc.fields.get(array).and_then(|v| v.value_type.as_ref()) {
                Some(ValueType::ArrayValue(a)) => a
                    .values
                    .iter()
                    .map(|v| match &v.value_type {
                        Some(ValueType::StringValue(text)) => serde_json::from_str(text)
                            .unwrap_or_else(|_| serde_json::Value::from(text.as_str())),
                        _ => json_of(v),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (array, elements)
        })
        .collect()
}

/// A document's fields as JSON for people (the dashboard's data browser): a session's detail
/// elements as the original system's maps ([`session_details`]).
pub fn readable_fields(path: &str, doc: &Document) -> serde_json::Value {
    let mut fields = json_of_fields(&doc.fields);
    if DocKind::of(path) == DocKind::Session {
        if let serde_json::Value::Object(o) = &mut fields {
            for (array, elements) in session_details(doc) {
                if o.contains_key(array) {
                    o.insert(array.to_owned(), serde_json::Value::Array(elements));
                }
            }
        }
    }
    fields
}

/// The event ids of an overflow page, read with the [`PAGE_MASK`].
pub fn page_ids(doc: &Document) -> Vec<String> {
    str_array(doc, field::PAGE_IDS)
}

pub const PAGE_MASK: &[&str] = &[field::PAGE_IDS];

#[cfg(test)]
mod tests {
    #[test]
    fn a_detail_element_is_stored_as_text_and_read_as_the_original_map() {
        use firestore::gcloud_sdk::google::firestore::v1::{value::ValueType, ArrayValue, Value};

        use super::{Element, Val};
        use crate::client::value;
        use crate::FieldValue;

        let t = chrono::DateTime::from_timestamp(1_790_000_000, 123_000_000).expect("time");
        let id = 7_u128;
        // Entries in any order; an entry set twice keeps its last value.
        let element = || {
            Element::default()
                .with("timestamp", Val::Time(t))
                .with("quantity", Val::Int(1))
                .with("product", Val::Str("p-1 \"Ünïcode\""))
                .with("quantity", Val::Int(3))
                .with("latitude", Val::Double(48.8566))
                .with(
                    "items",
                    Val::List(vec![Element::default()
                        .with("subtotal_cents", Val::Int(-5))
                        .with("id", Val::Shown(&id))]),
                )
        };
        let text = element().text();
        assert_eq!(text, element().text(), "deterministic");
        let want = serde_json::json!({
            "items": [{"id": "7", "subtotal_cents": -5}],
            "latitude": 48.8566,
            "product": "p-1 \"Ünïcode\"",
            "quantity": 3,
            "timestamp": "2026-09-21T14:13:20.123+00:00",
        });
        // Canonical: what serde_json writes of the same object (its maps sort their keys).
        assert_eq!(text, want.to_string());
        // The map itself, as documents written before this layout hold it.
        let map = FieldValue::map([
            (
                "items",
                FieldValue::Array(vec![FieldValue::map([
                    ("id", FieldValue::from("7")),
                    ("subtotal_cents", FieldValue::Int(-5)),
                ])]),
            ),
            ("latitude", FieldValue::Double(48.8566)),
            ("product", FieldValue::from("p-1 \"Ünïcode\"")),
            ("quantity", FieldValue::Int(3)),
            ("timestamp", FieldValue::Time(t)),
        ]);
        let doc = |v: Value| super::Document {
            fields: [(
                super::field::PRODUCTS_VIEWED.to_owned(),
                Value {
                    value_type: Some(ValueType::ArrayValue(ArrayValue { values: vec![v] })),
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        // Readers get the same from either.
        for stored in [value(&FieldValue::Str(text.clone())), value(&map)] {
            let read = super::session_details(&doc(stored));
            assert_eq!(read[super::field::PRODUCTS_VIEWED], vec![want.clone()]);
            assert!(read[super::field::PURCHASE].is_empty());
        }
        let shown =
            super::readable_fields("sessions_history/s", &doc(value(&FieldValue::Str(text))));
        assert_eq!(
            shown[super::field::PRODUCTS_VIEWED],
            serde_json::json!([want])
        );
    }

    #[test]
    fn buckets_are_spelled_as_chrono_formats_them() {
        use chrono::TimeZone;
        for t in [
            chrono::Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("a time"),
            chrono::Utc
                .with_ymd_and_hms(999, 12, 31, 23, 59, 59)
                .single()
                .expect("a time"),
            chrono::Utc
                .with_ymd_and_hms(12026, 7, 8, 9, 0, 0)
                .single()
                .expect("a time"),
            chrono::DateTime::UNIX_EPOCH,
        ] {
            assert_eq!(super::day_bucket(t), t.format("%Y-%m-%d").to_string());
            assert_eq!(super::hour_bucket(t), t.format("%Y-%m-%dT%H").to_string());
        }
    }

    #[test]
    fn a_shards_counters_go_to_whole_fields_and_back() {
        use firestore::gcloud_sdk::google::firestore::v1 as pb;
        let counters: std::collections::BTreeMap<String, i64> = [
            (field::PURCHASES.to_owned(), 3),
            (field::nested("products", "p-1", field::VIEWS), 7),
            (field::nested("products", "p-1", field::ORDERS), 1),
            (field::nested("shipping", "a`b\\c.d", "n"), -2),
        ]
        .into();
        let fields = super::counter_fields(&counters).expect("counters only");
        assert_eq!(fields.len(), 3, "{fields:?}");
        let pb_fields = fields
            .iter()
            .map(|(k, v)| (k.clone(), crate::client::value(v)))
            .collect::<std::collections::HashMap<String, pb::Value>>();
        assert_eq!(super::counters_of(&pb_fields), Some(counters));
        let mut named = pb_fields;
        named.insert(
            "name".into(),
            crate::client::value(&crate::FieldValue::from("x")),
        );
        assert_eq!(super::counters_of(&named), None, "a name is not a counter");
        assert_eq!(
            super::counter_fields(&[("a.b.c".to_owned(), 1)].into()),
            None,
            "not a path a counter has"
        );
    }

    use super::*;

    #[test]
    fn every_statistics_document_but_an_hours_has_a_bucket_and_no_other_does() {
        let b = "2026-01-02";
        for p in [path::statistics(b), path::country_statistics("US", b)] {
            assert_eq!(path::bucket_of(&p), Some(b), "{p}");
        }
        let hour = hour_bucket(chrono::DateTime::UNIX_EPOCH);
        assert_eq!(hour, "1970-01-01T00");
        assert!(is_hour_bucket(&hour) && !is_hour_bucket(b) && !is_hour_bucket(LIFETIME));
        for p in [
            path::session("s"),
            path::entity(Entity::Category, "c"),
            path::metrics(LIFETIME),
            path::statistics(&hour),
            path::counter_shard(&path::statistics(&hour), 0, 1),
        ] {
            assert_eq!(path::bucket_of(&p), None, "{p}");
        }
    }

    #[test]
    fn event_ids_past_the_document_go_to_pages_of_the_same_size() {
        assert_eq!(event_id_page(0), None);
        assert_eq!(event_id_page(EVENT_IDS_PER_DOC - 1), None);
        assert_eq!(event_id_page(EVENT_IDS_PER_DOC), Some(0));
        assert_eq!(event_id_page(2 * EVENT_IDS_PER_DOC), Some(1));
        assert_eq!(event_id_pages(EVENT_IDS_PER_DOC), 0);
        assert_eq!(event_id_pages(EVENT_IDS_PER_DOC + 1), 1);
        assert_eq!(event_id_pages(3 * EVENT_IDS_PER_DOC), 2);
    }

    #[test]
    fn every_document_has_its_kind() {
        let b = LIFETIME;
        for (p, kind) in [
            (path::statistics(b), DocKind::Counter),
            (path::country_statistics("US", b), DocKind::Counter),
            (path::session("s"), DocKind::Session),
            (path::session_ids_page("s", 3), DocKind::SessionIdsPage),
            (path::entity(Entity::Payment, "x"), DocKind::Entity),
            (path::country("US"), DocKind::Entity),
            (path::state("US", "TX"), DocKind::Entity),
            (path::offsets("g", "t", 1), DocKind::Other),
            (path::journal_chunk("f", 0), DocKind::Other),
            (path::metrics(b), DocKind::Other),
        ] {
            assert_eq!(DocKind::of(&p), kind, "{p}");
        }
    }

    #[test]
    fn counters_go_to_their_writers_shards_in_stable_groups() {
        let mut d = crate::DocDelta::default();
        d.increments.insert(field::VIEWS.into(), 2);
        for i in 0..300 {
            d.increments
                .insert(field::nested("products", &format!("p{i}"), field::VIEWS), 1);
        }
        let mut other = crate::DocDelta::default();
        other
            .sets
            .insert(field::NAME.into(), crate::FieldValue::from("n"));
        let deltas = std::collections::BTreeMap::from([
            (path::statistics(LIFETIME), d),
            (path::entity(Entity::Product, "p1"), other.clone()),
        ]);
        let out = shard_counters(deltas, 7);
        assert_eq!(out[&path::entity(Entity::Product, "p1")], other);
        let shards: Vec<&String> = out.keys().filter(|k| k.contains("/shards/")).collect();
        assert_eq!(shards.len(), COUNTER_GROUPS as usize, "{shards:?}");
        assert_eq!(
            out[&path::counter_shard(&path::statistics(LIFETIME), 7, 0)]
                .increments
                .len(),
            1,
            "the totals in group 0"
        );
        let total: usize = out.values().map(|d| d.increments.len()).sum();
        assert_eq!(total, 301);
        for s in shards {
            assert_eq!(path::bucket_of(s), Some(LIFETIME));
            assert_eq!(DocKind::of(s), DocKind::Counter);
            assert!(
                out[s].increments.len() < 150,
                "groups are balanced: {}",
                out[s].increments.len()
            );
        }
        // A small delta (a country's bucket in a live flush) is one write, not four.
        let mut small = crate::DocDelta::default();
        for i in 0..SPREAD_ABOVE {
            small
                .increments
                .insert(field::nested("products", &format!("p{i}"), field::VIEWS), 1);
        }
        let out = shard_counters(
            std::collections::BTreeMap::from([(path::statistics(LIFETIME), small.clone())]),
            7,
        );
        assert_eq!(
            out,
            std::collections::BTreeMap::from([(
                path::counter_shard(&path::statistics(LIFETIME), 7, 0),
                small
            )])
        );
        let g = counter_group(&field::nested("products", "p9", field::VIEWS));
        assert_eq!(
            g,
            counter_group(&field::nested("products", "p9", field::ORDERS))
        );
        assert_eq!(
            path::bucket_of_marker(&path::derived_marker("2026-01-02", 3)),
            "2026-01-02"
        );
        assert_eq!(
            path::writer_of_marker(&path::derived_marker("2026-01-02", 13)),
            "13"
        );
        let stats = path::statistics(LIFETIME);
        assert_eq!(
            path::writer_of_shard(&path::counter_shard(&stats, 13, 2)),
            Some(13)
        );
        assert_eq!(path::writer_of_shard(&stats), None);
        assert_eq!(path::writer_of_shard("sessions_history/3-0"), None);
    }

    #[test]
    fn map_keys_are_quoted_in_field_paths() {
        assert_eq!(
            field::nested("products", "p-1", field::VIEWS),
            "products.`p-1`.views_count"
        );
        assert_eq!(
            field::nested(field::SHIPPING, "a`b\\c", "n"),
            "shipping.`a\\`b\\\\c`.n"
        );
    }

    #[test]
    fn ids_are_the_last_segment() {
        assert_eq!(
            path::id_of("projects/p/databases/d/documents/products/p7"),
            "p7"
        );
        assert_eq!(
            path::id_of(&path::derived_marker(LIFETIME, 2)),
            "lifetime~2"
        );
    }
}
