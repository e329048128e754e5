//! How keys and values are written on the command line and shown: escaped UTF-8 text (the
//! default), hexadecimal or base64, the same for input and output so that what a command
//! prints can be given back to another.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The notation of keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8 text; `\\`, `\n`, `\r`, `\t` and `\xNN` stand for a backslash, the control
    /// characters and any other byte that is not printable text.
    Text,
    /// Two hexadecimal digits per byte (lower case when shown, either case when given).
    Hex,
    /// Base64 with the standard alphabet and padding.
    Base64,
}

impl Encoding {
    /// The bytes that `text` stands for; `what` names the argument in the error.
    pub(crate) fn parse(self, text: &str, what: &str) -> Result<Vec<u8>, String> {
        let parsed = match self {
            Encoding::Text => unescape(text),
            Encoding::Hex => unhex(text),
            Encoding::Base64 => STANDARD
                .decode(text)
                .map_err(|err| format!("it is not base64 ({err})")),
        };
        parsed.map_err(|why| format!("bad {what} {text:?}: {why}"))
    }

    /// `bytes` in this notation.
    pub(crate) fn render(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Text => escape(bytes),
            Encoding::Hex => {
                let mut out = String::with_capacity(bytes.len() * 2);
                for byte in bytes {
                    push_hex(&mut out, *byte);
                }
                out
            }
            Encoding::Base64 => STANDARD.encode(bytes),
        }
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, byte: u8) {
    out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
}

/// `bytes` as text: valid UTF-8 as itself, except the backslash and control characters,
/// which are escaped, and every byte of invalid UTF-8 as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        out.push_str("\\x");
                        push_hex(&mut out, byte);
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str("\\x");
            push_hex(&mut out, *byte);
        }
    }
    out
}

/// The value of one hexadecimal digit.
fn hex_digit(c: char) -> Result<u8, String> {
    c.to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or_else(|| format!("{c:?} is not a hexadecimal digit"))
}

/// The bytes of escaped text: the inverse of [`escape`].
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('\\') => out.push(b'\\'),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('x') => {
                let (Some(high), Some(low)) = (chars.next(), chars.next()) else {
                    return Err("\\x needs two hexadecimal digits".to_owned());
                };
                out.push(hex_digit(high)? << 4 | hex_digit(low)?);
            }
            Some(other) => {
                return Err(format!(
                    "unknown escape \\{other} (write \\\\ for a backslash)"
                ));
            }
            None => return Err("it ends in a lone backslash (write \\\\ for one)".to_owned()),
        }
    }
    Ok(out)
}

/// The bytes of a hexadecimal string.
fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = text.chars().collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "it has {} hexadecimal digits, not an even number",
            digits.len()
        ));
    }
    digits
        .chunks_exact(2)
        .map(|pair| Ok(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let samples: [&[u8]; 5] = [b"", b"hello", "é\u{7f}\\".as_bytes(), &all, b"\xff\xfe"];
        for encoding in [Encoding::Text, Encoding::Hex, Encoding::Base64] {
            for sample in samples {
                let shown = encoding.render(sample);
                assert_eq!(
                    encoding.parse(&shown, "key").as_deref(),
                    Ok(sample),
                    "{encoding:?} {shown}"
                );
            }
        }
    }

    #[test]
    fn text_escapes_only_what_is_not_printable() {
        assert_eq!(Encoding::Text.render("día\tuno".as_bytes()), "día\\tuno");
        assert_eq!(Encoding::Text.render(b"a\x00\xffb\\"), "a\\x00\\xffb\\\\");
        assert_eq!(Encoding::Hex.render(b"\x01\xab"), "01ab");
        assert_eq!(Encoding::Hex.parse("01AB", "key").unwrap(), b"\x01\xab");
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for (encoding, text) in [
            (Encoding::Hex, "abc"),
            (Encoding::Hex, "zz"),
            (Encoding::Base64, "***"),
            (Encoding::Text, "a\\q"),
            (Encoding::Text, "a\\"),
            (Encoding::Text, "\\x4"),
        ] {
            let err = encoding.parse(text, "key").unwrap_err();
            assert!(err.starts_with("bad key"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
