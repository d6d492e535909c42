//! A real Redis for the suites that share state between replicas: Debian's
//! `redis-server`, installed with apt-get when missing, started on `127.0.0.1` on a free
//! port with nothing persisted (`--save "" --appendonly no`), killed when dropped. A test
//! can stop it and start it again on the same port, and talk to it directly
//! ([`Redis::command`]) to look at or plant what the crate stores.
//!
//! Where `redis-server` cannot be had the suite skips, except in CI (`CI=true`), where it
//! must run and fails instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a started server may take to answer `PING`.
const START_LIMIT: Duration = Duration::from_secs(10);

/// One `redis-server` process on loopback.
pub struct Redis {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// A fresh server on a free loopback port, answering `PING`; `None` (with the reason
    /// printed) when `redis-server` cannot be had outside CI.
    pub fn start() -> Option<Redis> {
        let bin = redis_server()?;
        // A free port may be taken between our probe and the server's bind: try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut redis = Redis {
                bin: bin.clone(),
                port,
                child: None,
            };
            match redis.spawn() {
                Ok(()) => return Some(redis),
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether the server answers `PING` with `+PONG`.
    pub fn answers(&self) -> bool {
        ping(self.addr())
    }

    /// Kills the server and waits until its port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
            assert!(Instant::now() < deadline, "redis still listens after kill");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes the server (`SIGSTOP`): it keeps its port and accepts connections, but
    /// answers nothing until [`Redis::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    #[track_caller]
    fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("a running server")
            .id()
            .to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// Starts the server again on the same port (empty: nothing was persisted).
    pub fn restart(&mut self) {
        self.stop();
        // The port was ours a moment ago; another process taking it is unlikely, but a
        // socket in TIME_WAIT may delay the bind for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(why) if Instant::now() > deadline => panic!("redis did not restart: {why}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let dir = std::env::temp_dir();
        let mut child = Command::new(&self.bin)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut out = String::new();
                if let Some(mut s) = child.stdout.take() {
                    let _ = s.read_to_string(&mut out);
                }
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut out);
                }
                return Err(format!(
                    "redis-server on port {port} exited ({status}): {out}"
                ));
            }
            if ping(self.addr()) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-server on port {port}: no PONG in {START_LIMIT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its log goes nowhere, but the pipes must not fill up and block it.
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stream).lines();
                while let Some(Ok(_)) = lines.next() {}
            });
        }
        self.child = Some(child);
        Ok(())
    }

    /// Sends one command (RESP array of bulk strings) and returns the reply.
    #[track_caller]
    pub fn command(&self, args: &[&str]) -> Resp {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("redis on port {}: {e}", self.port));
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes()).unwrap();
        read_reply(&mut BufReader::new(stream))
    }

    /// `GET key`: the value, if any.
    #[track_caller]
    pub fn get(&self, key: &str) -> Option<String> {
        match self.command(&["GET", key]) {
            Resp::Bulk(v) => Some(v),
            Resp::Nil => None,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// The keys matching `pattern`, sorted.
    #[track_caller]
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        match self.command(&["KEYS", pattern]) {
            Resp::Array(items) => {
                let mut keys: Vec<String> = items
                    .into_iter()
                    .map(|i| match i {
                        Resp::Bulk(k) => k,
                        other => panic!("KEYS: {other:?}"),
                    })
                    .collect();
                keys.sort();
                keys
            }
            other => panic!("KEYS {pattern}: {other:?}"),
        }
    }

    /// `TTL key` in seconds (-1: none, -2: no such key).
    #[track_caller]
    pub fn ttl(&self, key: &str) -> i64 {
        match self.command(&["TTL", key]) {
            Resp::Int(n) => n,
            other => panic!("TTL {key}: {other:?}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server dies of SIGKILL too; SIGCONT first is only tidier.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A reply of the Redis protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(String),
    Nil,
    Array(Vec<Resp>),
}

fn read_reply(r: &mut impl BufRead) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("a reply from redis");
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(rest.parse().unwrap()),
        "$" if rest == "-1" => Resp::Nil,
        "$" => {
            let len: usize = rest.parse().unwrap();
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf).unwrap();
            buf.truncate(len);
            Resp::Bulk(String::from_utf8(buf).unwrap())
        }
        "*" if rest == "-1" => Resp::Nil,
        "*" => {
            let n: usize = rest.parse().unwrap();
            Resp::Array((0..n).map(|_| read_reply(r)).collect())
        }
        _ => panic!("not a RESP reply: {line:?}"),
    }
}

/// `PING\r\n` over a fresh connection answered by `+PONG`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    while got.len() < 7 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"+PONG")
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// `redis-server`'s path, installed once per process when missing; `None` with the
/// reason printed when it cannot be had outside CI.
fn redis_server() -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(find_or_install) {
        Ok(path) => Some(path.clone()),
        Err(why) if super::node::in_ci() => panic!("the replicas suite cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("skipping redis test: {why}");
            None
        }
    }
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(path) = find() {
        return Ok(path);
    }
    if !super::node::apt_install(&["redis-server"]) {
        return Err("redis-server is missing and could not be installed with apt-get".into());
    }
    find().ok_or_else(|| "apt-get installed redis-server, but it does not run".into())
}

/// `/usr/bin/redis-server`, or `redis-server` on `PATH`, when it runs.
fn find() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"));
    std::iter::once(PathBuf::from("/usr/bin/redis-server"))
        .chain(on_path)
        .find(|p| {
            p.is_file()
                && Command::new(p)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
        })
}
