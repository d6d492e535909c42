//! Trusted proxies: the one list of peers whose forwarding headers are believed, read from
//! axum's `ConnectInfo<SocketAddr>`; in process and through `axum::serve` on 127.0.0.1
//! (where the peer address is the real one).

mod common;
use common::*;

use auth_diagnostics::layer::{CertificateHeader, Peer, TrustedProxies};
use axum::extract::ConnectInfo;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};

const X5T: &str = "x5t-of-nothing-this-test-sends-0000000000000";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn addresses_and_networks_of_both_families() {
    let p: TrustedProxies = "10.0.0.0/8 192.0.2.7,fd00::/8 ::ffff:172.16.0.0/108, 2001:db8::1"
        .parse()
        .unwrap();
    for yes in [
        "10.0.0.1",
        "10.255.255.255",
        "192.0.2.7",
        "::ffff:192.0.2.7",
        "fd00::1",
        "172.16.9.9",
        "2001:db8::1",
    ] {
        assert!(p.contains(ip(yes)), "{yes}");
    }
    for no in [
        "11.0.0.1",
        "192.0.2.8",
        "fe80::1",
        "172.32.0.1",
        "2001:db8::2",
        "::1",
    ] {
        assert!(!p.contains(ip(no)), "{no}");
    }
    assert!(TrustedProxies::none().is_empty());
    let one = TrustedProxies::none().address(ip("::ffff:127.0.0.1"));
    assert!(one.contains(ip("127.0.0.1")));
}

#[test]
fn a_bad_entry_is_an_error_that_names_it() {
    for bad in [
        "10.0.0.0/33",
        "10.0.0.0/",
        "proxy.internal",
        "10.0.0.0/8/8",
        "::/200",
    ] {
        let e = format!("10.0.0.1, {bad}")
            .parse::<TrustedProxies>()
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("neither an IP address nor a CIDR"), "{text}");
        let shown = bad.split('/').next().unwrap();
        assert!(text.contains(shown), "{text}");
    }
}

#[test]
fn the_peer_is_connect_info_and_without_it_untrusted() {
    let p: TrustedProxies = "10.0.0.0/8".parse().unwrap();
    let mut ext = http::Extensions::new();
    assert_eq!(p.peer(&ext), Peer::Unknown);
    assert!(!p.peer(&ext).is_trusted());
    let proxy: SocketAddr = "10.1.1.1:443".parse().unwrap();
    ext.insert(ConnectInfo(proxy));
    assert_eq!(p.peer(&ext), Peer::Trusted(proxy));
    assert_eq!(p.peer(&ext).addr(), Some(proxy));
    let mapped: SocketAddr = "[::ffff:10.1.1.1]:443".parse().unwrap();
    ext.insert(ConnectInfo(mapped));
    assert!(p.peer(&ext).is_trusted());
    let other: SocketAddr = "198.51.100.1:443".parse().unwrap();
    ext.insert(ConnectInfo(other));
    assert_eq!(p.peer(&ext), Peer::Untrusted(other));
    assert_eq!(p.peer(&ext).to_string(), "198.51.100.1:443");
}

/// Serves `/me` behind Bearer with `Client-Cert` from `proxies` on 127.0.0.1 with
/// `ConnectInfo`, and sends one request with a bound token and a forged `Client-Cert`.
async fn over_tcp(proxies: &str) -> (u16, Value) {
    let layer = layer(DetailMode::Verbose)
        .trusted_proxies(proxies.parse().unwrap())
        .certificate_header(CertificateHeader::ClientCert);
    let app = bearer_app(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let token = hs256(&claims(json!({ "cnf": { "x5t#S256": X5T } })));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .get(format!("http://{addr}/me"))
        .bearer_auth(token)
        .header(
            "client-cert",
            format!(":{}:", b64(&[0x30, 0x03, 0x02, 0x01, 0x01])),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn through_axum_serve_the_real_peer_address_decides() {
    // 127.0.0.1 is not in the list: the header is ignored.
    let (status, problem) = over_tcp("10.0.0.0/8").await;
    assert_eq!(status, 401);
    assert_eq!(problem["reason"], "certificate_header_untrusted");
    assert!(
        problem["detail"].as_str().unwrap().contains("127.0.0.1:"),
        "{problem}"
    );
    // 127.0.0.1 is trusted: the header is read (and is not the token's certificate).
    let (status, problem) = over_tcp("127.0.0.0/8").await;
    assert_eq!(status, 401);
    assert_eq!(problem["reason"], "certificate_mismatch");
}

/// Whether Basic credentials on `/r`, sent from `peer` with `X-Forwarded-Proto: https`
/// through a layer with `proxies`, are logged as over plain http.
async fn plaintext_hint(proxies: Option<&str>, peer: &str) -> bool {
    use auth_diagnostics::basic::BasicAuthenticator;
    let mut layer = layer(DetailMode::Production).basic(BasicAuthenticator::new(check_password));
    if let Some(list) = proxies {
        layer = layer.trusted_proxies(list.parse().unwrap());
    }
    let app = axum::Router::new()
        .route("/r", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    let auth = basic("alice", ALICE_PW);
    let mut r = get(
        "/r",
        &[("authorization", &auth), ("x-forwarded-proto", "https")],
    );
    r.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let out = send(app, r).await;
    assert_eq!(out.status, 200);
    out.events
        .iter()
        .any(|e| e.get("hints") == Some("basic_over_plaintext"))
}

/// `X-Forwarded-Proto: https` silences the Basic-over-plain-http hint: from anyone while
/// no trusted proxy is configured (as before), from the trusted proxies only once some are.
#[tokio::test]
async fn x_forwarded_proto_is_believed_from_trusted_proxies_once_there_are_some() {
    assert!(!plaintext_hint(None, "203.0.113.7:5000").await);
    assert!(!plaintext_hint(Some("10.0.0.0/8"), "10.0.0.2:5000").await);
    assert!(plaintext_hint(Some("10.0.0.0/8"), "203.0.113.7:5000").await);
}

/// The client address behind trusted proxies: `X-Forwarded-For` read right to left while
/// the hop is a trusted proxy, ignored from anyone else.
#[test]
fn the_client_address_behind_trusted_proxies() {
    let p: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
    let at = |peer: &str, xff: &[&str]| {
        let mut headers = http::HeaderMap::new();
        for line in xff {
            headers.append("x-forwarded-for", hv(line.as_bytes()));
        }
        let mut ext = http::Extensions::new();
        ext.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        p.client_ip(&headers, &ext)
    };
    let some = |s: &str| Some(ip(s));
    // A direct client: its own address, whatever it writes.
    assert_eq!(at("203.0.113.9:1", &["10.0.0.1"]), some("203.0.113.9"));
    // One proxy.
    assert_eq!(at("10.0.0.2:1", &["203.0.113.9"]), some("203.0.113.9"));
    // Two proxies, the client's own claim before them ignored; several field lines.
    assert_eq!(
        at("10.0.0.2:1", &["198.51.100.1, 203.0.113.9", "10.9.9.9"]),
        some("203.0.113.9")
    );
    // Ports, IPv6 and IPv4-mapped addresses.
    assert_eq!(at("[::1]:1", &["[2001:db8::5]:443"]), some("2001:db8::5"));
    assert_eq!(
        at("[::ffff:10.0.0.2]:1", &["203.0.113.9:80"]),
        some("203.0.113.9")
    );
    // Garbage ends the walk at the proxy that passed it on.
    assert_eq!(
        at("10.0.0.2:1", &["203.0.113.9, unknown"]),
        some("10.0.0.2")
    );
    assert_eq!(at("10.0.0.2:1", &[""]), some("10.0.0.2"));
    assert_eq!(at("10.0.0.2:1", &[]), some("10.0.0.2"));
    assert_eq!(
        at("10.0.0.2:1", &[&String::from_utf8_lossy(b"\xc3\xa9")]),
        some("10.0.0.2")
    );
    // Only proxies all the way: the first of them.
    assert_eq!(at("10.0.0.2:1", &["10.0.0.3, 10.0.0.4"]), some("10.0.0.3"));
    // A chain longer than the walk reads stops at the last hop read.
    let long = vec!["10.1.1.1"; 100].join(",");
    assert_eq!(at("10.0.0.2:1", &[&long]), some("10.1.1.1"));
    // No ConnectInfo: no address.
    assert_eq!(
        p.client_ip(&http::HeaderMap::new(), &http::Extensions::new()),
        None
    );
}
