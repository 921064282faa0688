//! A small TCP proxy for fault injection: forwards bytes between devices and
//! the server, and cuts a connection at a chosen point — a number of bytes
//! after a pattern (say `PUT /v1/photos`) appears in what the client sends,
//! counted in either direction.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Device to server (a request being sent).
    Up,
    /// Server to device (a response coming back).
    Down,
}

/// One armed cut: fires once.
#[derive(Clone, Debug)]
pub struct Cut {
    pub after_pattern: Vec<u8>,
    pub direction: Direction,
    pub after_bytes: usize,
}

#[derive(Default)]
struct CutState {
    armed: Option<Cut>,
    /// Bytes counted since the pattern was seen, per direction.
    triggered: Option<(Direction, usize, usize)>,
    fired: usize,
}

pub struct Proxy {
    pub url: String,
    state: Arc<Mutex<CutState>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (host:port).
    pub fn start(upstream: String) -> Proxy {
        Proxy::balance(vec![upstream])
    }

    /// A load balancer: each new connection goes to the next of
    /// `upstreams` (host:port) in turn, skipping one that refuses it (a
    /// stopped instance).
    pub fn balance(upstreams: Vec<String>) -> Proxy {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(CutState::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let first = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let server = (0..upstreams.len()).find_map(|k| {
                    TcpStream::connect(&upstreams[(first + k) % upstreams.len()]).ok()
                });
                let Some(server) = server else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (st1, st2) = (st.clone(), st.clone());
                let (cc, sc) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pump(client, server, Direction::Up, st1, (cc, sc)));
                let (cc, sc) = (
                    c2.try_clone().expect("clone"),
                    s2.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pump(s2, c2, Direction::Down, st2, (cc, sc)));
            }
        });
        Proxy { url, state }
    }

    /// Arms a cut for the next time `pattern` is sent by a client.
    pub fn arm(&self, pattern: &str, direction: Direction, after_bytes: usize) {
        let mut s = self.state.lock().expect("proxy state");
        s.armed = Some(Cut {
            after_pattern: pattern.as_bytes().to_vec(),
            direction,
            after_bytes,
        });
        s.triggered = None;
    }

    /// How many cuts have fired so far.
    pub fn fired(&self) -> usize {
        self.state.lock().expect("proxy state").fired
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: Direction,
    state: Arc<Mutex<CutState>>,
    both: (TcpStream, TcpStream),
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut cut = false;
        {
            let mut s = state.lock().expect("proxy state");
            if dir == Direction::Up && s.triggered.is_none() {
                let pattern = s.armed.as_ref().map(|c| c.after_pattern.clone());
                if let Some(p) = pattern {
                    tail.extend_from_slice(&buf[..n]);
                    if contains(&tail, &p) {
                        let c = s.armed.take().expect("armed");
                        s.triggered = Some((c.direction, c.after_bytes, 0));
                    }
                    let keep = tail.len().saturating_sub(p.len());
                    tail.drain(..keep);
                }
            }
            if let Some((d, limit, seen)) = s.triggered
                && d == dir
            {
                let seen = seen + n;
                if seen > limit {
                    s.triggered = None;
                    s.fired += 1;
                    cut = true;
                } else {
                    s.triggered = Some((d, limit, seen));
                }
            }
        }
        if cut {
            let _ = both.0.shutdown(Shutdown::Both);
            let _ = both.1.shutdown(Shutdown::Both);
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
