//! The memory throttling holds whatever addresses clients use: 1 000 000 distinct client
//! addresses (half IPv4, half IPv6 /64s), each failing Basic once, sent through the layer's
//! service with `ConnectInfo` per request.
//!
//! The table never holds more keys than its capacity (`Throttle::tracked`, checked every
//! 1 000 requests), and the bytes the process holds from the allocator (a counting global
//! allocator) grow, at the end and at their peak, by less than the bound derived from the
//! default capacity (100 000 keys) in [`bound`], 256 bytes a key; after the first half
//! of the addresses they do not grow at all. Measured: 144 bytes a key when the table
//! first fills, 198 once its hash maps have doubled (about 19.8 MB for 100 000 keys; the
//! peak 20.1 MB), the same after 500 000 addresses as after 1 000 000. About 40 s in a
//! debug build on two idle cores (two requests at a time through the whole layer), 60 to
//! 80 s one at a time or beside other builds.
//!
//! A tiny table (capacity 64, Basic user names counted too, a distinct one per request)
//! holds no more than its capacity either.
//!
//! A file of its own: the allocator counts the whole process, so no other test may run
//! beside this one.

use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::throttle::Throttle;
use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine as _;
use http::{HeaderValue, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;
use tower::{Layer, Service, ServiceExt};

// =======================================================================================
// A counting allocator: the bytes the process holds from the allocator, and the most
// it held
// =======================================================================================

struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn held(delta: isize) {
    let now = HELD.fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to the system allocator unchanged; only counted.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        held(layout.size() as isize);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        held(-(layout.size() as isize));
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        held(new as isize - layout.size() as isize);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// =======================================================================================
// The layer's service and its requests
// =======================================================================================

const ADDRESSES: u32 = 1_000_000;
const DEFAULT_CAPACITY: usize = 100_000;

/// The bytes a full default table may hold, per key: its slot in a hash map (an 8-byte
/// hash, a 32-byte entry, a control byte) with up to 2.6 slots a key (6 250 keys a shard
/// in 8 192 slots, doubled once when the map, full of the tombstones eviction leaves,
/// grows rather than rehashing: about 108 bytes), the 80-byte ring of the default address
/// budget (10 failure times), its slot of the eviction queue (about 11): about 200 bytes,
/// bounded at 256.
fn bound(capacity: usize) -> isize {
    (capacity * 256) as isize
}

/// The `i`th client: an IPv4 address for even `i`, an IPv6 address in a /64 of its own
/// for odd `i`; every one distinct.
fn client(i: u32) -> SocketAddr {
    let ip = match i % 2 {
        0 => IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)),
        _ => {
            let [a, b, c, d] = i.to_be_bytes();
            let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            IpAddr::V6(Ipv6Addr::new(0x2001, 0x0db8, hi, lo, 0, 0, 0, 1))
        }
    };
    SocketAddr::new(ip, 40_000)
}

fn basic(user: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
}

/// A minimal request from `peer` with `authorization`.
fn attempt(authorization: HeaderValue, peer: SocketAddr) -> Request<Body> {
    let mut req = Request::new(Body::empty());
    req.headers_mut()
        .insert(http::header::AUTHORIZATION, authorization);
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

async fn check(c: BasicCredentials) -> Result<Principal, AuthFailure> {
    match c.password.ct_eq("the-right-password") {
        true => Ok(Principal::new(c.user)),
        false => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
    }
}

/// The layer with `throttle` around a service that answers 200 (never reached here).
fn service(
    throttle: Throttle,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
       + Clone
       + Send
       + 'static {
    let inner = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    AuthDiagnostics::new()
        .basic(BasicAuthenticator::new(check))
        .throttle(throttle)
        .layer(inner)
}

/// Sends `req` through `svc`; its status.
async fn status<S>(svc: &mut S, req: Request<Body>) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    svc.ready().await.unwrap().call(req).await.unwrap().status()
}

/// Sends a wrong password from every client of `clients` through `svc`, on two tasks
/// (the work spreads over both cores of a small machine); the table holds at most its
/// default capacity every 1 000 requests of each.
async fn fail_from<S>(svc: &S, throttle: &Throttle, clients: std::ops::Range<u32>)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (mut svc, throttle) = (svc.clone(), throttle.clone());
            let clients = clients.clone();
            tokio::spawn(async move {
                let wrong = basic("alice", "wrong");
                for (n, i) in clients.skip(w).step_by(WORKERS).enumerate() {
                    let req = attempt(wrong.clone(), client(i));
                    assert_eq!(status(&mut svc, req).await, StatusCode::UNAUTHORIZED, "{i}");
                    if n % 1000 == 999 {
                        let tracked = throttle.tracked();
                        assert!(tracked <= DEFAULT_CAPACITY, "{tracked} keys after {i}");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
}

const WORKERS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_failing_addresses_stay_within_the_bound() {
    // A tiny table, user names counted too: a distinct address and user name each time,
    // two keys a request.
    let tiny = Throttle::new().capacity(64);
    let mut svc = service(tiny.clone());
    for i in 0..20_000 {
        let req = attempt(basic(&format!("user{i}"), "wrong"), client(i));
        assert_eq!(status(&mut svc, req).await, StatusCode::UNAUTHORIZED);
        assert!(tiny.tracked() <= 64, "{} keys after {i}", tiny.tracked());
    }
    assert!(tiny.tracked() >= 48, "{} keys", tiny.tracked());
    drop((svc, tiny));

    // The default table, counting addresses: one user name, never counted.
    let throttle = Throttle::new().without_identity();
    let svc = service(throttle.clone());
    // The runtime, the layer's configuration and flood control in place first.
    fail_from(&svc, &throttle, ADDRESSES..ADDRESSES + 64).await;
    let start = Instant::now();
    let before = HELD.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let capacity = DEFAULT_CAPACITY as u32;
    fail_from(&svc, &throttle, 0..capacity).await;
    let full = HELD.load(Ordering::SeqCst) - before;
    fail_from(&svc, &throttle, capacity..ADDRESSES / 2).await;
    let half_way = HELD.load(Ordering::SeqCst) - before;
    fail_from(&svc, &throttle, ADDRESSES / 2..ADDRESSES).await;
    let took = start.elapsed();
    let tracked = throttle.tracked();
    let grown = HELD.load(Ordering::SeqCst) - before;
    let peak = PEAK.load(Ordering::SeqCst) - before;
    eprintln!(
        "{ADDRESSES} addresses in {took:.1?} ({:.1} µs each, {WORKERS} at a time); after \
         {capacity}: +{full} bytes ({:.0} per key); after {}: +{half_way} bytes; at the \
         end, {tracked} keys: +{grown} bytes ({:.1} MiB, {:.0} bytes per key), peak \
         +{peak} bytes ({:.1} MiB); bound {} bytes",
        took.as_secs_f64() * 1e6 / f64::from(ADDRESSES),
        full as f64 / DEFAULT_CAPACITY as f64,
        ADDRESSES / 2,
        mib(grown),
        grown as f64 / tracked as f64,
        mib(peak),
        bound(DEFAULT_CAPACITY),
    );
    assert!(tracked <= DEFAULT_CAPACITY, "{tracked} keys");
    assert!(tracked >= DEFAULT_CAPACITY * 9 / 10, "{tracked} keys");
    assert!(grown < bound(DEFAULT_CAPACITY), "grew {grown} bytes");
    assert!(peak < bound(DEFAULT_CAPACITY), "peaked at {peak} bytes");
    // Nothing grows once the table has settled: the last 500 000 addresses cost nothing.
    let settled = grown - half_way;
    assert!(
        settled.abs() < 64 << 10,
        "{settled} bytes in the second half"
    );
}
