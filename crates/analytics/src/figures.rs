//! The derived figures of one bucket (`lifetime` or a day), computed from its counters:
//! pure, no I/O. [`crate::derived`] reads the counters, calls [`compute`] and materializes
//! the result into `metrics/`, `trending/` and `interest/`.

use std::collections::BTreeMap;

pub use store::schema::Totals;

/// Weights of the interest score: Σ weight × counter.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Weights {
    pub view: i64,
    pub add_to_cart: i64,
    pub remove_from_cart: i64,
    pub purchase: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            view: 1,
            add_to_cart: 3,
            remove_from_cart: -2,
            purchase: 5,
        }
    }
}

impl Weights {
    /// Parse `view=1,add=3,remove=-2,purchase=5`.
    pub fn parse(s: &str) -> Result<Weights, String> {
        let mut w = Weights::default();
        for kv in s.split(',').filter(|x| !x.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{kv:?} is not name=weight"))?;
            let v: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{kv:?}: weight must be an integer"))?;
            match k.trim() {
                "view" => w.view = v,
                "add" => w.add_to_cart = v,
                "remove" => w.remove_from_cart = v,
                "purchase" => w.purchase = v,
                other => {
                    return Err(format!(
                        "unknown interest weight {other:?} (view, add, remove, purchase)"
                    ))
                }
            }
        }
        Ok(w)
    }

    /// The weights `interest/{b}` was computed with (its `weights` map); the defaults where
    /// it or a weight is missing.
    pub fn read(interest: Option<&store::schema::Document>) -> Weights {
        use store::schema::{field as f, map_int};
        let d = Weights::default();
        let w = |key, default| map_int(interest, f::WEIGHTS, key).unwrap_or(default);
        Weights {
            view: w(f::WEIGHT_VIEW, d.view),
            add_to_cart: w(f::WEIGHT_ADD, d.add_to_cart),
            remove_from_cart: w(f::WEIGHT_REMOVE, d.remove_from_cart),
            purchase: w(f::WEIGHT_PURCHASE, d.purchase),
        }
    }

    /// A product's interest score from its counters.
    pub fn score(&self, p: &ProductCounters) -> i64 {
        self.view * p.views
            + self.add_to_cart * p.adds
            + self.remove_from_cart * p.removes
            + self.purchase * p.units
    }
}

/// What a bucket's totals alone give: the figures of `metrics/{bucket}` and of the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Rates {
    /// Started minus ended: only meaningful over the lifetime bucket.
    pub active_sessions: Option<i64>,
    pub average_session_duration_seconds: f64,
    /// Orders per started session.
    pub conversion_rate: f64,
    /// Paid cents per order.
    pub average_order_value_cents: f64,
}

impl Rates {
    /// The rates of a bucket's totals; `lifetime` for the lifetime bucket (a day's sessions
    /// may end the next day, so a day has no active sessions).
    pub fn of(t: &Totals, lifetime: bool) -> Rates {
        Rates {
            active_sessions: lifetime.then_some(t.sessions_started - t.sessions_ended),
            average_session_duration_seconds: ratio(t.sessions_duration_seconds, t.sessions_ended),
            conversion_rate: ratio(t.orders, t.sessions_started),
            average_order_value_cents: ratio(t.paid_cents, t.orders),
        }
    }
}

/// A product with its counters in the bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductCounters {
    pub id: String,
    pub name: String,
    pub category_id: String,
    pub category_name: String,
    pub views: i64,
    pub adds: i64,
    pub removes: i64,
    /// Units purchased.
    pub units: i64,
    pub orders: i64,
    pub revenue_cents: i64,
}

impl ProductCounters {
    fn active(&self) -> bool {
        self.views != 0 || self.adds != 0 || self.removes != 0 || self.units != 0
    }
}

/// A payment method and how often it was used in the bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentUse {
    pub id: String,
    pub name: String,
    pub uses: i64,
}

/// A product as the rankings list it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductFigure {
    pub id: String,
    pub name: String,
    pub units: i64,
    pub orders: i64,
    pub views: i64,
    /// Orders per view.
    pub conversion: f64,
    pub revenue_cents: i64,
    pub interest_score: i64,
}

/// A category's interest: the sum of its active products' scores.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryFigure {
    pub id: String,
    pub name: String,
    pub interest_score: i64,
}

/// Everything derived from one bucket's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub totals: Totals,
    pub rates: Rates,
    /// The payment method used most (ties: the greater id), if any was used.
    pub most_used_payment: Option<PaymentUse>,
    /// The top products by units purchased (ties: revenue, then id).
    pub trending: Vec<ProductFigure>,
    /// The top products by interest score (ties: id).
    pub interest_products: Vec<ProductFigure>,
    /// Every category with an active product, by interest score (ties: id).
    pub interest_categories: Vec<CategoryFigure>,
}

/// `part / whole`, 0 when there is no whole.
pub fn ratio(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

/// The figures of a bucket. `products` in listing order (a category is named after its first
/// active product); products without any activity in the bucket are in no ranking.
pub fn compute(
    totals: Totals,
    lifetime: bool,
    products: &[ProductCounters],
    payments: &[PaymentUse],
    weights: Weights,
    top: usize,
) -> Figures {
    let most_used_payment = payments
        .iter()
        .max_by(|a, b| (a.uses, &a.id, &a.name).cmp(&(b.uses, &b.id, &b.name)))
        .filter(|p| p.uses > 0)
        .cloned();
    let mut categories: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
    let mut ranked: Vec<ProductFigure> = Vec::new();
    for p in products.iter().filter(|p| p.active()) {
        let score = weights.score(p);
        categories
            .entry(p.category_id.as_str())
            .or_insert((p.category_name.as_str(), 0))
            .1 += score;
        ranked.push(ProductFigure {
            id: p.id.clone(),
            name: p.name.clone(),
            units: p.units,
            orders: p.orders,
            views: p.views,
            conversion: ratio(p.orders, p.views),
            revenue_cents: p.revenue_cents,
            interest_score: score,
        });
    }
    let mut trending = ranked.clone();
    trending.sort_by(|a, b| {
        b.units
            .cmp(&a.units)
            .then(b.revenue_cents.cmp(&a.revenue_cents))
            .then(a.id.cmp(&b.id))
    });
    trending.truncate(top);
    let mut interest_products = ranked;
    interest_products.sort_by(|a, b| {
        b.interest_score
            .cmp(&a.interest_score)
            .then(a.id.cmp(&b.id))
    });
    interest_products.truncate(top);
    let mut interest_categories: Vec<CategoryFigure> = categories
        .into_iter()
        .map(|(id, (name, score))| CategoryFigure {
            id: id.to_owned(),
            name: name.to_owned(),
            interest_score: score,
        })
        .collect();
    interest_categories.sort_by(|a, b| {
        b.interest_score
            .cmp(&a.interest_score)
            .then(a.id.cmp(&b.id))
    });
    Figures {
        totals,
        rates: Rates::of(&totals, lifetime),
        most_used_payment,
        trending,
        interest_products,
        interest_categories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, category: &str, views: i64, adds: i64, units: i64) -> ProductCounters {
        ProductCounters {
            id: id.into(),
            name: format!("{id} name"),
            category_id: category.into(),
            category_name: format!("{category} name"),
            views,
            adds,
            units,
            orders: units.min(1),
            revenue_cents: units * 1000,
            ..ProductCounters::default()
        }
    }

    fn totals() -> Totals {
        Totals {
            sessions_started: 10,
            sessions_ended: 8,
            sessions_duration_seconds: 400,
            orders: 4,
            paid_cents: 10_000,
            ..Totals::default()
        }
    }

    fn payment(id: &str, uses: i64) -> PaymentUse {
        PaymentUse {
            id: id.into(),
            name: id.to_uppercase(),
            uses,
        }
    }

    #[test]
    fn session_and_order_figures_and_their_zero_cases() {
        let f = compute(totals(), true, &[], &[], Weights::default(), 5);
        assert_eq!(f.rates.active_sessions, Some(2));
        assert_eq!(f.rates.average_session_duration_seconds, 50.0);
        assert_eq!(f.rates.conversion_rate, 0.4);
        assert_eq!(f.rates.average_order_value_cents, 2500.0);
        let day = compute(Totals::default(), false, &[], &[], Weights::default(), 5);
        assert_eq!(
            day.rates.active_sessions, None,
            "only the lifetime bucket has active sessions"
        );
        assert_eq!(day.rates.conversion_rate, 0.0);
        assert_eq!(day.rates.average_order_value_cents, 0.0);
        assert_eq!(day.rates.average_session_duration_seconds, 0.0);
    }

    #[test]
    fn the_most_used_payment_method_wins_and_none_when_unused() {
        let f = compute(
            totals(),
            true,
            &[],
            &[
                payment("card", 3),
                payment("paypal", 7),
                payment("crypto", 7),
            ],
            Weights::default(),
            5,
        );
        assert_eq!(
            f.most_used_payment,
            Some(payment("paypal", 7)),
            "ties: the greater id"
        );
        let unused = compute(
            totals(),
            true,
            &[],
            &[payment("card", 0)],
            Weights::default(),
            5,
        );
        assert_eq!(unused.most_used_payment, None);
    }

    #[test]
    fn rankings_score_interest_and_leave_idle_products_out() {
        let weights = Weights::parse("view=1,add=3,remove=-2,purchase=5").expect("weights");
        let mut idle = product("p0", "c1", 0, 0, 0);
        idle.orders = 0;
        let products = [
            idle,
            product("p1", "c1", 10, 1, 2), // score 10 + 3 + 10 = 23
            product("p2", "c2", 4, 0, 2),  // score 4 + 10 = 14; ties p1 on units and revenue
            product("p3", "c1", 1, 0, 0),  // score 1
        ];
        let f = compute(totals(), true, &products, &[], weights, 2);
        let ids = |v: &[ProductFigure]| v.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&f.trending),
            ["p1", "p2"],
            "units, then revenue, then id; top 2"
        );
        assert_eq!(ids(&f.interest_products), ["p1", "p2"]);
        assert_eq!(f.trending[0].conversion, 0.1, "orders per view");
        assert_eq!(f.trending[0].interest_score, 23);
        let cats: Vec<(String, i64)> = f
            .interest_categories
            .iter()
            .map(|c| (c.id.clone(), c.interest_score))
            .collect();
        assert_eq!(cats, [("c1".to_owned(), 24), ("c2".to_owned(), 14)]);
        assert!(
            !f.trending
                .iter()
                .chain(&f.interest_products)
                .any(|p| p.id == "p0"),
            "a product without activity is in no ranking"
        );
    }

    #[test]
    fn weights_parse_and_reject_unknown_names() {
        assert_eq!(
            Weights::parse("view=2,purchase=10").expect("valid"),
            Weights {
                view: 2,
                purchase: 10,
                ..Weights::default()
            }
        );
        assert_eq!(Weights::parse("").expect("defaults"), Weights::default());
        assert!(Weights::parse("clicks=1").is_err());
        assert!(Weights::parse("view=x").is_err());
        let p = ProductCounters {
            views: 10,
            adds: 2,
            removes: 1,
            units: 3,
            ..ProductCounters::default()
        };
        assert_eq!(Weights::default().score(&p), 10 + 6 - 2 + 15);
    }
}
