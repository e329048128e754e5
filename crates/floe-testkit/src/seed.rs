//! The seed of a randomized test: given by `FLOE_SEED` to replay a run, fresh otherwise.

/// The environment variable that replays a randomized test with the seed it names.
const SEED_VAR: &str = "FLOE_SEED";

/// The seed of the randomized test `test`: the value of `FLOE_SEED` when it is set, so
/// that a failure replays, otherwise a fresh random one. Either way it prints
/// `{test}: seed {seed} (replay with FLOE_SEED={seed})`, which the test harness shows
/// with the output of a failing test.
///
/// # Panics
/// If `FLOE_SEED` is set but is not a `u64` (surrounding white space is allowed): a
/// mistyped seed must not silently run another case than the one asked for.
#[track_caller]
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var(SEED_VAR) {
        Ok(text) => parse(&text),
        Err(_) => rand::random(),
    };
    println!("{test}: seed {seed} (replay with {SEED_VAR}={seed})");
    seed
}

/// The seed that the value `text` of `FLOE_SEED` names.
#[track_caller]
fn parse(text: &str) -> u64 {
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{SEED_VAR} must be a u64, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_parses_with_surrounding_white_space() {
        assert_eq!(parse("42"), 42);
        assert_eq!(parse(" 18446744073709551615\n"), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "FLOE_SEED must be a u64, got \"0x2a\"")]
    fn a_mistyped_seed_is_refused() {
        parse("0x2a");
    }
}
