//! Sample events and proptest strategies shared by the contract tests.
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::model::MAX_PURCHASE_ITEMS;
use events::values::{DurationSeconds, Latitude, Longitude, MAX_QUANTITY};
use events::*;
use proptest::prelude::*;
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 20, 10, 3, 0)
        .single()
        .expect("valid date")
}

pub fn location() -> Location {
    Location {
        country: "IT".try_into().expect("valid"),
        state: "Lombardia".try_into().expect("valid"),
        city: "Milano".try_into().expect("valid"),
        latitude: Latitude::try_from(45.4642).expect("valid"),
        longitude: Longitude::try_from(9.19).expect("valid"),
    }
}

pub fn category() -> Category {
    Category {
        id: "shoes".try_into().expect("valid"),
        name: "Shoes".try_into().expect("valid"),
    }
}

pub fn product() -> Product {
    Product {
        id: "trail-runner-gtx".try_into().expect("valid"),
        name: "Trail Runner GTX".try_into().expect("valid"),
        category: category(),
        price: Money::from_minor(14_492).expect("valid"),
        currency: Currency::USD,
    }
}

pub fn sample(event_type: EventType) -> Event {
    let n = EventType::ALL
        .iter()
        .position(|t| *t == event_type)
        .expect("known") as u128;
    let payload = match event_type {
        EventType::SessionStarted => Payload::SessionStarted(StartSessionParameters {
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36".try_into().expect("valid"),
        }),
        EventType::CategoryViewed => Payload::CategoryViewed(CategoryParameters { category: category() }),
        EventType::ProductViewed => Payload::ProductViewed(ProductParameters { product: product() }),
        EventType::ProductAddedToCart => Payload::ProductAddedToCart(CartParameters { product: product(), quantity: 2.try_into().expect("valid") }),
        EventType::ProductRemovedFromCart => Payload::ProductRemovedFromCart(CartParameters { product: product(), quantity: 1.try_into().expect("valid") }),
        EventType::Purchase => Payload::Purchase(PurchaseParameters {
            transaction_id: Uuid::from_u128(0x7a1d_4c0e_9b4f_4d6b_8f2e_1c3a_5b7d_9e01),
            items: vec![PurchaseItem { product: product(), quantity: 2.try_into().expect("valid"), subtotal: Money::from_minor(28_984).expect("valid") }],
            total_amount: Money::from_minor(28_984).expect("valid"),
            discount_amount: Money::from_minor(1_500).expect("valid"),
            shipping_address: location(),
            shipping_cost: Money::from_minor(731).expect("valid"),
            payment_method: PaymentMethod { id: "paypal".try_into().expect("valid"), name: "PayPal".try_into().expect("valid") },
            estimated_delivery_date: t0() + Duration::days(5),
        }),
        EventType::SessionEnded => Payload::SessionEnded(EndSessionParameters { seconds_duration: DurationSeconds::try_from(3_720).expect("valid") }),
    };
    Event {
        event_id: Uuid::from_u128(0x1f0e_8a52_3c4d_4e6f_9a1b_2c3d_4e5f_6000 + n),
        session_id: Uuid::from_u128(0x5e55_1000_aaaa_4bbb_8ccc_dddd_eeee_ffff),
        user_id: Uuid::from_u128(0x05e0_0000_1111_4222_8333_4444_5555_6666),
        timestamp: t0() + Duration::minutes(3 * n as i64),
        location: location(),
        payload,
    }
}

/// The sample as a mutable JSON value, for building bad inputs.
pub fn sample_json(event_type: EventType) -> serde_json::Value {
    serde_json::from_slice(&encode(&sample(event_type))).expect("encoded JSON parses")
}

fn safe_id() -> impl Strategy<Value = EntityId> {
    "[a-z0-9][a-z0-9_-]{0,40}"
        .prop_map(|s| EntityId::try_from(s).expect("strategy yields safe ids"))
}

fn text<const N: usize>() -> impl Strategy<Value = Text<N>> {
    "[A-Za-z0-9][A-Za-z0-9 ,.'()/-]{0,60}"
        .prop_map(|s| Text::try_from(s).expect("strategy yields valid text"))
}

fn place() -> impl Strategy<Value = PlaceName> {
    "[A-Z][a-z' -]{0,30}"
        .prop_map(|s| PlaceName::try_from(s).expect("strategy yields valid places"))
}

fn money(max_minor: u64) -> impl Strategy<Value = Money> {
    (0..=max_minor).prop_map(|m| Money::from_minor(m).expect("in range"))
}

fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    // 2000-01-01 .. 2100-01-01, with microseconds sometimes.
    (
        946_684_800i64..4_102_444_800i64,
        prop_oneof![Just(0u32), 0u32..1_000_000],
    )
        .prop_map(|(s, us)| Utc.timestamp_opt(s, us * 1000).single().expect("in range"))
}

fn location_strategy() -> impl Strategy<Value = Location> {
    (
        "[A-Z]{2}",
        place(),
        place(),
        -90.0f64..=90.0,
        -180.0f64..=180.0,
    )
        .prop_map(|(c, state, city, lat, lon)| Location {
            country: CountryCode::try_from(c).expect("valid"),
            state,
            city,
            latitude: Latitude::try_from(lat).expect("valid"),
            longitude: Longitude::try_from(lon).expect("valid"),
        })
}

fn product_strategy() -> impl Strategy<Value = Product> {
    (
        safe_id(),
        text::<200>(),
        safe_id(),
        text::<200>(),
        money(1_000_000),
    )
        .prop_map(|(id, name, cid, cname, price)| Product {
            id,
            name,
            category: Category {
                id: cid,
                name: cname,
            },
            price,
            currency: Currency::USD,
        })
}

fn quantity(max: u32) -> impl Strategy<Value = events::Quantity> {
    (1..=max).prop_map(|q| events::Quantity::try_from(i64::from(q)).expect("in range"))
}

fn purchase_strategy(ts: DateTime<Utc>) -> impl Strategy<Value = PurchaseParameters> {
    (
        prop::collection::vec(
            (product_strategy(), quantity(MAX_QUANTITY.min(50))),
            1..=MAX_PURCHASE_ITEMS.min(8),
        ),
        any::<u128>(),
        location_strategy(),
        money(5_000),
        0u32..=1000,
        (safe_id(), text::<200>()),
        0i64..=30 * 24 * 3600,
    )
        .prop_map(
            move |(lines, tx, ship_to, shipping, discount_permille, (pm_id, pm_name), eta_s)| {
                let items: Vec<PurchaseItem> = lines
                    .into_iter()
                    .map(|(product, quantity)| {
                        let subtotal = product
                            .price
                            .checked_mul(quantity.get())
                            .expect("small enough");
                        PurchaseItem {
                            product,
                            quantity,
                            subtotal,
                        }
                    })
                    .collect();
                let total = items.iter().fold(Money::ZERO, |acc, i| {
                    acc.checked_add(i.subtotal).expect("small enough")
                });
                PurchaseParameters {
                    transaction_id: Uuid::from_u128(tx),
                    total_amount: total,
                    discount_amount: Money::from_minor(
                        total.minor() * u64::from(discount_permille) / 1000,
                    )
                    .expect("<= total"),
                    items,
                    shipping_address: ship_to,
                    shipping_cost: shipping,
                    payment_method: PaymentMethod {
                        id: pm_id,
                        name: pm_name,
                    },
                    estimated_delivery_date: ts + Duration::seconds(eta_s),
                }
            },
        )
}

pub fn event_strategy() -> impl Strategy<Value = Event> {
    (
        any::<u128>(),
        any::<u128>(),
        any::<u128>(),
        timestamp(),
        location_strategy(),
        0usize..7,
    )
        .prop_flat_map(|(e, s, u, ts, location, kind)| {
            let payload: BoxedStrategy<Payload> = match EventType::ALL[kind] {
                EventType::SessionStarted => text::<512>()
                    .prop_map(|user_agent| {
                        Payload::SessionStarted(StartSessionParameters { user_agent })
                    })
                    .boxed(),
                EventType::CategoryViewed => (safe_id(), text::<200>())
                    .prop_map(|(id, name)| {
                        Payload::CategoryViewed(CategoryParameters {
                            category: Category { id, name },
                        })
                    })
                    .boxed(),
                EventType::ProductViewed => product_strategy()
                    .prop_map(|product| Payload::ProductViewed(ProductParameters { product }))
                    .boxed(),
                EventType::ProductAddedToCart => (product_strategy(), quantity(MAX_QUANTITY))
                    .prop_map(|(product, quantity)| {
                        Payload::ProductAddedToCart(CartParameters { product, quantity })
                    })
                    .boxed(),
                EventType::ProductRemovedFromCart => (product_strategy(), quantity(MAX_QUANTITY))
                    .prop_map(|(product, quantity)| {
                        Payload::ProductRemovedFromCart(CartParameters { product, quantity })
                    })
                    .boxed(),
                EventType::Purchase => purchase_strategy(ts).prop_map(Payload::Purchase).boxed(),
                EventType::SessionEnded => (0i64..=7 * 24 * 3600)
                    .prop_map(|d| {
                        Payload::SessionEnded(EndSessionParameters {
                            seconds_duration: DurationSeconds::try_from(d).expect("in range"),
                        })
                    })
                    .boxed(),
            };
            payload.prop_map(move |payload| Event {
                event_id: Uuid::from_u128(e),
                session_id: Uuid::from_u128(s),
                user_id: Uuid::from_u128(u),
                timestamp: ts,
                location: location.clone(),
                payload,
            })
        })
}
