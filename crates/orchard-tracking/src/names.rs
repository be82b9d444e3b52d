//! Friendly random names for runs and models created without one ("brave-heron-42").

use rand::seq::SliceRandom;
use rand::Rng;

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "brisk", "calm", "clever", "crisp", "dapper", "eager", "fuzzy", "gentle",
    "glossy", "hardy", "humble", "jolly", "keen", "lively", "lucky", "mellow", "merry", "nimble",
    "noble", "plucky", "proud", "quiet", "rapid", "rosy", "rustic", "shiny", "silent", "sleek",
    "snappy", "spry", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "zesty",
];

const NOUNS: &[&str] = &[
    "apple", "badger", "beacon", "birch", "bison", "brook", "cedar", "comet", "crane", "delta",
    "ember", "falcon", "fern", "finch", "fjord", "gecko", "grove", "harbor", "heron", "lark",
    "lynx", "maple", "meadow", "moth", "orca", "otter", "pebble", "pine", "plum", "quail", "raven",
    "reef", "river", "robin", "sparrow", "spruce", "tiger", "trout", "willow", "wren",
];

pub fn random_run_name() -> String {
    let mut rng = rand::thread_rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("quiet");
    let noun = NOUNS.choose(&mut rng).copied().unwrap_or("orchard");
    format!("{adjective}-{noun}-{}", rng.gen_range(0..1000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_short_and_three_part() {
        for _ in 0..100 {
            let n = super::random_run_name();
            assert_eq!(n.split('-').count(), 3, "{n}");
            assert!(n.len() <= 20, "{n}");
        }
    }
}
