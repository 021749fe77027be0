//! The synthetic shop: categories, products, payment methods, user agents, places and users.
//! Everything derives from a catalog seed, so the catalog is identical across restarts and
//! replicas; ids are UUIDv5 of the entity's name, and names travel in every event.

use events::values::{Latitude, Longitude};
use events::{Category, Currency, Location, Money, PaymentMethod, Product};
use fake::faker::internet::en::{FreeEmail, Username};
use fake::faker::name::en::Name;
use fake::Fake;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

use crate::geo::COUNTRIES;
use crate::ids::random_uuid;

/// Namespace of every catalog UUIDv5.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d3e_4a5b_4c6d_8e7f_9a0b_1c2d_3e4f);

/// The original's eight categories, each with nouns and adjectives for product names.
const CATEGORIES: &[(&str, &[&str], &[&str])] = &[
    (
        "Shoes",
        &["Sneakers", "Trail Runners", "Loafers", "Boots", "Sandals"],
        &["Classic", "Urban", "Waterproof", "Lightweight", "Leather"],
    ),
    (
        "Clothing",
        &["Hoodie", "T-Shirt", "Denim Jacket", "Chinos", "Rain Coat"],
        &["Organic", "Slim", "Oversized", "Vintage", "Merino"],
    ),
    (
        "Accessories",
        &["Backpack", "Wallet", "Sunglasses", "Watch", "Belt"],
        &["Minimal", "Travel", "Polarized", "Canvas", "Titanium"],
    ),
    (
        "Electronics",
        &["Earbuds", "Smartwatch", "Power Bank", "Keyboard", "Speaker"],
        &[
            "Wireless",
            "Noise-Cancelling",
            "Compact",
            "Mechanical",
            "Portable",
        ],
    ),
    (
        "Home",
        &[
            "Coffee Maker",
            "Desk Lamp",
            "Throw Blanket",
            "Cookware Set",
            "Vase",
        ],
        &["Ceramic", "Smart", "Cozy", "Nordic", "Cast-Iron"],
    ),
    (
        "Sports",
        &[
            "Yoga Mat",
            "Dumbbells",
            "Water Bottle",
            "Tennis Racket",
            "Cycling Helmet",
        ],
        &["Pro", "Insulated", "Adjustable", "Eco", "Aero"],
    ),
    (
        "Toys",
        &[
            "Puzzle",
            "Building Set",
            "Plush Bear",
            "RC Car",
            "Board Game",
        ],
        &["Wooden", "Deluxe", "Family", "Mini", "Glow"],
    ),
    (
        "Beauty",
        &["Face Serum", "Lip Balm", "Shampoo", "Perfume", "Sunscreen"],
        &["Hydrating", "Vegan", "Botanical", "Daily", "Mineral"],
    ),
];

/// Payment methods with their share of orders.
const PAYMENT_METHODS: &[(&str, u32)] = &[
    ("Card", 55),
    ("PayPal", 25),
    ("Gift Card", 12),
    ("Crypto", 8),
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0 Mobile Safari/537.36",
];

/// A shopper. The id is stable for a (catalog seed, index) pair.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub username: String,
    pub email: String,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub seed: u64,
    pub categories: Vec<Category>,
    /// Products of `categories[i]`, never empty.
    pub products: Vec<Vec<Product>>,
    pub payment_methods: Vec<PaymentMethod>,
    payment_weights: Vec<u32>,
    pub user_agents: Vec<events::model::UserAgent>,
    locations: Vec<(Location, u32)>,
}

fn stable_id(kind: &str, name: &str) -> events::EntityId {
    let id = Uuid::new_v5(&NAMESPACE, format!("{kind}:{name}").as_bytes())
        .hyphenated()
        .to_string();
    events::EntityId::try_from(id)
        .unwrap_or_else(|_| unreachable!("a hyphenated UUID is a safe id"))
}

fn text<const N: usize>(s: &str) -> events::Text<N> {
    events::Text::try_from(s).unwrap_or_else(|e| panic!("catalog text {s:?}: {e}"))
}

/// Index into `weights` drawn proportionally to the weights.
pub fn weighted_index(rng: &mut StdRng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (i, w) in weights.enumerate() {
        if pick < w {
            return i;
        }
        pick -= w;
    }
    0
}

impl Catalog {
    /// Build the catalog of `products_total` products (at least one per category) from `seed`.
    pub fn generate(seed: u64, products_total: usize) -> Catalog {
        let mut rng = StdRng::seed_from_u64(seed);
        let categories: Vec<Category> = CATEGORIES
            .iter()
            .map(|(name, _, _)| Category {
                id: stable_id("category", name),
                name: text(name),
            })
            .collect();
        let mut products: Vec<Vec<Product>> = vec![Vec::new(); categories.len()];
        let mut seen = std::collections::HashSet::new();
        for i in 0..products_total.max(categories.len()) {
            let c = i % categories.len();
            let (_, nouns, adjectives) = CATEGORIES[c];
            let base = format!(
                "{} {}",
                adjectives[rng.random_range(0..adjectives.len())],
                nouns[rng.random_range(0..nouns.len())]
            );
            let mut name = base.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base} {n}");
                n += 1;
            }
            let price = Money::from_minor(rng.random_range(1_000..=30_000)).unwrap_or(Money::ZERO);
            products[c].push(Product {
                id: stable_id("product", &name),
                name: text(&name),
                category: categories[c].clone(),
                price,
                currency: Currency::USD,
            });
        }
        let locations = COUNTRIES
            .iter()
            .flat_map(|(country, weight, cities)| {
                cities.iter().map(move |(state, city, lat, lon)| {
                    let location = Location {
                        country: (*country)
                            .try_into()
                            .unwrap_or_else(|e| panic!("{country}: {e}")),
                        state: (*state)
                            .try_into()
                            .unwrap_or_else(|e| panic!("{state}: {e}")),
                        city: (*city).try_into().unwrap_or_else(|e| panic!("{city}: {e}")),
                        latitude: Latitude::try_from(*lat)
                            .unwrap_or_else(|e| panic!("{city}: {e}")),
                        longitude: Longitude::try_from(*lon)
                            .unwrap_or_else(|e| panic!("{city}: {e}")),
                    };
                    // A country's traffic is shared by its cities.
                    (
                        location,
                        weight * 12 / u32::try_from(cities.len()).unwrap_or(1),
                    )
                })
            })
            .collect();
        Catalog {
            seed,
            categories,
            products,
            payment_methods: PAYMENT_METHODS
                .iter()
                .map(|(n, _)| PaymentMethod {
                    id: stable_id("payment", n),
                    name: text(n),
                })
                .collect(),
            payment_weights: PAYMENT_METHODS.iter().map(|(_, w)| *w).collect(),
            user_agents: USER_AGENTS.iter().map(|ua| text(ua)).collect(),
            locations,
        }
    }

    pub fn product_count(&self) -> usize {
        self.products.iter().map(Vec::len).sum()
    }

    pub fn countries(&self) -> std::collections::BTreeSet<&str> {
        self.locations
            .iter()
            .map(|(l, _)| l.country.as_str())
            .collect()
    }

    /// A payment method index, drawn by the methods' shares.
    pub fn random_payment_index(&self, rng: &mut StdRng) -> usize {
        weighted_index(rng, self.payment_weights.iter().copied())
    }

    /// User number `index`: the same person for the same catalog seed.
    pub fn user(&self, index: u64) -> User {
        let mut rng = StdRng::seed_from_u64(
            self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5553_4552,
        );
        let location = self.locations
            [weighted_index(&mut rng, self.locations.iter().map(|(_, w)| *w))]
        .0
        .clone();
        User {
            id: random_uuid(&mut rng),
            name: Name().fake_with_rng(&mut rng),
            username: Username().fake_with_rng(&mut rng),
            email: FreeEmail().fake_with_rng(&mut rng),
            location,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_stable_for_a_seed_and_differs_across_seeds() {
        let a = Catalog::generate(7, 100);
        let b = Catalog::generate(7, 100);
        assert_eq!(a.products, b.products);
        assert_eq!(a.user(3).id, b.user(3).id);
        assert_eq!(a.user(3).email, b.user(3).email);
        assert_eq!(a.product_count(), 100);
        let c = Catalog::generate(8, 100);
        assert_ne!(a.products, c.products);
        // Category and payment ids come from names only.
        assert_eq!(a.categories, c.categories);
        assert_eq!(a.payment_methods, c.payment_methods);
    }

    #[test]
    fn geography_is_coherent_and_wide() {
        let catalog = Catalog::generate(1, 100);
        assert!(catalog.countries().len() >= 15, "{:?}", catalog.countries());
        for (country, _, cities) in COUNTRIES {
            for (state, city, lat, lon) in *cities {
                let users: Vec<User> = (0..2000)
                    .map(|i| catalog.user(i))
                    .filter(|u| u.location.city.as_str() == *city)
                    .collect();
                for u in users {
                    assert_eq!(u.location.country.as_str(), *country);
                    assert_eq!(u.location.state.as_str(), *state);
                    assert!(
                        (u.location.latitude.get() - lat).abs() < 1e-9
                            && (u.location.longitude.get() - lon).abs() < 1e-9
                    );
                }
            }
        }
    }

    #[test]
    fn traffic_is_skewed_towards_big_markets() {
        let catalog = Catalog::generate(1, 100);
        let us = (0..5000)
            .filter(|i| catalog.user(*i).location.country.as_str() == "US")
            .count();
        let za = (0..5000)
            .filter(|i| catalog.user(*i).location.country.as_str() == "ZA")
            .count();
        assert!(us > 10 * za.max(1), "US {us}, ZA {za}");
    }
}
