//! Who the client is: the connection's peer, or — when that peer is a proxy
//! the service was told to trust — the address the proxies forwarded.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::{FORWARDED, HeaderName};
use forwarded_header_value::ForwardedHeaderValue;
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address of the client a request came from.
///
/// A request whose connection comes from outside `trusted_proxies` is the
/// client's own: whatever `Forwarded` or `X-Forwarded-For` it carries is
/// ignored, since anyone can send them. One from a trusted proxy is followed
/// back through the forwarding chain (RFC 7239 `Forwarded` when present,
/// otherwise `X-Forwarded-For`), from the nearest hop outwards, past every
/// trusted proxy: the first address that is not one is the client. A hop that
/// cannot be read (`unknown`, an obfuscated name, a malformed header) ends the
/// walk at the last proxy that could be trusted, which is then the client, so a
/// garbled header can never make a request pose as another client.
#[must_use]
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |address: IpAddr| trusted_proxies.iter().any(|net| net.contains(&address));
    if !trusted(peer) {
        return peer;
    }
    let Some(chain) = forwarding_chain(headers) else {
        return peer;
    };
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(address) = hop.map(|address| address.to_canonical()) else {
            break;
        };
        client = address;
        if !trusted(address) {
            break;
        }
    }
    client
}

/// The hops the proxies recorded, client first; `None` for a hop whose address
/// is not known. `None` when no proxy recorded any.
fn forwarding_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let joined = |name: &HeaderName| -> Option<Result<String, ()>> {
        let mut values = headers.get_all(name).iter().peekable();
        values.peek()?;
        Some(
            values
                .map(|value| value.to_str().map(str::to_owned).map_err(drop))
                .collect::<Result<Vec<_>, _>>()
                .map(|values| values.join(", ")),
        )
    };
    let parsed = if let Some(forwarded) = joined(&FORWARDED) {
        forwarded.and_then(|text| ForwardedHeaderValue::from_forwarded(&text).map_err(drop))
    } else {
        joined(&X_FORWARDED_FOR)?
            .and_then(|text| ForwardedHeaderValue::from_x_forwarded_for(&text).map_err(drop))
    };
    Some(match parsed {
        Ok(value) => value
            .iter()
            .map(forwarded_header_value::ForwardedStanza::forwarded_for_ip)
            .collect(),
        // Unreadable: one hop nobody can vouch for.
        Err(()) => vec![None],
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|net| net.parse().expect("a network"))
            .collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("a value"),
            );
        }
        map
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let sent = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.9"), &sent, &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("203.0.113.9"), &sent, &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_is_followed_to_the_first_address_it_does_not_trust() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client claims an address; the proxies append what they saw.
        let sent = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &sent, &trusted),
            ip("198.51.100.7"),
            "the claim left of the first untrusted hop is the client's own lie"
        );
        let two_lines = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &two_lines, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_reads_ipv6_with_ports() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let sent = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_address(ip("fd00::1"), &sent, &trusted),
            ip("2001:db8:cafe::17")
        );
    }

    #[test]
    fn an_unreadable_hop_makes_the_last_trusted_proxy_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        for sent in [
            headers(&[("forwarded", "for=unknown, for=10.0.0.2")]),
            headers(&[("x-forwarded-for", "not an address")]),
            headers(&[("forwarded", "for=\"unterminated")]),
        ] {
            let client = client_address(ip("10.0.0.1"), &sent, &trusted);
            assert!(
                trusted.iter().any(|net| net.contains(&client)),
                "{sent:?} gave {client}"
            );
        }
    }

    #[test]
    fn a_chain_of_trusted_proxies_only_ends_at_its_first_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        let sent = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &sent, &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_matched_as_ipv4() {
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let sent = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_address(mapped, &sent, &nets(&["10.0.0.0/8"])),
            ip("198.51.100.7")
        );
    }
}
