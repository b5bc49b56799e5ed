//! HTTP field syntax shared by both sides of the handshake: tokens, field values and comma
//! separated lists (RFC 9110 §5.5, §5.6).

use alloc::string::String;
use alloc::vec::Vec;

use super::error::HeaderError;

/// Whether `byte` is a `tchar`, a character allowed in a token (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Whether `s` is a non-empty token (RFC 9110 §5.6.2). Header names, subprotocol names
/// (RFC 6455 §4.1) and extension names (RFC 6455 §9.1) are tokens.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `value` can be written as a field value without changing the message's framing:
/// visible characters, spaces and tabs, no CR, LF or NUL (RFC 9110 §5.5).
pub(crate) fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// Trims spaces and tabs (`OWS`, RFC 9110 §5.6.3) from both ends.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// The non-empty elements of a comma-separated list, trimmed (RFC 9110 §5.6.1). A comma inside
/// a quoted string (extension parameters may be quoted, RFC 6455 §9.1) does not split.
pub(crate) fn list_elements(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    core::iter::from_fn(move || {
        loop {
            let s = rest?;
            let end = top_level_comma(s);
            let (element, next) = match end {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            };
            rest = next;
            let element = trim_ows(element);
            if !element.is_empty() {
                return Some(element);
            }
        }
    })
}

/// The index of the first comma in `s` that is not inside a quoted string.
fn top_level_comma(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == b',' && !quoted {
            return Some(i);
        }
    }
    None
}

/// Whether the comma-separated list `value` has an element equal to `token`, ignoring ASCII
/// case (`Connection: keep-alive, Upgrade` contains `upgrade`, RFC 9110 §7.6.1).
pub(crate) fn list_contains(value: &str, token: &str) -> bool {
    list_elements(value).any(|element| element.eq_ignore_ascii_case(token))
}

/// The name of an extension offer or response element: the token before its first `;`
/// (RFC 6455 §9.1).
pub(crate) fn extension_name(element: &str) -> &str {
    trim_ows(element.split(';').next().unwrap_or(""))
}

/// Appends the elements of every value to `out` (repeated header fields combine into one list,
/// RFC 9110 §5.3).
pub(crate) fn collect_elements<'a>(values: impl Iterator<Item = &'a str>, out: &mut Vec<String>) {
    for value in values {
        out.extend(list_elements(value).map(String::from));
    }
}

/// Checks that `name: value` can be written without corrupting the message and is not one of
/// the `reserved` fields the handshake writes itself.
pub(crate) fn check_field(name: &str, value: &str, reserved: &[&str]) -> Result<(), HeaderError> {
    if !is_token(name) {
        return Err(HeaderError::InvalidName(name.into()));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(HeaderError::Reserved(name.into()));
    }
    if !is_field_value(value) {
        return Err(HeaderError::InvalidValue(name.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn tokens() {
        assert!(is_token("chat"));
        assert!(is_token("v2.bookings.example.net"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a,b"));
        assert!(!is_token("a\r\n"));
    }

    #[test]
    fn field_values() {
        assert!(is_field_value("Bearer abc=="));
        assert!(is_field_value("a\tb"));
        assert!(is_field_value(""));
        assert!(!is_field_value("a\r\nInjected: 1"));
        assert!(!is_field_value("a\0"));
    }

    #[test]
    fn lists_split_and_trim() {
        let v: Vec<&str> = list_elements(" a ,b,, \t c\t,").collect();
        assert_eq!(v, vec!["a", "b", "c"]);
        assert_eq!(list_elements("").count(), 0);
        assert_eq!(list_elements(" , ,").count(), 0);
    }

    #[test]
    fn quoted_commas_do_not_split() {
        let v: Vec<&str> = list_elements(r#"foo; x="a,b", bar; y="q\"," , baz"#).collect();
        assert_eq!(v, vec![r#"foo; x="a,b""#, r#"bar; y="q\",""#, "baz"]);
    }

    #[test]
    fn contains_ignores_case() {
        assert!(list_contains("keep-alive, Upgrade", "upgrade"));
        assert!(list_contains("UPGRADE", "upgrade"));
        assert!(!list_contains("upgrade-insecure", "upgrade"));
        assert!(!list_contains("", "upgrade"));
    }

    #[test]
    fn fields() {
        assert_eq!(check_field("X-A", "1", &["Host"]), Ok(()));
        assert_eq!(
            check_field("host", "1", &["Host"]),
            Err(HeaderError::Reserved("host".into()))
        );
        assert_eq!(
            check_field("X A", "1", &[]),
            Err(HeaderError::InvalidName("X A".into()))
        );
        assert_eq!(
            check_field("X", "1\n", &[]),
            Err(HeaderError::InvalidValue("X".into()))
        );
    }

    #[test]
    fn extension_names() {
        assert_eq!(
            extension_name("permessage-deflate; client_max_window_bits"),
            "permessage-deflate"
        );
        assert_eq!(extension_name(" x-foo "), "x-foo");
        assert_eq!(extension_name(""), "");
    }
}
