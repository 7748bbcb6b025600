//! A server that answers what a test tells it to, for hostile answers no real service gives: a manifest that
//! is not the digest it was asked for, a config that is not an object, a deployments page that never ends.
//! Only for those: everything a real service can do is tested against the real one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// `(method, path prefix, status, content type, body)`; the first route whose method and prefix match answers.
pub type Route = (&'static str, String, u16, &'static str, Vec<u8>);

pub struct Fake {
    pub addr: String,
}

pub fn serve(routes: Vec<Route>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || answer(conn, &routes));
        }
    });
    Fake { addr }
}

fn answer(conn: TcpStream, routes: &[Route]) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = routes
        .iter()
        .find(|(m, p, ..)| *m == method && path.starts_with(p.as_str()))
        .map(|(_, _, s, k, b)| (*s, *k, b.clone()))
        .unwrap_or((
            404,
            "application/json",
            br#"{"detail": "not found"}"#.to_vec(),
        ));
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
}
