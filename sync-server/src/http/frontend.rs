//! What the server knows of how a request reached it: the peer, whether
//! the connection was TLS, and — only when the peer is a trusted reverse
//! proxy — the scheme, host and client address the proxy says the browser
//! used. Everything downstream (the console's cookie and same-origin
//! check, HSTS, logs) asks [`Frontend`], never the raw headers.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::HOST;

use crate::config::Proxy;

/// Set on every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// How the browser or device reached us, as far as we can trust it.
#[derive(Clone, Debug, Default)]
pub struct Frontend {
    /// The client used HTTPS (to us, or to a trusted proxy that says so).
    pub https: bool,
    /// The host the client asked for (`Host`, a trusted proxy's
    /// forwarded host, or the configured public URL's).
    pub host: Option<String>,
    /// The client's address (the peer, or what a trusted proxy appended).
    pub client: Option<IpAddr>,
}

/// The proxy settings and the public URL, resolved once.
#[derive(Clone, Debug, Default)]
pub struct FrontDoor {
    pub proxy: Proxy,
    /// `(https, host)` of the configured public URL.
    pub public: Option<(bool, String)>,
}

impl FrontDoor {
    pub fn new(proxy: Proxy, public_url: Option<&str>) -> FrontDoor {
        let public = public_url.and_then(|u| {
            let (https, rest) = match u.split_once("://") {
                Some(("https", r)) => (true, r),
                Some(("http", r)) => (false, r),
                _ => return None,
            };
            let host = rest.split('/').next().unwrap_or_default();
            (!host.is_empty()).then(|| (https, host.to_string()))
        });
        FrontDoor { proxy, public }
    }

    /// The facts of one request.
    pub fn frontend(&self, conn: Option<Conn>, headers: &HeaderMap) -> Frontend {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let trusted = conn.is_some_and(|c| self.proxy.trusted.contains(&c.peer.ip()));
        let mut f = Frontend {
            https: conn.is_some_and(|c| c.tls),
            host: header(HOST.as_str()).map(String::from),
            client: conn.map(|c| c.peer.ip()),
        };
        if trusted {
            if let Some(proto) = header(&self.proxy.proto_header) {
                // A chain of proxies lists one per hop: the first is the client's.
                let first = proto.split(',').next().unwrap_or_default().trim();
                f.https = first.eq_ignore_ascii_case("https");
            }
            if let Some(host) = header(&self.proxy.host_header) {
                f.host = host.split(',').next().map(|h| h.trim().to_string());
            }
            if let Some(client) = header(&self.proxy.for_header)
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok())
            {
                f.client = Some(client);
            }
        }
        if let Some((https, host)) = &self.public {
            f.https |= *https;
            f.host = Some(host.clone());
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn conn(ip: &str, tls: bool) -> Option<Conn> {
        Some(Conn {
            peer: SocketAddr::new(ip.parse().unwrap(), 40000),
            tls,
        })
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_proxy() {
        let door = FrontDoor::new(
            Proxy {
                trusted: vec!["10.0.0.5".parse().unwrap()],
                ..Proxy::default()
            },
            None,
        );
        let h = headers(&[
            ("host", "10.0.0.9:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "center.example.cn"),
            ("x-forwarded-for", "1.2.3.4, 203.0.113.7"),
        ]);
        let via_proxy = door.frontend(conn("10.0.0.5", false), &h);
        assert!(via_proxy.https);
        assert_eq!(via_proxy.host.as_deref(), Some("center.example.cn"));
        assert_eq!(via_proxy.client, Some("203.0.113.7".parse().unwrap()));
        let forged = door.frontend(conn("198.51.100.1", false), &h);
        assert!(!forged.https, "a stranger's X-Forwarded-Proto is ignored");
        assert_eq!(forged.host.as_deref(), Some("10.0.0.9:8080"));
        assert_eq!(forged.client, Some("198.51.100.1".parse().unwrap()));
        assert!(
            door.frontend(conn("198.51.100.1", true), &h).https,
            "our own TLS"
        );
    }

    #[test]
    fn a_public_url_names_the_host_browsers_use() {
        let door = FrontDoor::new(Proxy::default(), Some("https://center.example.cn/"));
        let f = door.frontend(
            conn("127.0.0.1", false),
            &headers(&[("host", "127.0.0.1:8080")]),
        );
        assert!(f.https);
        assert_eq!(f.host.as_deref(), Some("center.example.cn"));
    }
}
