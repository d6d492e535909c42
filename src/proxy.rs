//! Trusted proxies: the one list of peers whose forwarding headers the layer believes.
//!
//! A header such as `Client-Cert` or `X-Forwarded-Client-Cert` is only as true as whoever
//! set it. Behind a proxy that ends TLS, the proxy sets it; sent by anyone else, it is a
//! forgery. So every feature that reads a forwarding header asks [`TrustedProxies`]
//! whether the connection's peer (axum's `ConnectInfo<SocketAddr>`) is one of the
//! configured proxies, and ignores the header otherwise, logging it (rate-limited) with
//! the peer's address.
//!
//! Without `ConnectInfo` (a router served without
//! `into_make_service_with_connect_info::<SocketAddr>()`, or a test without the
//! extension) the peer is unknown and treated as untrusted: no forwarding header is
//! believed.

use crate::flood::{Admit, FloodControl};
use crate::reason::Reason;
use axum::extract::ConnectInfo;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

/// The peers (addresses and CIDR networks) whose forwarding headers are believed.
///
/// ```
/// use auth_diagnostics::layer::TrustedProxies;
///
/// let proxies: TrustedProxies = "10.0.0.0/8, 192.0.2.7, ::1".parse().unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(proxies.contains("::ffff:192.0.2.7".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.8".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

/// An entry of a trusted-proxy list that is neither an IP address nor a CIDR network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidProxy {
    entry: String,
}

impl fmt::Display for InvalidProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trusted proxy {:?} is neither an IP address nor a CIDR network (such as \
             10.0.0.0/8 or fd00::/8)",
            crate::sanitize::cap(&self.entry)
        )
    }
}

impl std::error::Error for InvalidProxy {}

/// Who sent a request, as far as forwarding headers are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// The connection's peer is a configured trusted proxy.
    Trusted(SocketAddr),
    /// The connection's peer is not a trusted proxy.
    Untrusted(SocketAddr),
    /// The request carries no `ConnectInfo<SocketAddr>`: treated as untrusted.
    Unknown,
}

impl Peer {
    /// Whether forwarding headers of this request are believed.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Peer::Trusted(_))
    }

    /// The peer's address, when known.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Peer::Trusted(a) | Peer::Untrusted(a) => Some(*a),
            Peer::Unknown => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr() {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("unknown (no ConnectInfo<SocketAddr>)"),
        }
    }
}

impl TrustedProxies {
    /// No trusted proxy: no forwarding header is believed (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// The list `list`: IP addresses and CIDR networks separated by commas or whitespace.
    ///
    /// # Errors
    /// The first entry that is neither.
    pub fn parse(list: &str) -> Result<Self, InvalidProxy> {
        let mut networks = Vec::new();
        for entry in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            networks.push(network(entry).ok_or_else(|| InvalidProxy {
                entry: entry.to_owned(),
            })?);
        }
        Ok(Self { networks })
    }

    /// Adds one address.
    pub fn address(mut self, ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        self.networks.push((ip, max_prefix(ip)));
        self
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is in the list (an IPv4-mapped IPv6 address as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .any(|&(net, prefix)| within(ip, net, prefix))
    }

    /// The request's peer, from its `ConnectInfo<SocketAddr>` extension, and whether it
    /// is trusted. Without the extension the peer is [`Peer::Unknown`].
    pub fn peer(&self, extensions: &http::Extensions) -> Peer {
        match extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) if self.contains(addr.ip()) => Peer::Trusted(*addr),
            Some(ConnectInfo(addr)) => Peer::Untrusted(*addr),
            None => Peer::Unknown,
        }
    }

    /// The client's address as the trusted proxies report it (for throttling, or a log):
    /// the connection's peer, or, while the hop at hand is a trusted proxy, the address
    /// before it in `X-Forwarded-For` (read right to left, as each proxy appends the peer
    /// it saw; at most 32 entries), or, when there is none, in the `for` parameters of
    /// `Forwarded` (RFC 7239). An entry that is no address (`unknown`, an obfuscated
    /// `for=_hidden`, garbage) ends the walk at the proxy that passed it on. Without
    /// `ConnectInfo<SocketAddr>`, `None`. From an untrusted peer both headers are
    /// ignored: anyone can write one.
    ///
    /// ```
    /// use auth_diagnostics::layer::TrustedProxies;
    /// use axum::extract::ConnectInfo;
    /// use std::net::SocketAddr;
    ///
    /// let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.7".parse().unwrap());
    /// let mut extensions = http::Extensions::new();
    /// extensions.insert(ConnectInfo("10.0.0.2:443".parse::<SocketAddr>().unwrap()));
    /// // 10.0.0.2 and 10.0.0.7 are proxies; 203.0.113.9 is the client (what it claims
    /// // before that, 198.51.100.1, is its own word).
    /// let client = proxies.client_ip(&headers, &extensions);
    /// assert_eq!(client, Some("203.0.113.9".parse().unwrap()));
    /// ```
    pub fn client_ip(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<IpAddr> {
        let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
        let mut hop = peer.ip().to_canonical();
        if !self.contains(hop) {
            return Some(hop);
        }
        let lines = |name| -> Vec<&[u8]> {
            headers
                .get_all(name)
                .iter()
                .map(http::HeaderValue::as_bytes)
                .collect()
        };
        let (lines, rfc7239) = match lines("x-forwarded-for") {
            xff if xff.is_empty() => (lines("forwarded"), true),
            xff => (xff, false),
        };
        let entries = lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(|&b| b == b','))
            .take(MAX_FORWARDED_HOPS);
        for entry in entries {
            let entry = match rfc7239 {
                true => for_parameter(entry),
                false => Some(entry),
            };
            let Some(ip) = entry.and_then(forwarded_ip) else {
                return Some(hop);
            };
            hop = ip;
            if !self.contains(hop) {
                break;
            }
        }
        Some(hop)
    }
}

/// The most `X-Forwarded-For` entries [`TrustedProxies::client_ip`] reads.
const MAX_FORWARDED_HOPS: usize = 32;

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:80`,
/// `[2001:db8::1]:80`).
fn forwarded_ip(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    // RFC 7239's `[2001:db8::1]` without a port.
    let text = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => inner,
        None => text,
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    text.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The `for` parameter of one `Forwarded` element (RFC 7239 §4), unquoted:
/// `for=192.0.2.60;proto=http` → `192.0.2.60`, `for="[2001:db8::1]:4711"` →
/// `[2001:db8::1]:4711`.
fn for_parameter(element: &[u8]) -> Option<&[u8]> {
    element.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
        if !name.eq_ignore_ascii_case(b"for") {
            return None;
        }
        let value = value[1..].trim_ascii();
        Some(match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        })
    })
}

impl FromStr for TrustedProxies {
    type Err = InvalidProxy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or one with `/n`.
fn network(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = max_prefix(ip);
    let prefix = match prefix {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
        None => max,
    };
    if prefix > max {
        return None;
    }
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is its IPv4 network.
    match (ip, ip.to_canonical()) {
        (IpAddr::V6(_), v4 @ IpAddr::V4(_)) if prefix >= 96 => Some((v4, prefix - 96)),
        _ => Some((ip, prefix)),
    }
}

fn within(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let mask = |bits: u32, width: u32| -> u128 {
        match bits {
            0 => 0,
            b => (!0u128) << (width - b),
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(u32::from(prefix), 128) >> 96;
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(n)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(u32::from(prefix), 128);
            (u128::from(a) & m) == (u128::from(n) & m)
        }
        _ => false,
    }
}

/// Logs (WARN, rate-limited with the failure log's `certificate_header_untrusted` events)
/// that the forwarding header `header` came from `peer`, which is not a trusted proxy,
/// and was ignored. A notice, not a refusal: it has `hints`, `header` and `peer` but no
/// `reason` or `status` (a bound token refused for it logs its own failure event). The
/// header's value is never logged.
pub(crate) fn ignored(flood: &Arc<FloodControl>, header: &str, peer: Peer) {
    let reason = Reason::CertificateHeaderUntrusted;
    match flood.admit(reason, Instant::now()) {
        Admit::Suppress => {
            crate::metrics::log_suppressed(reason);
            return;
        }
        Admit::Log { suppressed: 0 } => {}
        Admit::Log { suppressed } => crate::flood::summary(reason, suppressed),
    }
    tracing::warn!(
        target: "auth_diagnostics",
        header = %crate::sanitize::cap(header),
        peer = %peer,
        hints = "forwarding_header_untrusted",
        "a forwarding header came from a peer that is not a trusted proxy and was ignored \
         (AuthDiagnostics::trusted_proxies lists the proxies whose headers are believed)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_addresses() {
        let p = TrustedProxies::parse("10.0.0.0/8 192.168.1.1,fd00::/8\t::ffff:172.16.0.0/108")
            .unwrap();
        assert!(p.contains(ip("10.255.0.1")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(p.contains(ip("192.168.1.1")));
        assert!(!p.contains(ip("192.168.1.2")));
        assert!(p.contains(ip("fd12::1")));
        assert!(!p.contains(ip("fe80::1")));
        assert!(p.contains(ip("172.16.5.5")));
        assert!(p.contains(ip("::ffff:10.0.0.1")));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        assert!(!TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("::2")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn client_from_forwarded_when_there_is_no_x_forwarded_for() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let mut ext = http::Extensions::new();
        ext.insert(ConnectInfo("10.0.0.2:443".parse::<SocketAddr>().unwrap()));
        let client = |forwarded: &[&str], xff: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            for f in forwarded {
                headers.append("forwarded", f.parse().unwrap());
            }
            if let Some(x) = xff {
                headers.insert("x-forwarded-for", x.parse().unwrap());
            }
            proxies.client_ip(&headers, &ext)
        };
        let cases: &[(&[&str], Option<&str>, &str)] = &[
            (
                &["for=192.0.2.60;proto=http;by=203.0.113.43"],
                None,
                "192.0.2.60",
            ),
            (
                &["For=\"[2001:db8:cafe::17]:4711\""],
                None,
                "2001:db8:cafe::17",
            ),
            (&["for=\"[2001:db8::1]\""], None, "2001:db8::1"),
            (
                &["for=198.51.100.1, for=203.0.113.9", "for=10.0.0.7"],
                None,
                "203.0.113.9",
            ),
            (&["for=198.51.100.1:8080"], None, "198.51.100.1"),
            // Obfuscated, unknown or missing: the walk ends at the proxy that passed it.
            (&["for=_hidden, for=10.0.0.7"], None, "10.0.0.7"),
            (&["for=unknown"], None, "10.0.0.2"),
            (&["proto=https"], None, "10.0.0.2"),
            // X-Forwarded-For, when present, is the one read.
            (&["for=198.51.100.1"], Some("203.0.113.5"), "203.0.113.5"),
        ];
        for (forwarded, xff, want) in cases {
            assert_eq!(client(forwarded, *xff), Some(ip(want)), "{forwarded:?}");
        }
        // From an untrusted peer, Forwarded is ignored.
        let mut ext = http::Extensions::new();
        ext.insert(ConnectInfo("192.0.2.1:1234".parse::<SocketAddr>().unwrap()));
        let mut headers = http::HeaderMap::new();
        headers.insert("forwarded", "for=198.51.100.1".parse().unwrap());
        assert_eq!(proxies.client_ip(&headers, &ext), Some(ip("192.0.2.1")));
    }

    #[test]
    fn invalid_entries() {
        for bad in [
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "host.example",
            "10.0.0.0/+8",
            "1/1",
        ] {
            let e = TrustedProxies::parse(bad).unwrap_err();
            assert!(e.to_string().contains("neither"), "{bad}");
        }
    }

    #[test]
    fn peer_from_connect_info() {
        let p = TrustedProxies::none().address(ip("127.0.0.1"));
        let mut ext = http::Extensions::new();
        assert_eq!(p.peer(&ext), Peer::Unknown);
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        ext.insert(ConnectInfo(addr));
        assert_eq!(p.peer(&ext), Peer::Trusted(addr));
        let other: SocketAddr = "[::1]:4000".parse().unwrap();
        ext.insert(ConnectInfo(other));
        assert_eq!(p.peer(&ext), Peer::Untrusted(other));
    }
}
