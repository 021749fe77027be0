//! Ids drawn from the caller's randomness, so seeded runs reproduce them.

use rand::rngs::StdRng;
use rand::RngExt;
use uuid::Uuid;

/// A version-4 UUID drawn from `rng`.
pub fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_version_4_ids() {
        let ids = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            [random_uuid(&mut rng), random_uuid(&mut rng)]
        };
        assert_eq!(ids(7), ids(7));
        assert_ne!(ids(7), ids(8));
        assert_eq!(ids(7)[0].get_version_num(), 4);
    }
}
