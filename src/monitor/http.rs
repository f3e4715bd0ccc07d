//! The monitor's HTTP endpoint (`--prometheus ADDR`): `/metrics` (the exposition, in the format the scraper's
//! `Accept` header asks for), `/` (the live page) and `/intervals.json` (what the live page polls).
//!
//! A few lines of HTTP/1.1 on std::net rather than a server crate: each request is one GET answered with a text
//! `report::monitor` renders from what the interval loop published, and hyper or tiny_http would bring a dependency tree
//! (and a runtime) for that. One connection at a time, `Connection: close`.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::Published;
use crate::report::monitor::{
    exposition::{self, Format},
    page,
};

/// A parsed request line and the one header the endpoint cares about.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Without the query string.
    pub path: String,
    pub accept: Option<String>,
}

/// Parses the head of an HTTP request (request line and headers).
pub fn parse(head: &[u8]) -> Option<Request> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let accept = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("accept")
            .then(|| value.trim().to_owned())
    });
    Some(Request { method, path, accept })
}

/// Status, content type and body of the answer to `request`.
pub fn respond(request: &Request, published: &Published) -> (&'static str, &'static str, String) {
    if request.method != "GET" {
        return (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        );
    }
    match request.path.as_str() {
        "/metrics" => {
            let format = Format::from_accept(request.accept.as_deref());
            let body = exposition::render(
                format,
                &published.info,
                published.labels.latency,
                &published.totals,
                published.lost,
            );
            ("200 OK", format.content_type(), body)
        }
        "/" => ("200 OK", "text/html; charset=utf-8", page::HTML.to_owned()),
        "/intervals.json" => (
            "200 OK",
            "application/json",
            serde_json::to_string(&page::Feed::new(
                &published.info,
                &published.watching,
                published.interval_ms,
                &published.comms,
                &published.history,
            ))
            .unwrap_or_default(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: phoebe serves /metrics, / and /intervals.json\n".into(),
        ),
    }
}

fn answer(mut stream: TcpStream, published: &Mutex<Published>) {
    // A client that sends nothing, or reads nothing, holds the responder 2 s at most.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (status, content_type, body) = match parse(&head) {
        Some(request) => match published.lock() {
            Ok(published) => respond(&request, &published),
            Err(_) => (
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                String::new(),
            ),
        },
        None => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "not an HTTP request\n".into(),
        ),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Answers requests until phoebe exits.
pub fn serve(listener: TcpListener, published: Arc<Mutex<Published>>) {
    // A failed accept (the peer reset the connection meanwhile, EMFILE) leaves the listener usable: next one.
    for stream in listener.incoming().flatten() {
        answer(stream, &published);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_their_accept_header() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nACCEPT: application/openmetrics-text\r\n\r\n";
        assert_eq!(
            parse(head),
            Some(Request {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: Some("application/openmetrics-text".into()),
            })
        );
        assert_eq!(parse(b"\xff\xfe"), None);
        assert_eq!(parse(b"GET / HTTP/1.0\r\n\r\n").map(|r| r.accept), Some(None));
    }
}
