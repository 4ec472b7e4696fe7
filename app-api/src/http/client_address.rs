//! Who the client is: the connection's peer, or — when that peer is a proxy
//! the service was told to trust — the address the proxies forwarded.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::{FORWARDED, HeaderName};
use forwarded_header_value::ForwardedHeaderValue;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The header the trusted proxies write the client's address into. Only that
/// one is read: a proxy that sets `X-Forwarded-For` passes a `Forwarded` the
/// client sent through untouched, so reading the other header would believe
/// the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most cloud
    /// load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// Which proxies to believe, and which header they write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// The proxies' addresses or networks; empty means none is trusted.
    pub networks: Vec<IpNet>,
    /// The header they append the address they saw to.
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    fn contains(&self, address: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&address))
    }
}

/// The address of the client a request came from.
///
/// A request whose connection comes from outside the trusted proxies is the
/// client's own: whatever forwarding header it carries is ignored, since
/// anyone can send one. One from a trusted proxy is followed back through the
/// chain in the configured header, from the nearest hop outwards, past every
/// trusted proxy: the first address that is not one is the client. Each hop is
/// read on its own, so a hop that cannot be read (`unknown`, an obfuscated
/// name, garbage a client wrote) ends the walk there — at the last proxy that
/// could be trusted when it is right of every other — and never spoils the
/// hops the proxies appended after it. A garbled header can never make a
/// request pose as another client.
#[must_use]
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !proxies.contains(client) {
        return client;
    }
    let name = match proxies.header {
        ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
        ForwardedHeader::Forwarded => FORWARDED,
    };
    // Later header lines were appended by nearer proxies.
    let lines: Vec<_> = headers.get_all(&name).iter().collect();
    for line in lines.into_iter().rev() {
        // A line that is not text has no hop anyone can vouch for.
        let Ok(text) = line.to_str() else {
            return client;
        };
        for hop in elements(text, proxies.header).rev() {
            let Some(address) = hop_address(hop, proxies.header) else {
                return client;
            };
            client = address.to_canonical();
            if !proxies.contains(client) {
                return client;
            }
        }
    }
    client
}

/// The comma-separated elements of one header line; in `Forwarded`, commas
/// inside a quoted string do not separate.
fn elements(text: &str, header: ForwardedHeader) -> std::vec::IntoIter<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (at, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' if header == ForwardedHeader::Forwarded => quoted = !quoted,
            ',' if !quoted => {
                parts.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.into_iter()
}

/// The address one hop names, if it names one.
fn hop_address(hop: &str, header: ForwardedHeader) -> Option<IpAddr> {
    match header {
        ForwardedHeader::XForwardedFor => hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip())),
        ForwardedHeader::Forwarded => {
            let parsed = ForwardedHeaderValue::from_forwarded(hop).ok()?;
            let mut stanzas = parsed.iter();
            let stanza = stanzas.next()?;
            if stanzas.next().is_some() {
                return None;
            }
            stanza.forwarded_for_ip()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn proxies(list: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: list
                .iter()
                .map(|net| net.parse().expect("a network"))
                .collect(),
            header,
        }
    }

    fn xff(list: &[&str]) -> TrustedProxies {
        proxies(list, ForwardedHeader::XForwardedFor)
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
        for trusted in [
            xff(&["10.0.0.0/8"]),
            proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded),
            xff(&[]),
        ] {
            assert_eq!(
                client_address(ip("203.0.113.9"), &sent, &trusted),
                ip("203.0.113.9")
            );
        }
    }

    #[test]
    fn a_trusted_proxy_is_followed_to_the_first_address_it_does_not_trust() {
        let trusted = xff(&["10.0.0.0/8"]);
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
        let with_ports = headers(&[("x-forwarded-for", "[2001:db8::1]:4711, 10.0.0.2:80")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &with_ports, &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let sent = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_address(
                ip("fd00::1"),
                &sent,
                &proxies(&["10.0.0.0/8", "fd00::/8"], ForwardedHeader::Forwarded)
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            client_address(ip("fd00::1"), &sent, &xff(&["10.0.0.0/8", "fd00::/8"])),
            ip("198.51.100.7"),
            "a Forwarded the client wrote is not believed by an X-Forwarded-For proxy"
        );
        let only_forwarded = headers(&[("forwarded", "for=198.51.100.8")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &only_forwarded, &xff(&["10.0.0.0/8"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_unreadable_hop_ends_the_walk_where_it_stands() {
        let trusted = xff(&["10.0.0.0/8"]);
        let forwarded = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        for (sent, proxies) in [
            (
                headers(&[("forwarded", "for=unknown, for=10.0.0.2")]),
                &forwarded,
            ),
            (headers(&[("forwarded", "for=\"unterminated")]), &forwarded),
            (headers(&[("x-forwarded-for", "not an address")]), &trusted),
            (headers(&[("x-forwarded-for", "10.0.0.3, ")]), &trusted),
        ] {
            let client = client_address(ip("10.0.0.1"), &sent, proxies);
            assert!(proxies.contains(client), "{sent:?} gave {client}");
        }
    }

    #[test]
    fn garbage_left_of_the_client_does_not_hide_it() {
        // The client sent junk; its proxy appended the address it saw.
        let sent = headers(&[("x-forwarded-for", "<script>, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &sent, &xff(&["10.0.0.0/8"])),
            ip("198.51.100.7")
        );
        let sent = headers(&[(
            "forwarded",
            r#"for="oops, still quoted", for=198.51.100.7;proto=https, for=10.0.0.2"#,
        )]);
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                &sent,
                &proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded)
            ),
            ip("198.51.100.7")
        );
        let sent = headers(&[("forwarded", "for=;;;, for=198.51.100.7")]);
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                &sent,
                &proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded)
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_chain_of_trusted_proxies_only_ends_at_its_first_hop() {
        let trusted = xff(&["10.0.0.0/8"]);
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
            client_address(mapped, &sent, &xff(&["10.0.0.0/8"])),
            ip("198.51.100.7")
        );
    }
}
