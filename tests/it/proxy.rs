//! A fault-injecting HTTP/1.1 proxy on loopback, for tests of what happens when a service dies or misbehaves
//! mid-run. It forwards each request to the upstream on a fresh connection; after `fail_after` requests it
//! answers every further one by dropping the connection, like a stopped server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub line: String,
    pub host: String,
    /// The user of a Basic `Authorization`, `bearer` for a token, `None` without one.
    pub auth: Option<String>,
}

pub struct FaultProxy {
    pub addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultProxy {
    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
    }
}

/// What goes wrong.
#[derive(Clone, Copy)]
pub enum Fault {
    /// Every `n`th request fails: alternately a `503` and a dropped connection.
    Flaky(usize),
    /// Manifest `PUT`s answer Harbor's `412 PRECONDITION` for an immutable tag.
    ImmutableTags,
    /// After this many successful answers to requests whose first line starts with the prefix (e.g.
    /// `POST /api/deployments/`), the "server" stops answering. Deterministic under load, unlike a count of
    /// all requests: a busy answer retried does not move the point of failure.
    StopAfterSuccess(&'static str, usize),
    /// The first blob upload `PUT` answers 401, as a registry does when the token expired mid-upload.
    ExpireTokenOnce,
    /// Nothing goes wrong; requests are only recorded.
    None,
    /// Upload `Location`s point at `localhost` instead of `127.0.0.1` (the same proxy, another origin).
    LocationElsewhere,
    /// Manifest `PUT`s to a tag starting with the prefix answer `500`.
    FailTagsStartingWith(&'static str),
    /// The first request whose first line starts with `.0` and contains `.1` loses its connection: after the
    /// upstream applied it and answered (`.2` true: the answer is lost), or before it reaches the upstream.
    DropOnce(&'static str, &'static str, bool),
    /// The first `n` requests whose first line contains the text answer `503` (a busy server).
    Storm(&'static str, usize),
}

/// `upstream`: `host:port`.
pub fn start_with(upstream: &str, fault: Fault) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let (up, count, halt, log) = (
        upstream.to_string(),
        requests.clone(),
        stop.clone(),
        seen.clone(),
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if halt.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (up, count, log) = (up.clone(), count.clone(), log.clone());
            std::thread::spawn(move || serve(conn, &up, &count, fault, &log));
        }
    });
    FaultProxy { addr, stop, seen }
}

fn who(header_value: &str) -> String {
    use base64::Engine;
    match header_value.trim().split_once(' ') {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("basic") => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(cred.trim())
                .unwrap_or_default();
            let s = String::from_utf8_lossy(&raw).into_owned();
            s.split_once(':').map(|(u, _)| u.to_string()).unwrap_or(s)
        }
        _ => "bearer".into(),
    }
}

/// One request per connection: the upstream is asked with `Connection: close`, and its answer (which says
/// so) is relayed as is, so the client opens a new connection for its next request.
fn serve(
    client: TcpStream,
    upstream: &str,
    count: &AtomicUsize,
    fault: Fault,
    log: &Mutex<Vec<Seen>>,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut chunked = false;
    let mut seen = Seen {
        line: String::new(),
        host: String::new(),
        auth: None,
    };
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if seen.line.is_empty() {
            seen.line = line.trim_end().to_string();
        }
        if let Some(v) = lower.strip_prefix("host:") {
            seen.host = v.trim().to_string();
        }
        if lower.starts_with("authorization:") {
            seen.auth = Some(who(&line["authorization:".len()..]));
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    log.lock().unwrap().push(seen);
    let body = if chunked {
        match read_chunked(&mut reader) {
            Some(b) => b,
            None => return,
        }
    } else {
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        body
    };
    if let Fault::StopAfterSuccess(_, limit) = fault
        && count.load(Ordering::SeqCst) >= limit
    {
        return;
    }
    let n = match fault {
        Fault::StopAfterSuccess(..) => 0,
        // Counts blob-upload PUTs only: the first one is refused.
        Fault::ExpireTokenOnce => {
            let first = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            if first.starts_with("PUT ") && first.contains("/blobs/uploads/") {
                count.fetch_add(1, Ordering::SeqCst)
            } else {
                usize::MAX
            }
        }
        _ => count.fetch_add(1, Ordering::SeqCst),
    };
    let first_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    match fault {
        Fault::ExpireTokenOnce if n == 0 => {
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#;
            let _ = write!(
                client,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        Fault::Flaky(every) if n % every == every - 1 => {
            if (n / every) % 2 == 0 {
                let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
            return;
        }
        Fault::Storm(prefix, n)
            if first_line.contains(prefix) && count.fetch_add(1, Ordering::SeqCst) < n =>
        {
            let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        // The first matching request: the upstream never hears of it.
        Fault::DropOnce(prefix, needle, false)
            if first_line.starts_with(prefix)
                && first_line.contains(needle)
                && count.fetch_add(1, Ordering::SeqCst) == 0 =>
        {
            return;
        }
        Fault::FailTagsStartingWith(prefix)
            if first_line.starts_with("PUT ")
                && first_line.contains(&format!("/manifests/{prefix}")) =>
        {
            let _ = client.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Fault::ImmutableTags
            if first_line.starts_with("PUT ") && first_line.contains("/manifests/") =>
        {
            let body = r#"{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to 'flows/etl:1.0' configured as immutable."}]}"#;
            let _ = write!(
                client,
                "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        _ => {}
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    if up
        .write_all(&head)
        .and_then(|_| up.write_all(&body))
        .is_err()
    {
        return;
    }
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    if let Fault::DropOnce(prefix, needle, true) = fault
        && first_line.starts_with(prefix)
        && first_line.contains(needle)
        && count.fetch_add(1, Ordering::SeqCst) == 0
    {
        return; // applied upstream; the answer never reaches the client
    }
    if let Fault::LocationElsewhere = fault {
        response = relocate(&response);
    }
    if let Fault::StopAfterSuccess(prefix, _) = fault
        && first_line.starts_with(prefix)
        && response.starts_with(b"HTTP/1.1 2")
    {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let _ = client.write_all(&response);
}

/// `Location: http://127.0.0.1:P/...` → `Location: http://localhost:P/...`, in the header block only.
fn relocate(response: &[u8]) -> Vec<u8> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response.to_vec();
    };
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let head: Vec<String> = head
        .split("\r\n")
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("location:") {
                l.replace("127.0.0.1", "localhost")
            } else {
                l.to_string()
            }
        })
        .collect();
    let mut out = head.join("\r\n").into_bytes();
    out.extend_from_slice(&response[end..]);
    out
}

/// A chunked body as it came (framing kept, so it is forwarded unchanged), through the final `0` chunk.
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).ok()? == 0 {
            return None;
        }
        raw.extend_from_slice(size_line.as_bytes());
        let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        raw.extend_from_slice(&chunk);
        if size == 0 {
            return Some(raw);
        }
    }
}
