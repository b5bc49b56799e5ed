//! The `tether-resume` extension's parameters (`Sec-WebSocket-Extensions`, RFC 6455 §9.1).

use alloc::format;
use alloc::string::String;

use super::token::SessionToken;
use crate::handshake::tokens::trim_ows;

/// The extension's registered-style name, as it appears in `Sec-WebSocket-Extensions`.
pub const EXTENSION: &str = "tether-resume";

/// What one `tether-resume` element says: a client's offer or a server's answer.
///
/// - Offer, new session: `tether-resume`.
/// - Offer, resume: `tether-resume; session=<32 hex>; received=<n>`: the token the server last
///   gave, and how many of the server's data messages the client has received in the session.
/// - Answer, new session: `tether-resume; session=<32 hex>` (a client that asked to resume
///   learns that its session could not be).
/// - Answer, resumed: `tether-resume; session=<32 hex>; received=<n>`: the new token, and how
///   many of the client's data messages the server has received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeParams {
    /// `session=`: the token.
    pub session: Option<SessionToken>,
    /// `received=`: the sender's cumulative count of data messages received in the session.
    pub received: Option<u64>,
}

impl ResumeParams {
    /// The element as written in `Sec-WebSocket-Extensions`.
    #[must_use]
    pub fn to_element(&self) -> String {
        let mut out = String::from(EXTENSION);
        if let Some(token) = &self.session {
            out.push_str(&format!("; session={token}"));
        }
        if let Some(n) = self.received {
            out.push_str(&format!("; received={n}"));
        }
        out
    }

    /// Parses one extension element. `None` when it is not `tether-resume`; `Some(Err(..))`
    /// when it is, with parameters we do not understand (a duplicate, an unknown name, a bad
    /// value, `received` without `session`).
    #[must_use]
    pub fn parse(element: &str) -> Option<Result<ResumeParams, String>> {
        let mut parts = element.split(';');
        let name = trim_ows(parts.next().unwrap_or_default());
        if !name.eq_ignore_ascii_case(EXTENSION) {
            return None;
        }
        Some(parse_params(parts))
    }
}

fn parse_params<'a>(parts: impl Iterator<Item = &'a str>) -> Result<ResumeParams, String> {
    let mut params = ResumeParams::default();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .map(|(k, v)| (trim_ows(k), trim_ows(v).trim_matches('"')))
            .ok_or_else(|| format!("parameter {:?} has no value", trim_ows(part)))?;
        if key.eq_ignore_ascii_case("session") {
            let token = SessionToken::parse(value)
                .ok_or_else(|| String::from("session is not 32 hex digits"))?;
            if params.session.replace(token).is_some() {
                return Err(String::from("duplicate session parameter"));
            }
        } else if key.eq_ignore_ascii_case("received") {
            let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| digits)
                .ok_or_else(|| String::from("received is not a decimal count"))?;
            if params.received.replace(n).is_some() {
                return Err(String::from("duplicate received parameter"));
            }
        } else {
            return Err(format!("unknown parameter {key:?}"));
        }
    }
    if params.received.is_some() && params.session.is_none() {
        return Err(String::from("received without session"));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip() {
        let token = SessionToken::parse("000102030405060708090a0b0c0d0e0f").unwrap();
        for params in [
            ResumeParams::default(),
            ResumeParams {
                session: Some(token),
                received: None,
            },
            ResumeParams {
                session: Some(token),
                received: Some(u64::MAX),
            },
        ] {
            let element = params.to_element();
            assert_eq!(ResumeParams::parse(&element), Some(Ok(params)), "{element}");
        }
        assert_eq!(
            ResumeParams::parse(
                "tether-resume; session=000102030405060708090a0b0c0d0e0f; received=7"
            )
            .unwrap()
            .unwrap()
            .received,
            Some(7)
        );
    }

    #[test]
    fn bad_elements_are_errors_not_guesses() {
        assert_eq!(ResumeParams::parse("permessage-deflate"), None);
        for bad in [
            "tether-resume; received=1",
            "tether-resume; session=00",
            "tether-resume; session=000102030405060708090a0b0c0d0e0f; received=-1",
            "tether-resume; session=000102030405060708090a0b0c0d0e0f; received=+1",
            "tether-resume; foo=1",
            "tether-resume; session",
        ] {
            assert!(matches!(ResumeParams::parse(bad), Some(Err(_))), "{bad}");
        }
    }
}
