//! Negotiating permessage-deflate in `Sec-WebSocket-Extensions` (RFC 7692 §5, §7.1).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::DeflateConfig;
use crate::handshake::tokens::{is_token, trim_ows};

/// The extension's name (RFC 7692 §7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The parameters of one permessage-deflate offer or response (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateParams {
    /// `server_no_context_takeover` (§7.1.1.1): the server starts every message afresh.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` (§7.1.1.2): the client starts every message afresh.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits` (§7.1.2.1): the largest window the server compresses with.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` (§7.1.2.2): `Some(None)` when present without a value (an offer
    /// saying the client can honour a limit), `Some(Some(n))` with one.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Why a permessage-deflate element is not valid (RFC 7692 §5, §7.1). A client that receives
/// such a response fails the connection; a server declines such an offer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The element is not permessage-deflate.
    #[error("{0:?} is not permessage-deflate")]
    NotPermessageDeflate(String),
    /// A parameter RFC 7692 does not define.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// The same parameter twice in one element.
    #[error("parameter {0:?} appears twice")]
    DuplicateParameter(String),
    /// A parameter with a value it may not have, or without one it needs, or a window size that
    /// is not a decimal integer from 8 to 15 without leading zeros.
    #[error("invalid value for parameter {0:?}")]
    InvalidValue(String),
    /// The server's response has `client_max_window_bits` without a value (§7.1.2.2).
    #[error("client_max_window_bits without a value in a response")]
    MissingClientWindow,
    /// The server accepted permessage-deflate more than once.
    #[error("permessage-deflate accepted more than once")]
    AcceptedTwice,
}

/// Parses one `Sec-WebSocket-Extensions` element that names permessage-deflate, as an offer
/// (a response is an offer's syntax with stricter rules, see [`check_response`]).
///
/// Parameter names are compared without regard to ASCII case; values may be quoted
/// (RFC 6455 §9.1: the unquoted value must be a token).
pub fn parse_params(element: &str) -> Result<DeflateParams, NegotiationError> {
    let mut parts = element.split(';');
    let name = trim_ows(parts.next().unwrap_or_default());
    if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return Err(NegotiationError::NotPermessageDeflate(String::from(name)));
    }
    let mut params = DeflateParams::default();
    for part in parts {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (
                trim_ows(k),
                Some(unquote(trim_ows(v)).ok_or_else(|| bad(k))?),
            ),
            None => (trim_ows(part), None),
        };
        let duplicate = || NegotiationError::DuplicateParameter(String::from(key));
        if key.eq_ignore_ascii_case("server_no_context_takeover") {
            if value.is_some() {
                return Err(bad(key));
            }
            if core::mem::replace(&mut params.server_no_context_takeover, true) {
                return Err(duplicate());
            }
        } else if key.eq_ignore_ascii_case("client_no_context_takeover") {
            if value.is_some() {
                return Err(bad(key));
            }
            if core::mem::replace(&mut params.client_no_context_takeover, true) {
                return Err(duplicate());
            }
        } else if key.eq_ignore_ascii_case("server_max_window_bits") {
            let bits = value
                .as_deref()
                .and_then(window_bits)
                .ok_or_else(|| bad(key))?;
            if params.server_max_window_bits.replace(bits).is_some() {
                return Err(duplicate());
            }
        } else if key.eq_ignore_ascii_case("client_max_window_bits") {
            let bits = match value.as_deref() {
                None => None,
                Some(v) => Some(window_bits(v).ok_or_else(|| bad(key))?),
            };
            if params.client_max_window_bits.replace(bits).is_some() {
                return Err(duplicate());
            }
        } else {
            return Err(NegotiationError::UnknownParameter(String::from(key)));
        }
    }
    Ok(params)
}

fn bad(key: &str) -> NegotiationError {
    NegotiationError::InvalidValue(String::from(trim_ows(key)))
}

/// A parameter value as a token: bare, or a quoted string whose content is a token
/// (RFC 6455 §9.1).
fn unquote(value: &str) -> Option<String> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => {
            let body = rest.strip_suffix('"')?;
            let mut out = String::with_capacity(body.len());
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?),
                    '"' => return None,
                    c => out.push(c),
                }
            }
            out
        }
        None => String::from(value),
    };
    is_token(&inner).then_some(inner)
}

/// A window size: a decimal integer from 8 to 15 without leading zeros (RFC 7692 §7.1.2.1).
fn window_bits(value: &str) -> Option<u8> {
    match value {
        "8" => Some(8),
        "9" => Some(9),
        _ => match value.as_bytes() {
            [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
            _ => None,
        },
    }
}

/// Appends `; name` or `; name=value` to an element.
fn push_param(out: &mut String, name: &str, value: Option<u8>) {
    out.push_str("; ");
    out.push_str(name);
    if let Some(v) = value {
        out.push_str(&format!("={v}"));
    }
}

/// Writes one element from its parameters.
fn write_element(params: &DeflateParams) -> String {
    let mut out = String::from(PERMESSAGE_DEFLATE);
    if params.server_no_context_takeover {
        push_param(&mut out, "server_no_context_takeover", None);
    }
    if params.client_no_context_takeover {
        push_param(&mut out, "client_no_context_takeover", None);
    }
    if let Some(bits) = params.server_max_window_bits {
        push_param(&mut out, "server_max_window_bits", Some(bits));
    }
    if let Some(bits) = params.client_max_window_bits {
        push_param(&mut out, "client_max_window_bits", bits);
    }
    out
}

/// What a client configured with `config` offers, most preferred first: the offer with every
/// request `config` makes of the server, then (when it made any) a plain one, so a server that
/// refuses the requests can still accept compression (RFC 7692 §5: several offers).
///
/// Every offer carries `client_max_window_bits`, so the server may limit our window.
#[must_use]
pub fn client_offer(config: &DeflateConfig) -> Vec<String> {
    let own = config.own_window();
    let peer = config.peer_window();
    let ours = DeflateParams {
        client_no_context_takeover: config.no_context_takeover,
        client_max_window_bits: Some((own < 15).then_some(own)),
        ..DeflateParams::default()
    };
    let full = DeflateParams {
        server_no_context_takeover: config.peer_no_context_takeover,
        server_max_window_bits: (peer < 15).then_some(peer),
        ..ours
    };
    let mut offers = Vec::with_capacity(2);
    offers.push(write_element(&full));
    if full != ours {
        offers.push(write_element(&ours));
    }
    offers
}

/// The server's choice among a request's extension offers (RFC 7692 §5): the first
/// permessage-deflate offer that is valid, answered per `config`, as the response element and
/// the agreed parameters. Invalid offers are declined (skipped), as §5 says; `None` when no
/// offer is acceptable.
///
/// The answer always honours the offer: `server_no_context_takeover` and
/// `server_max_window_bits` requested by the client are granted (a window of 8 bits is granted
/// by never compressing, see [`DeflateConfig::max_window_bits`]), and the client's window is
/// limited to [`DeflateConfig::peer_max_window_bits`] only when the offer allows it.
#[must_use]
pub fn accept_offers<S: AsRef<str>>(
    offers: &[S],
    config: &DeflateConfig,
) -> Option<(String, DeflateParams)> {
    offers.iter().find_map(|offer| {
        let offer = parse_params(offer.as_ref()).ok()?;
        let own = config.own_window();
        let peer = config.peer_window();
        let client_window = match offer.client_max_window_bits {
            None => None,
            Some(limit) => (peer < limit.unwrap_or(15)).then_some(Some(peer)),
        };
        let answer = DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover
                || config.no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || config.peer_no_context_takeover,
            server_max_window_bits: match offer.server_max_window_bits {
                Some(bits) => Some(bits.min(own)),
                None => (own < 15).then_some(own),
            },
            client_max_window_bits: client_window,
        };
        // The client keeps to its own offered limit whether or not the answer repeats it.
        let agreed = DeflateParams {
            client_max_window_bits: client_window.or(offer.client_max_window_bits),
            ..answer
        };
        Some((write_element(&answer), agreed))
    })
}

/// The client's verdict on the extensions a server accepted (RFC 7692 §5.1, §7.1): `Ok(None)`
/// when permessage-deflate is not among them, its parameters when it is and the response is
/// valid, and the reason to fail the connection otherwise (an unknown, repeated or malformed
/// parameter, `client_max_window_bits` without a value, permessage-deflate accepted twice).
///
/// Whether the server accepted an extension we did not offer at all is checked before, by
/// the handshake.
pub fn check_response<S: AsRef<str>>(
    accepted: &[S],
) -> Result<Option<DeflateParams>, NegotiationError> {
    let mut found = None;
    for element in accepted {
        let element = element.as_ref();
        let name = trim_ows(element.split(';').next().unwrap_or_default());
        if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            continue;
        }
        if found.is_some() {
            return Err(NegotiationError::AcceptedTwice);
        }
        let params = parse_params(element)?;
        if params.client_max_window_bits == Some(None) {
            return Err(NegotiationError::MissingClientWindow);
        }
        found = Some(params);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn params(element: &str) -> Result<DeflateParams, NegotiationError> {
        parse_params(element)
    }

    /// RFC 7692 §7.1: every parameter, with and without values, quoted values, any case.
    #[test]
    fn parses_every_parameter() {
        assert_eq!(params("permessage-deflate"), Ok(DeflateParams::default()));
        assert_eq!(
            params(
                "Permessage-Deflate ; server_no_context_takeover;client_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits"
            ),
            Ok(DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(10),
                client_max_window_bits: Some(None),
            })
        );
        assert_eq!(
            params("permessage-deflate; client_max_window_bits=\"15\"")
                .map(|p| p.client_max_window_bits),
            Ok(Some(Some(15)))
        );
        assert_eq!(
            params("permessage-deflate; SERVER_MAX_WINDOW_BITS=8")
                .map(|p| p.server_max_window_bits),
            Ok(Some(8))
        );
    }

    /// RFC 7692 §7.1: unknown, repeated and malformed parameters make the element invalid.
    #[test]
    fn rejects_invalid_parameters() {
        use NegotiationError::*;
        let cases: &[(&str, NegotiationError)] = &[
            (
                "x-webkit-deflate-frame",
                NotPermessageDeflate("x-webkit-deflate-frame".into()),
            ),
            ("permessage-deflate; foo", UnknownParameter("foo".into())),
            ("permessage-deflate; foo=1", UnknownParameter("foo".into())),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                DuplicateParameter("server_no_context_takeover".into()),
            ),
            (
                "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
                DuplicateParameter("client_max_window_bits".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
                DuplicateParameter("server_max_window_bits".into()),
            ),
            (
                "permessage-deflate; server_no_context_takeover=1",
                InvalidValue("server_no_context_takeover".into()),
            ),
            (
                "permessage-deflate; client_no_context_takeover=",
                InvalidValue("client_no_context_takeover".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits",
                InvalidValue("server_max_window_bits".into()),
            ),
        ];
        for (element, err) in cases {
            assert_eq!(params(element), Err(err.clone()), "{element}");
        }
        for value in [
            "7", "16", "0", "08", "010", "-9", "9.0", "", "\"1 0\"", "\"10", "a", "255",
        ] {
            for key in ["server_max_window_bits", "client_max_window_bits"] {
                let element = format!("permessage-deflate; {key}={value}");
                assert_eq!(params(&element), Err(InvalidValue(key.into())), "{element}");
            }
        }
        for bits in 8..=15u8 {
            let element = format!("permessage-deflate; server_max_window_bits={bits}");
            assert_eq!(
                params(&element).map(|p| p.server_max_window_bits),
                Ok(Some(bits))
            );
        }
    }

    /// A default client offers compression and lets the server limit its window; one that asks
    /// things of the server adds a plain fallback offer.
    #[test]
    fn client_offers() {
        assert_eq!(
            client_offer(&DeflateConfig::default()),
            ["permessage-deflate; client_max_window_bits"]
        );
        let mut config = DeflateConfig::low_memory();
        config.max_window_bits = 10;
        config.peer_max_window_bits = 11;
        assert_eq!(
            client_offer(&config),
            [
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=11; client_max_window_bits=10",
                "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
            ]
        );
        for offer in client_offer(&config) {
            assert!(parse_params(&offer).is_ok(), "{offer}");
        }
    }

    /// RFC 7692 §5: the server declines invalid offers and answers the first valid one,
    /// honouring what it asks.
    #[test]
    fn server_picks_the_first_acceptable_offer() {
        let config = DeflateConfig::default();
        let offers = vec![
            "x-unknown",
            "permessage-deflate; bogus",
            "permessage-deflate; server_max_window_bits=10; server_no_context_takeover",
            "permessage-deflate",
        ];
        let (answer, agreed) = accept_offers(&offers, &config).expect("an acceptable offer");
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        );
        assert!(agreed.server_no_context_takeover);
        assert_eq!(agreed.server_max_window_bits, Some(10));
        assert_eq!(accept_offers(&["permessage-deflate; a=b"], &config), None);
        assert_eq!(accept_offers::<&str>(&[], &config), None);

        // The client's window is limited only when the offer allows it.
        let mut small = DeflateConfig::low_memory();
        small.peer_max_window_bits = 10;
        small.max_window_bits = 12;
        let (answer, agreed) = accept_offers(&["permessage-deflate"], &small).unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12"
        );
        assert_eq!(agreed.client_max_window_bits, None);
        let (answer, _) =
            accept_offers(&["permessage-deflate; client_max_window_bits"], &small).unwrap();
        assert!(answer.ends_with("client_max_window_bits=10"), "{answer}");
        let (answer, agreed) =
            accept_offers(&["permessage-deflate; client_max_window_bits=9"], &small).unwrap();
        assert!(!answer.contains("client_max_window_bits"), "{answer}");
        assert_eq!(agreed.client_max_window_bits, Some(Some(9)));
        // An answer is a valid response.
        assert!(check_response(&[answer]).is_ok());
    }

    /// RFC 7692 §5.1: the client fails on an invalid response.
    #[test]
    fn client_checks_the_response() {
        assert_eq!(check_response::<&str>(&[]), Ok(None));
        assert_eq!(check_response(&["x-other"]), Ok(None));
        assert_eq!(
            check_response(&["permessage-deflate; client_max_window_bits=9"]),
            Ok(Some(DeflateParams {
                client_max_window_bits: Some(Some(9)),
                ..DeflateParams::default()
            }))
        );
        assert_eq!(
            check_response(&["permessage-deflate; client_max_window_bits"]),
            Err(NegotiationError::MissingClientWindow)
        );
        assert_eq!(
            check_response(&["permessage-deflate", "permessage-deflate"]),
            Err(NegotiationError::AcceptedTwice)
        );
        assert_eq!(
            check_response(&["permessage-deflate; server_max_window_bits=16"]),
            Err(NegotiationError::InvalidValue(
                "server_max_window_bits".into()
            ))
        );
        assert_eq!(
            check_response(&["permessage-deflate; mystery"]),
            Err(NegotiationError::UnknownParameter("mystery".into()))
        );
    }
}
