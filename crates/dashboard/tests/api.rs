//! The dashboard's JSON endpoints against the Firestore emulator (the local stack's, as in
//! `make test`), on documents seeded in the schema's layout: every figure equals what the
//! schema module reads, counters are summed over writers' shards, and bad input gets a
//! clear error.
use std::collections::BTreeMap;
use std::time::Duration;

use dashboard::server::{router, App};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use store::deltas::{DocDelta, FieldValue};
use store::schema::{self, field as f, path, Entity, Totals, LIFETIME};
use store::{Precondition, Store};

const DAY: &str = "2026-03-01";
const HOUR: &str = "2026-03-01T13";

fn counters(entries: &[(&str, i64)]) -> DocDelta {
    let mut d = DocDelta::default();
    for (field, n) in entries {
        d.increments.insert((*field).to_owned(), *n);
    }
    d
}

fn named(name: &str) -> DocDelta {
    let mut d = DocDelta::default();
    d.sets.insert(f::NAME.to_owned(), FieldValue::from(name));
    d
}

/// Two writers' shards of `statistics/lifetime`, a country's, a product and a payment
/// method (one named like markup), and a day's derived metrics.
async fn seed(store: &Store) {
    let views = f::nested(Entity::Product.collection(), "p1", f::VIEWS);
    let units = f::nested(Entity::Product.collection(), "p1", f::ITEMS_PURCHASED);
    let orders = f::nested(Entity::Product.collection(), "p1", f::ORDERS);
    let card = f::nested(Entity::Payment.collection(), "card", f::USAGE);
    let in_de = |field: &str| f::nested(f::BY_COUNTRY, "DE", field);
    let (de_orders, de_paid) = (in_de(f::PURCHASES), in_de(f::PAID_CENTS));
    let fr_orders = f::nested(f::BY_COUNTRY, "FR", f::PURCHASES);
    let writer0 = schema::shard_counters(
        BTreeMap::from([
            (
                path::statistics(LIFETIME),
                counters(&[
                    (f::STARTED_SESSIONS, 5),
                    (f::ENDED_SESSIONS, 3),
                    (f::PURCHASES, 2),
                    (f::PAID_CENTS, 4_000),
                    (f::VIEWED_SESSIONS, 4),
                    (f::CARTED_SESSIONS, 3),
                    (f::PURCHASED_SESSIONS, 2),
                    (f::ABANDONED_CARTS, 1),
                    (views.as_str(), 7),
                    (units.as_str(), 3),
                    (orders.as_str(), 2),
                    (card.as_str(), 2),
                ]),
            ),
            (
                path::country_statistics("DE", LIFETIME),
                counters(&[(f::PURCHASES, 2), (f::PAID_CENTS, 4_000)]),
            ),
            (
                path::statistics(HOUR),
                counters(&[
                    (f::PURCHASES, 2),
                    (de_orders.as_str(), 1),
                    (de_paid.as_str(), 90),
                    (fr_orders.as_str(), 1),
                ]),
            ),
        ]),
        0,
    );
    let writer1 = schema::shard_counters(
        BTreeMap::from([
            (
                path::statistics(LIFETIME),
                counters(&[(f::STARTED_SESSIONS, 2), (views.as_str(), 1)]),
            ),
            (
                path::statistics(HOUR),
                counters(&[
                    (f::STARTED_SESSIONS, 2),
                    (f::PURCHASES, 1),
                    (f::PAID_CENTS, 250),
                    (de_orders.as_str(), 1),
                    (de_paid.as_str(), 250),
                ]),
            ),
        ]),
        1,
    );
    let mut country = DocDelta::default();
    country
        .sets
        .insert(f::CODE.to_owned(), FieldValue::from("DE"));
    let mut metrics = DocDelta::default();
    for (field, v) in [
        (f::SESSIONS_STARTED, 4),
        (f::ORDERS_FIGURE, 1),
        (f::METRIC_PAID_CENTS, 100),
    ] {
        metrics.sets.insert(field.to_owned(), FieldValue::Int(v));
    }
    // The weights analytics computed lifetime's interest with (a view counts 2 here).
    let mut interest = DocDelta::default();
    interest.sets.insert(
        f::WEIGHTS.to_owned(),
        FieldValue::map([
            (f::WEIGHT_VIEW, FieldValue::Int(2)),
            (f::WEIGHT_ADD, FieldValue::Int(3)),
            (f::WEIGHT_REMOVE, FieldValue::Int(-2)),
            (f::WEIGHT_PURCHASE, FieldValue::Int(5)),
        ]),
    );
    let mut writes: Vec<_> = writer0
        .iter()
        .chain(writer1.iter())
        .map(|(p, d)| store.delta_write(p, d, Precondition::None))
        .collect();
    writes.extend([
        store.delta_write(
            &path::entity(Entity::Product, "p1"),
            &named("<b>Mug</b>"),
            Precondition::None,
        ),
        store.delta_write(
            &path::entity(Entity::Payment, "card"),
            &named("Card"),
            Precondition::None,
        ),
        store.delta_write(&path::country("DE"), &country, Precondition::None),
        store.delta_write(&path::metrics(DAY), &metrics, Precondition::None),
        store.delta_write(&path::interest(LIFETIME), &interest, Precondition::None),
    ]);
    store.commit(writes).await.expect("seed");
}

struct Served {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Empty<bytes::Bytes>>,
}

impl Served {
    async fn start(store: Store, instances: Vec<String>) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = App::new(store, instances, 10, "USD".into(), Duration::from_secs(1));
        tokio::spawn(async move { axum::serve(listener, router(app)).await });
        Served {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let uri: hyper::Uri = format!("{}{path_and_query}", self.base)
            .parse()
            .expect("uri");
        let r = self.client.get(uri).await.expect("answer");
        let status = r.status().as_u16();
        let body = r.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&body).expect("json"))
    }
}

async fn emulator(name: &str) -> Store {
    let env = testkit::local_env("firestore/env");
    std::env::set_var("FIRESTORE_EMULATOR_HOST", &env["FIRESTORE_EMULATOR_HOST"]);
    let project = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    Store::connect(&project, Duration::from_secs(30))
        .await
        .expect("emulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_what_the_schema_module_reads() {
    let store = emulator("dash-api").await;
    seed(&store).await;
    let served = Served::start(store.clone(), Vec::new()).await;
    let (status, o) = served.get("/api/overview").await;
    assert_eq!(status, 200, "{o}");

    let stats = schema::read_counters(&store, &path::statistics(LIFETIME))
        .await
        .expect("read");
    let t = Totals::read(stats.as_ref());
    let life = &o["lifetime"];
    assert_eq!(life["sessions_started"], t.sessions_started);
    assert_eq!(t.sessions_started, 7, "both writers' shards");
    assert_eq!(life["orders"], t.orders);
    assert_eq!(life["paid_cents"], t.paid_cents);
    assert_eq!(life["active_sessions"], 4);
    assert_eq!(
        o["current"], o["lifetime"],
        "lifetime is the default bucket"
    );
    assert!(o["previous"].is_null());
    let funnel = schema::Funnel::read(stats.as_ref());
    assert_eq!(
        life["funnel"]["sessions_viewed_product"],
        funnel.sessions_viewed_product
    );
    assert_eq!(life["funnel"]["abandoned_carts"], 1);
    let mug = &life["top_products"][0];
    assert_eq!(
        mug["name"], "<b>Mug</b>",
        "names travel as data, unescaped JSON text"
    );
    assert_eq!(mug["views"], 8);
    assert_eq!(mug["units"], 3);
    // 2 × 8 views + 5 × 3 units, with interest/lifetime's weights.
    assert_eq!(mug["interest_score"], 31);
    assert_eq!(life["weights"]["view"], 2);
    assert_eq!(life["categories"][0]["interest_score"], 31);
    assert_eq!(life["countries"][0]["country"], "DE");
    assert_eq!(life["countries"][0]["paid_cents"], 4_000);
    assert_eq!(life["payment_methods"][0]["name"], "Card");
    assert_eq!(life["payment_methods"][0]["uses"], 2);
    assert_eq!(
        o["days"],
        serde_json::json!([{"day": DAY, "sessions": 4, "orders": 1, "paid_cents": 100}])
    );
    assert_eq!(
        o["hours"],
        serde_json::json!([{"day": HOUR, "sessions": 2, "orders": 3, "paid_cents": 250}]),
        "the hour buckets, from their shards"
    );
    // One country's hours: the entries of its map in the hour's shards, summed.
    let (status, de) = served.get("/api/overview?country=DE").await;
    assert_eq!(status, 200, "{de}");
    assert_eq!(de["country"], "DE");
    let doc = schema::read_counters(&store, &path::statistics(HOUR))
        .await
        .expect("read");
    let t = Totals::read(schema::in_country(doc.as_ref(), "DE").as_ref());
    assert_eq!((t.orders, t.paid_cents), (2, 340));
    assert_eq!(
        de["hours"],
        serde_json::json!([{"day": HOUR, "sessions": 0, "orders": 2, "paid_cents": 340}])
    );
    let (_, none) = served.get("/api/overview?country=JP").await;
    assert_eq!(none["hours"][0]["orders"], 0, "a country without figures");

    // A day, with the day before for the changes.
    let (status, d) = served.get(&format!("/api/overview?day={DAY}")).await;
    assert_eq!(status, 200);
    assert_eq!(d["bucket"], DAY);
    assert_eq!(d["previous"]["bucket"], "2026-02-28");
    assert_eq!(d["lifetime"]["sessions_started"], 7);
    assert_eq!(
        d["lifetime"]["top_products"],
        serde_json::json!([]),
        "lifetime beside a day: its headline figures only"
    );
    assert_eq!(d["current"]["payment_methods"][0]["name"], "Card");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_the_browser_pages_through_the_data() {
    let store = emulator("dash-browse").await;
    seed(&store).await;
    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let served = Served::start(store, vec![unreachable.clone()]).await;

    let (status, e) = served.get("/api/overview?day=yesterday").await;
    assert_eq!(status, 400);
    assert!(
        e["error"].as_str().expect("error").contains("YYYY-MM-DD"),
        "{e}"
    );
    let (status, e) = served.get("/api/overview?country=de").await;
    assert_eq!(status, 400);
    assert!(
        e["error"]
            .as_str()
            .expect("error")
            .contains("two capital letters"),
        "{e}"
    );
    let (status, e) = served.get("/api/browse?path=statistics//lifetime").await;
    assert_eq!(status, 400, "{e}");

    let (_, root) = served.get("/api/browse?path=").await;
    let collections: Vec<&str> = root["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for c in ["statistics", "products", "metrics", "countries"] {
        assert!(collections.contains(&c), "{c} in {collections:?}");
    }
    // statistics/lifetime holds only its shards: listed all the same.
    let (_, stats) = served.get("/api/browse?path=statistics").await;
    assert_eq!(
        stats["documents"],
        serde_json::json!([format!("statistics/{HOUR}"), "statistics/lifetime"])
    );
    let (_, doc) = served.get("/api/browse?path=statistics/lifetime").await;
    assert_eq!(doc["exists"], false);
    assert_eq!(doc["collections"], serde_json::json!(["shards"]));
    let (_, shards) = served
        .get("/api/browse?path=statistics/lifetime/shards")
        .await;
    let mut started = 0;
    for shard in shards["documents"].as_array().expect("shards") {
        let (_, doc) = served
            .get(&format!(
                "/api/browse?path={}",
                shard.as_str().expect("path")
            ))
            .await;
        started += doc["fields"][f::STARTED_SESSIONS].as_i64().unwrap_or(0);
    }
    assert_eq!(started, 7, "the shards' fields, summed: {shards}");

    let (status, p) = served.get("/api/pipeline").await;
    assert_eq!(status, 200);
    assert_eq!(p["instances"][0]["address"], unreachable);
    assert_eq!(p["instances"][0]["up"], false);
}
