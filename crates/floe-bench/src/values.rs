//! The kinds of values the workloads write (`--value-kind`): incompressible bytes, bytes
//! that compress to half, or JSON-like text, each cut from a pool generated once from the
//! seed, so that making a value costs the timed loop a slice and nothing more.
//!
//! db_bench does the same: its `RandomGenerator` fills a buffer of 1 MiB once and hands out
//! slices of it. For `half`, each value is a random prefix of half its length followed by
//! repeats of that prefix, as db_bench's `CompressibleString` makes its pieces at a
//! compression ratio of 0.5. db_bench draws the random part from the 95 printable ASCII
//! characters, which an entropy coder (zstd, zlib) shrinks below half; here it is uniform
//! bytes, so that every compressor, LZ4 included, finds exactly the repeated half.

use std::fmt;
use std::str::FromStr;

use anyhow::bail;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Bytes the pool holds at least; far larger than a value, so that neighbouring values do
/// not repeat each other.
const POOL_BYTES: usize = 1 << 20;

/// What the values of a run look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValueKind {
    /// Uniformly random bytes: no compressor shrinks them (the default).
    #[default]
    Random,
    /// A random first half and a repeat of it, db_bench's compression ratio of 0.5.
    Half,
    /// JSON-like records: field names from a small vocabulary, numbers, short words.
    Text,
}

impl ValueKind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [ValueKind; 3] = [ValueKind::Random, ValueKind::Half, ValueKind::Text];

    /// The kind's name on the command line and in results.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Random => "random",
            ValueKind::Half => "half",
            ValueKind::Text => "text",
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ValueKind {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<ValueKind> {
        match ValueKind::ALL.into_iter().find(|kind| kind.name() == name) {
            Some(kind) => Ok(kind),
            None => bail!("unknown value kind {name:?} (kinds: random, half, text)"),
        }
    }
}

impl serde::Serialize for ValueKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Where in the pool a value may start.
#[derive(Debug, Clone)]
enum Starts {
    /// At any offset that leaves room for a whole value.
    Anywhere,
    /// At a multiple of the value size: the pool is a row of whole values.
    Pieces,
    /// At one of these offsets: the starts of records.
    At(Vec<usize>),
}

/// Bytes that values of one size and kind are cut from.
#[derive(Debug, Clone)]
pub struct ValuePool {
    bytes: Vec<u8>,
    value_size: usize,
    starts: Starts,
}

impl ValuePool {
    /// A pool of values of `value_size` bytes of `kind`, generated from `seed`.
    #[must_use]
    pub fn new(kind: ValueKind, value_size: usize, seed: u64) -> ValuePool {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x0dd5_eed5);
        let target = POOL_BYTES.max(4 * value_size) + value_size;
        let (bytes, starts) = match kind {
            ValueKind::Random => {
                let mut bytes = vec![0u8; target];
                rng.fill(&mut bytes[..]);
                (bytes, Starts::Anywhere)
            }
            ValueKind::Half => {
                let pieces = target / value_size.max(1);
                let mut bytes = Vec::with_capacity(pieces * value_size);
                for _ in 0..pieces {
                    half_compressible(&mut rng, value_size, &mut bytes);
                }
                (bytes, Starts::Pieces)
            }
            ValueKind::Text => {
                let mut bytes = Vec::with_capacity(target + 256);
                let mut starts = Vec::new();
                while bytes.len() < target {
                    starts.push(bytes.len());
                    json_record(&mut rng, &mut bytes);
                }
                // Record 0 starts at 0 and the pool holds at least one value, so at least
                // one start is kept.
                starts.retain(|&start| start + value_size <= bytes.len());
                (bytes, Starts::At(starts))
            }
        };
        ValuePool {
            bytes,
            value_size,
            starts,
        }
    }

    /// The value that `hash` (any well-mixed number) picks from the pool.
    #[must_use]
    pub fn value(&self, hash: u64) -> &[u8] {
        let offset = match &self.starts {
            Starts::Anywhere => {
                let span = (self.bytes.len() - self.value_size) as u64;
                (hash % span.max(1)) as usize
            }
            Starts::Pieces => {
                let pieces = (self.bytes.len() / self.value_size.max(1)) as u64;
                (hash % pieces.max(1)) as usize * self.value_size
            }
            Starts::At(starts) => starts[(hash % starts.len() as u64) as usize],
        };
        &self.bytes[offset..offset + self.value_size]
    }
}

/// Appends `len` bytes to `out`: `len / 2` random bytes (at least one), then that prefix
/// repeated up to the length, as db_bench's `CompressibleString` at a ratio of 0.5.
fn half_compressible(rng: &mut SmallRng, len: usize, out: &mut Vec<u8>) {
    let raw = (len / 2).max(1).min(len);
    let start = out.len();
    out.resize(start + raw, 0);
    rng.fill(&mut out[start..]);
    while out.len() - start < len {
        let take = raw.min(len - (out.len() - start));
        out.extend_from_within(start..start + take);
    }
}

/// Field names of the JSON-like records, each with the kind of value it holds.
const FIELDS: [(&str, Field); 16] = [
    ("id", Field::Integer),
    ("user", Field::Word),
    ("name", Field::Words),
    ("email", Field::Email),
    ("city", Field::Word),
    ("country", Field::Word),
    ("status", Field::Word),
    ("score", Field::Decimal),
    ("count", Field::Integer),
    ("created", Field::Date),
    ("updated", Field::Date),
    ("tags", Field::List),
    ("active", Field::Flag),
    ("level", Field::Integer),
    ("price", Field::Decimal),
    ("note", Field::Words),
];

/// The short words that string values are made of.
const WORDS: [&str; 48] = [
    "alpha", "amber", "apple", "atlas", "berlin", "blue", "bravo", "cedar", "coral", "delta",
    "echo", "ember", "fern", "frost", "gold", "green", "harbor", "iris", "jade", "juno", "kilo",
    "lima", "lisbon", "maple", "mint", "nova", "oak", "olive", "onyx", "oslo", "pearl", "pine",
    "quartz", "red", "river", "ruby", "sage", "slate", "solar", "tango", "teal", "tokyo", "umber",
    "violet", "willow", "xenon", "yarrow", "zephyr",
];

/// The kind of value a field of a record holds.
#[derive(Debug, Clone, Copy)]
enum Field {
    Integer,
    Decimal,
    Word,
    Words,
    Email,
    Date,
    List,
    Flag,
}

/// Appends one JSON-like record and a newline to `out`: three to eight fields of
/// [`FIELDS`], in vocabulary order, with values drawn from `rng`.
fn json_record(rng: &mut SmallRng, out: &mut Vec<u8>) {
    use std::io::Write as _;

    let word = |rng: &mut SmallRng| WORDS[rng.random_range(0..WORDS.len())];
    let wanted = rng.random_range(3..=8);
    let mut written = 0;
    out.push(b'{');
    for (index, &(name, field)) in FIELDS.iter().enumerate() {
        // Each remaining field is taken with the chance that leaves `wanted` in all.
        let left = FIELDS.len() - index;
        if written == wanted || rng.random_range(0..left) >= wanted - written {
            continue;
        }
        if written > 0 {
            out.push(b',');
        }
        written += 1;
        // Writes to a Vec cannot fail, so their results are ignored.
        let _ = write!(out, "\"{name}\":");
        let _ = match field {
            Field::Integer => write!(out, "{}", rng.random_range(0..100_000u32)),
            Field::Decimal => write!(
                out,
                "{}.{:02}",
                rng.random_range(0..1000u32),
                rng.random_range(0..100u32)
            ),
            Field::Word => write!(out, "\"{}\"", word(rng)),
            Field::Words => write!(out, "\"{} {}\"", word(rng), word(rng)),
            Field::Email => write!(out, "\"{}.{}@example.com\"", word(rng), word(rng)),
            Field::Date => write!(
                out,
                "\"20{:02}-{:02}-{:02}\"",
                rng.random_range(10..30u32),
                rng.random_range(1..=12u32),
                rng.random_range(1..=28u32)
            ),
            Field::List => {
                let items: Vec<String> = (0..rng.random_range(1..=3))
                    .map(|_| format!("\"{}\"", word(rng)))
                    .collect();
                write!(out, "[{}]", items.join(","))
            }
            Field::Flag => write!(out, "{}", rng.random_bool(0.5)),
        };
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The share of `bytes` that a greedy LZ77 parse (matches of at least 4 bytes found
    /// through a table of each 4-gram's last position, as LZ4 finds them) leaves as
    /// literals: about the size an LZ compressor without entropy coding gets down to.
    fn lz_ratio(bytes: &[u8]) -> f64 {
        let mut last: HashMap<[u8; 4], usize> = HashMap::new();
        let mut literals = 0usize;
        let mut i = 0;
        while i < bytes.len() {
            let Some(gram) = bytes.get(i..i + 4) else {
                literals += bytes.len() - i;
                break;
            };
            let gram: [u8; 4] = gram.try_into().expect("four bytes");
            let found = last.insert(gram, i);
            match found {
                Some(at) => {
                    let len = (0..bytes.len() - i)
                        .take_while(|&n| bytes[at + n] == bytes[i + n])
                        .count();
                    for j in i + 1..(i + len).min(bytes.len().saturating_sub(3)) {
                        last.insert(bytes[j..j + 4].try_into().expect("four bytes"), j);
                    }
                    i += len;
                }
                None => {
                    literals += 1;
                    i += 1;
                }
            }
        }
        literals as f64 / bytes.len().max(1) as f64
    }

    /// `count` consecutive values of `pool` as one buffer, as a table block holds them.
    fn block(pool: &ValuePool, count: u64) -> Vec<u8> {
        (0..count)
            .flat_map(|i| pool.value(crate::keys::scramble(i)).to_vec())
            .collect()
    }

    #[test]
    fn the_estimate_sees_random_bytes_as_incompressible_and_repeats_as_free() {
        let random = ValuePool::new(ValueKind::Random, 4000, 1);
        assert!(lz_ratio(random.value(0)) > 0.99);
        assert!(lz_ratio(&[7u8; 4000]) < 0.01);
    }

    #[test]
    fn values_have_the_asked_length_and_repeat_for_the_same_hash() {
        for kind in ValueKind::ALL {
            for size in [0, 1, 7, 100, 4096, 3 << 20] {
                let pool = ValuePool::new(kind, size, 9);
                for hash in [0, 1, 12345, u64::MAX] {
                    assert_eq!(pool.value(hash).len(), size, "{kind} of {size}");
                    assert_eq!(pool.value(hash), pool.value(hash));
                }
            }
            assert_eq!(
                ValuePool::new(kind, 100, 3).value(77),
                ValuePool::new(kind, 100, 3).value(77),
                "{kind} is not deterministic from its seed"
            );
        }
    }

    #[test]
    fn random_values_do_not_compress() {
        let pool = ValuePool::new(ValueKind::Random, 100, 5);
        let ratio = lz_ratio(&block(&pool, 40));
        assert!(ratio > 0.97, "random values compress to {ratio:.3}");
    }

    #[test]
    fn half_values_compress_to_about_half() {
        for size in [100, 1000] {
            let pool = ValuePool::new(ValueKind::Half, size, 5);
            let one = pool.value(3);
            assert_eq!(one[..size / 2], one[size / 2..], "the second half repeats");
            // A block of values: each compresses alone, and values do not repeat each
            // other.
            let ratio = lz_ratio(&block(&pool, 40));
            assert!(
                (0.45..=0.55).contains(&ratio),
                "half values of {size} bytes compress to {ratio:.3}"
            );
        }
        // An odd length keeps the prefix at half, rounded down.
        let odd = ValuePool::new(ValueKind::Half, 101, 5);
        let ratio = lz_ratio(&block(&odd, 40));
        assert!((0.45..=0.55).contains(&ratio), "{ratio:.3}");
    }

    #[test]
    fn text_values_are_json_like_and_compress() {
        let pool = ValuePool::new(ValueKind::Text, 200, 5);
        let value = pool.value(11);
        assert!(value.starts_with(b"{\""), "a value starts at a record");
        assert!(
            value
                .iter()
                .all(|&b| b == b'\n' || (b' '..=b'~').contains(&b)),
            "text values are printable"
        );
        let text = String::from_utf8_lossy(&block(&pool, 40)).into_owned();
        assert!(FIELDS.iter().any(|(name, _)| text.contains(name)));
        let ratio = lz_ratio(text.as_bytes());
        assert!(ratio < 0.7, "text values compress only to {ratio:.3}");
        assert!(
            ratio > 0.1,
            "text values compress to {ratio:.3}: too repetitive"
        );
    }

    #[test]
    fn kinds_parse_by_name() {
        for kind in ValueKind::ALL {
            assert_eq!(kind.name().parse::<ValueKind>().expect("parses"), kind);
        }
        assert!("zeros".parse::<ValueKind>().is_err());
        assert_eq!(ValueKind::default(), ValueKind::Random);
    }
}
