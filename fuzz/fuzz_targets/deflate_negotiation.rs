//! The permessage-deflate negotiation (RFC 7692 §5, §7.1): arbitrary `Sec-WebSocket-Extensions`
//! elements through the parser, the server's choice and the client's check. Oracle: no panic;
//! whatever the server answers is a response the client accepts, with the same parameters it
//! agreed to, and every window it names is 8 to 15 bits.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tether::deflate::{DeflateConfig, accept_offers, check_response, client_offer, parse_params};

#[derive(Arbitrary, Debug)]
struct Input {
    offers: Vec<String>,
    level: u8,
    max_window_bits: u8,
    peer_max_window_bits: u8,
    no_context_takeover: bool,
    peer_no_context_takeover: bool,
}

fn window_ok(bits: Option<u8>) -> bool {
    bits.is_none_or(|b| (8..=15).contains(&b))
}

fuzz_target!(|input: Input| {
    let mut config = DeflateConfig::default();
    config.level = input.level;
    config.max_window_bits = input.max_window_bits;
    config.peer_max_window_bits = input.peer_max_window_bits;
    config.no_context_takeover = input.no_context_takeover;
    config.peer_no_context_takeover = input.peer_no_context_takeover;
    for offer in &input.offers {
        if let Ok(p) = parse_params(offer) {
            assert!(window_ok(p.server_max_window_bits));
            assert!(window_ok(p.client_max_window_bits.flatten()));
        }
    }
    let _ = check_response(&input.offers);
    // Our own offers parse.
    for offer in client_offer(&config) {
        assert!(parse_params(&offer).is_ok(), "{offer}");
    }
    if let Some((answer, agreed)) = accept_offers(&input.offers, &config) {
        let checked = check_response(&[answer.as_str()])
            .expect("the server's answer is a valid response")
            .expect("it accepts permessage-deflate");
        assert_eq!(
            checked.server_no_context_takeover,
            agreed.server_no_context_takeover
        );
        assert_eq!(
            checked.client_no_context_takeover,
            agreed.client_no_context_takeover
        );
        assert_eq!(
            checked.server_max_window_bits,
            agreed.server_max_window_bits
        );
        assert!(window_ok(agreed.server_max_window_bits));
        assert!(window_ok(agreed.client_max_window_bits.flatten()));
    }
});
