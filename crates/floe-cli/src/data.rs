//! The commands that read and write keys: `get`, `put`, `delete`, `delete-range` and
//! `scan`.

use std::io::Write;
use std::ops::Bound;

use serde::Serialize;

use crate::args::ScanArgs;
use crate::context::{Context, close};
use crate::failure::{Failure, Outcome};

/// A key and its value, as `get` and `scan` print them in JSON.
#[derive(Serialize)]
struct Pair {
    key: String,
    value: Option<String>,
}

/// `get KEY`: prints the value; exits 1 if the key has none.
pub(crate) fn get(ctx: &mut Context, key: &str, keyspace: &str) -> Outcome {
    let key = ctx.parse(key, "key")?;
    let db = ctx.open()?;
    let value = ctx.keyspace(&db, keyspace)?.get(&key)?;
    close(db)?;
    if ctx.json {
        let pair = Pair {
            key: ctx.show(&key),
            value: value.as_deref().map(|value| ctx.show(value)),
        };
        ctx.print_json(&pair)?;
    } else if let Some(value) = &value {
        let shown = ctx.show(value);
        writeln!(ctx.out, "{shown}")?;
    }
    match value {
        Some(_) => Ok(()),
        None if ctx.json => Err(Failure::NotFound),
        None => Err(Failure::Usage(format!(
            "key \"{}\" not found in keyspace {keyspace:?}",
            ctx.show(&key)
        ))),
    }
}

/// `put KEY VALUE`.
pub(crate) fn put(ctx: &mut Context, key: &str, value: &str, keyspace: &str) -> Outcome {
    let key = ctx.parse(key, "key")?;
    let value = ctx.parse(value, "value")?;
    let db = ctx.open()?;
    ctx.keyspace(&db, keyspace)?.put(key, value)?;
    close(db)
}

/// `delete KEY`.
pub(crate) fn delete(ctx: &mut Context, key: &str, keyspace: &str) -> Outcome {
    let key = ctx.parse(key, "key")?;
    let db = ctx.open()?;
    ctx.keyspace(&db, keyspace)?.delete(key)?;
    close(db)
}

/// `delete-range FROM TO`: deletes `[FROM, TO)`.
pub(crate) fn delete_range(ctx: &mut Context, from: &str, to: &str, keyspace: &str) -> Outcome {
    let from = ctx.parse(from, "range start")?;
    let to = ctx.parse(to, "range end")?;
    let db = ctx.open()?;
    ctx.keyspace(&db, keyspace)?.delete_range(from..to)?;
    close(db)
}

/// The smallest key past every key that starts with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The bounds of a scan: the intersection of the prefix's keys and `[from, to)`.
fn scan_bounds(
    prefix: Option<Vec<u8>>,
    from: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefix_end = prefix.as_deref().map(prefix_end);
    let lower = match (prefix, from) {
        (Some(prefix), Some(from)) => Some(prefix.max(from)),
        (prefix, from) => prefix.or(from),
    };
    let upper = match (prefix_end, to) {
        // A prefix of 0xff bytes alone has no end: only `to` bounds it.
        (Some(Some(end)), Some(to)) => Some(end.min(to)),
        (Some(Some(end)), None) => Some(end),
        (_, to) => to,
    };
    (
        lower.map_or(Bound::Unbounded, Bound::Included),
        upper.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// `scan`: prints `key<TAB>value` lines, or a JSON array of pairs.
pub(crate) fn scan(ctx: &mut Context, args: &ScanArgs) -> Outcome {
    let parse = |arg: &Option<String>, what| arg.as_deref().map(|t| ctx.parse(t, what)).transpose();
    let prefix = parse(&args.prefix, "prefix")?;
    let from = parse(&args.from, "start key")?;
    let to = parse(&args.to, "end key")?;
    let db = ctx.open()?;
    let keyspace = ctx.keyspace(&db, &args.keyspace.keyspace)?;
    let range = scan_bounds(prefix, from, to);
    let empty = match &range {
        (Bound::Included(lower), Bound::Excluded(upper)) => lower >= upper,
        _ => false,
    };
    let iter = keyspace.range(range);
    let iter: Box<dyn Iterator<Item = floe::Result<(floe::Bytes, floe::Bytes)>>> = if empty {
        // An inverted range holds no key.
        Box::new(std::iter::empty())
    } else if args.reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    let iter = iter.take(args.limit.unwrap_or(usize::MAX));
    if ctx.json {
        let pairs = iter
            .map(|pair| {
                let (key, value) = pair?;
                Ok(Pair {
                    key: ctx.show(&key),
                    value: Some(ctx.show(&value)),
                })
            })
            .collect::<Outcome<Vec<Pair>>>()?;
        ctx.print_json(&pairs)?;
    } else {
        for pair in iter {
            let (key, value) = pair?;
            let (key, value) = (ctx.show(&key), ctx.show(&value));
            writeln!(ctx.out, "{key}\t{value}")?;
        }
    }
    close(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(
        prefix: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let own = |s: Option<&str>| s.map(|s| s.as_bytes().to_vec());
        scan_bounds(own(prefix), own(from), own(to))
    }

    #[test]
    fn a_prefix_and_a_range_intersect() {
        let key = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            bounds(Some("ab"), None, None),
            (Bound::Included(key("ab")), Bound::Excluded(key("ac")))
        );
        assert_eq!(
            bounds(Some("ab"), Some("abc"), Some("abd")),
            (Bound::Included(key("abc")), Bound::Excluded(key("abd")))
        );
        assert_eq!(
            bounds(Some("ab"), Some("a"), Some("b")),
            (Bound::Included(key("ab")), Bound::Excluded(key("ac")))
        );
        assert_eq!(
            bounds(None, None, None),
            (Bound::Unbounded, Bound::Unbounded)
        );
        assert_eq!(
            scan_bounds(Some(vec![b'a', 0xff]), None, None),
            (Bound::Included(vec![b'a', 0xff]), Bound::Excluded(key("b")))
        );
        assert_eq!(
            scan_bounds(Some(vec![0xff]), None, None),
            (Bound::Included(vec![0xff]), Bound::Unbounded)
        );
    }
}
