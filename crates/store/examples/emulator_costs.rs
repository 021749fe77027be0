//! What the Firestore emulator charges, in CPU, for each form of document analytics writes:
//! a probe behind the layout choices of `docs/firestore-schema.md` (counter shards written
//! whole or incremented, session documents). Run by `make probe-emulator`, which gives each
//! form a freshly started emulator (its cost grows with what it holds) and prints the table.
//!
//! `EMULATOR_PID=… FIRESTORE_EMULATOR_HOST=… cargo run --release -p store --example
//! emulator_costs -- FORM`: writes `ROUNDS` rounds of documents of one form and prints, for
//! each round, the emulator's CPU (user + system, from `/proc`) per document and per value.
//! The first round includes the emulator's JIT warm-up; the later ones are the steady cost.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::Utc;
use store::schema::{field, Element, Val};
use store::{DocDelta, FieldValue, Precondition, Store};

/// Counters in a shard of the counter forms (a statistics shard of a few hundred products).
const COUNTERS: usize = 300;
/// Events of a session of the session forms (a typical simulated one).
const SESSION_EVENTS: usize = 20;
/// Documents per round of each form, and per commit.
const SHARDS: usize = 2_000;
const SESSIONS: usize = 10_000;
const PER_COMMIT: usize = 100;
const ROUNDS: usize = 3;

/// The forms of document, by name.
const FORMS: &[&str] = &[
    "shard-whole-nested",
    "shard-increments-nested",
    "shard-increments-nested-tenth",
    "shard-whole-top",
    "shard-increments-top",
    "session-whole",
    "session-without-event-ids",
    "session-without-details",
    "session-details-columnar",
    "session-elements-as-maps",
    "session-ids-packed",
];

/// The emulator's CPU seconds so far.
fn cpu(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("no process {pid}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) / 100.0),
        _ => bail!("cannot read the CPU of process {pid}"),
    }
}

/// A shard's counters: top-level fields, or entries of a map (`products.`p-…`.views_…`, the
/// form of most counters of a statistics shard).
fn counters(nested: bool) -> BTreeMap<String, i64> {
    (0..COUNTERS)
        .map(|i| {
            let path = if nested {
                field::nested(
                    "products",
                    &format!("p-{:04}", i / 3),
                    &format!("c{}", i % 3),
                )
            } else {
                format!("counter_{i:04}")
            };
            (path, i as i64 + 1)
        })
        .collect()
}

fn shard(form: &str) -> anyhow::Result<(DocDelta, usize)> {
    let nested = form.ends_with("nested") || form.ends_with("nested-tenth");
    let mut all = counters(nested);
    if form.ends_with("tenth") {
        all = all.into_iter().step_by(10).collect();
    }
    let n = all.len();
    if form.starts_with("shard-whole") {
        let sets = store::schema::counter_fields(&all).context("counter fields")?;
        return Ok((
            DocDelta {
                sets,
                whole: true,
                ..DocDelta::default()
            },
            n,
        ));
    }
    let mut d = DocDelta::default();
    d.increments.extend(all);
    Ok((d, n))
}

/// A session document of [`SESSION_EVENTS`] events as analytics writes it whole (ids, detail
/// elements as text with their event ids, state fields), or a variant of it: the elements as
/// maps, the ids packed into one string, no ids, no details, the details as columns.
fn session(i: usize, form: &str) -> (DocDelta, usize) {
    let id = |k: usize| format!("{i:08x}-0000-4000-8000-{k:012x}");
    let stamp = Utc::now();
    let now = FieldValue::Time(stamp);
    let mut d = DocDelta {
        whole: true,
        ..DocDelta::default()
    };
    let mut values = 0;
    let mut set = |d: &mut DocDelta, name: &str, v: FieldValue| {
        values += count(&v);
        d.sets.insert(name.to_owned(), v);
    };
    set(&mut d, field::USER_ID, FieldValue::Str(format!("user-{i}")));
    set(
        &mut d,
        field::AGENT,
        FieldValue::from("Mozilla/5.0 (X11; Linux x86_64)"),
    );
    set(&mut d, field::START_TIME, now.clone());
    set(
        &mut d,
        field::LOCATION,
        FieldValue::map([
            (field::COUNTRY, FieldValue::from("DE")),
            (field::STATE, FieldValue::from("BE")),
            (field::CITY, FieldValue::from("Berlin")),
            (field::LATITUDE, FieldValue::Double(52.52)),
            (field::LONGITUDE, FieldValue::Double(13.40)),
        ]),
    );
    for (name, n) in [
        (field::EVENT_COUNT, SESSION_EVENTS as i64),
        (field::HISTORY_BYTES, 2_000),
        (field::FUNNEL_STEPS, 3),
        (field::CART_UNITS, 4),
    ] {
        set(&mut d, name, FieldValue::Int(n));
    }
    if form == "session-ids-packed" {
        let ids: Vec<String> = (0..SESSION_EVENTS).map(id).collect();
        set(&mut d, field::EVENT_IDS, FieldValue::Str(ids.join(" ")));
    } else if form != "session-without-event-ids" {
        let ids = (0..SESSION_EVENTS)
            .map(|k| FieldValue::Str(id(k)))
            .collect();
        set(&mut d, field::EVENT_IDS, FieldValue::Array(ids));
    }
    // Events 1..=10 view products, 11..=14 categories, 15..=18 add to the cart.
    let details = [
        (field::PRODUCTS_VIEWED, field::PRODUCT, 1..11, false),
        (field::CATEGORIES_VIEWED, field::CATEGORY, 11..15, false),
        (field::ADDED_TO_CART, field::PRODUCT, 15..19, true),
    ];
    for (array, key, events, quantity) in details {
        let value = match form {
            "session-without-details" => continue,
            // One map of arrays instead of an array of maps.
            "session-details-columnar" => {
                let column = |f: &dyn Fn(usize) -> FieldValue| {
                    FieldValue::Array(events.clone().map(f).collect())
                };
                let mut m = BTreeMap::from([
                    (
                        key.to_owned(),
                        column(&|k| FieldValue::Str(format!("p-{k}"))),
                    ),
                    (
                        field::EVENT_ID.to_owned(),
                        column(&|k| FieldValue::Str(id(k))),
                    ),
                    (field::TIMESTAMP.to_owned(), column(&|_| now.clone())),
                ]);
                if quantity {
                    m.insert(field::QUANTITY.to_owned(), column(&|_| FieldValue::Int(2)));
                }
                FieldValue::Map(m)
            }
            // Each element a map (the original system's layout, and analytics' before its
            // elements became text), or the text analytics writes.
            _ => FieldValue::Array(
                events
                    .clone()
                    .map(|k| {
                        let mut m = BTreeMap::from([
                            (key.to_owned(), FieldValue::Str(format!("p-{k}"))),
                            (field::EVENT_ID.to_owned(), FieldValue::Str(id(k))),
                            (field::TIMESTAMP.to_owned(), now.clone()),
                        ]);
                        if quantity {
                            m.insert(field::QUANTITY.to_owned(), FieldValue::Int(2));
                        }
                        if form == "session-elements-as-maps" {
                            return FieldValue::Map(m);
                        }
                        let (product, event) = (format!("p-{k}"), id(k));
                        let mut text = Element::default()
                            .with(key, Val::Str(&product))
                            .with(field::EVENT_ID, Val::Str(&event))
                            .with(field::TIMESTAMP, Val::Time(stamp));
                        if quantity {
                            text = text.with(field::QUANTITY, Val::Int(2));
                        }
                        FieldValue::Str(text.text())
                    })
                    .collect(),
            ),
        };
        set(&mut d, array, value);
    }
    (d, values)
}

/// Scalar values in `v`.
fn count(v: &FieldValue) -> usize {
    match v {
        FieldValue::Map(m) => m.values().map(count).sum(),
        FieldValue::Array(a) => a.iter().map(count).sum(),
        _ => 1,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let form = std::env::args().nth(1).unwrap_or_default();
    if !FORMS.contains(&form.as_str()) {
        bail!("usage: emulator_costs FORM, one of: {}", FORMS.join(" "));
    }
    let pid: u32 = std::env::var("EMULATOR_PID")
        .context("EMULATOR_PID: the emulator's process id")?
        .parse()
        .context("EMULATOR_PID")?;
    let store = Store::connect(&format!("probe-{form}"), Duration::from_secs(60)).await?;
    // Shards are incremented or replaced, all alike; sessions created (as analytics does),
    // each with ids of its own.
    let (docs, precondition, same) = if form.starts_with("shard") {
        (SHARDS, Precondition::None, Some(shard(&form)?))
    } else {
        (SESSIONS, Precondition::Exists(false), None)
    };
    for round in 1..=ROUNDS {
        let before = cpu(pid)?;
        let mut values = 0;
        let paths: Vec<String> = (0..docs)
            .map(|i| format!("probe/{round}/docs/{i:06}"))
            .collect();
        for (c, chunk) in paths.chunks(PER_COMMIT).enumerate() {
            let mut writes = Vec::with_capacity(chunk.len());
            for (j, p) in chunk.iter().enumerate() {
                let (delta, n) = match &same {
                    Some((delta, n)) => (delta.clone(), *n),
                    None => session(c * PER_COMMIT + j, &form),
                };
                values += n;
                writes.push(store.delta_write(p, &delta, precondition.clone()));
            }
            store.commit(writes).await?;
        }
        let used = cpu(pid)? - before;
        println!(
            "{form:<30} round {round}: {docs:>6} documents, {:>4} values each: {:>7.1} µs per document, {:>5.2} µs per value",
            values / docs,
            used * 1e6 / docs as f64,
            used * 1e6 / values as f64,
        );
    }
    Ok(())
}
