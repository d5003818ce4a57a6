//! HTTP/1.1 framing: parsing a request head, and the response value the routes build.

use crate::encode::json_str;
use crate::model::{Content, header_value};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

const MAX_HEAD_BYTES: u64 = 64 * 1024;
const MAX_HEADERS: usize = 100;
pub(crate) const MAX_REQUEST_BODY: u64 = 16 << 20;

pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query as sent.
    pub(crate) target: String,
    pub(crate) path: String,
    pub(crate) query: String,
    http10: bool,
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    pub(crate) fn keep_alive(&self) -> bool {
        let connection = self
            .header("connection")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
        if self.http10 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

pub(crate) enum ReadError {
    /// EOF, timeout or reset: just close.
    Closed,
    /// Malformed: answer 400 and close.
    Bad(&'static str),
}

pub(crate) fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    let mut line = read_line(reader, &mut budget)?;
    // RFC 9112 §2.2: ignore empty lines before the request line.
    while line.is_empty() {
        line = read_line(reader, &mut budget)?;
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad("unsupported HTTP version")),
    };
    if !target.starts_with('/') || method.is_empty() {
        return Err(ReadError::Bad("malformed request target"));
    }
    let headers = read_headers(reader, &mut budget)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        http10,
        headers,
    };
    if !http10 && req.header("host").is_none() {
        return Err(ReadError::Bad("missing Host header"));
    }
    skip_body(reader, &req)?;
    Ok(req)
}

fn read_headers(
    reader: &mut BufReader<TcpStream>,
    budget: &mut u64,
) -> Result<Vec<(String, String)>, ReadError> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, budget)?;
        if line.is_empty() {
            return Ok(headers);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad("malformed header line"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(ReadError::Bad("malformed header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
        if headers.len() > MAX_HEADERS {
            return Err(ReadError::Bad("too many headers"));
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>, budget: &mut u64) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget)
        .read_until(b'\n', &mut buf)
        .map_err(|_| ReadError::Closed)?;
    *budget -= n as u64;
    if buf.last() != Some(&b'\n') {
        return Err(if *budget == 0 {
            ReadError::Bad("request head too large")
        } else {
            ReadError::Closed
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ReadError::Bad("request head is not UTF-8"))
}

/// Request bodies (only admin POSTs have any) are read and ignored, keeping the connection in sync.
fn skip_body(reader: &mut BufReader<TcpStream>, req: &Request) -> Result<(), ReadError> {
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad("chunked request bodies are not supported"));
    }
    let Some(length) = req.header("content-length") else {
        return Ok(());
    };
    let length: u64 = length
        .parse()
        .map_err(|_| ReadError::Bad("malformed Content-Length"))?;
    if length > MAX_REQUEST_BODY {
        return Err(ReadError::Bad("request body too large"));
    }
    let copied = io::copy(&mut reader.by_ref().take(length), &mut io::sink())
        .map_err(|_| ReadError::Closed)?;
    if copied == length {
        Ok(())
    } else {
        Err(ReadError::Closed)
    }
}

/// What to send back.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    Bytes(Vec<u8>),
    Content(ContentSlice),
    /// `pad` bytes of JSON whitespace, then `body`; streamed (`Fault::PaddedJson`).
    Padded {
        pad: u64,
        body: Vec<u8>,
    },
}

/// A byte range of file content, counted into `counter` (and the total) as it is sent.
pub(crate) struct ContentSlice {
    pub(crate) content: Content,
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) total: u64,
    pub(crate) counter: Arc<AtomicU64>,
    /// Junk bytes sent after the slice (`Fault::LongBody`), not counted as file bytes.
    pub(crate) junk: u64,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let headers = vec![("Content-Type", content_type.to_owned())];
        Self {
            status,
            headers,
            body: Body::Bytes(body.into()),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    pub(crate) fn body_len(&self) -> u64 {
        match &self.body {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Content(slice) => slice.len + slice.junk,
            Body::Padded { pad, body } => pad + body.len() as u64,
        }
    }
}

/// Header values never carry raw control or non-ASCII characters (client-controlled text such as
/// a revision ends up in `X-Error-Message`); those are percent-encoded.
pub(crate) fn header_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            let mut utf8 = [0; 4];
            for b in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

// Error answers of the two hosts: JSON with `X-Error-*` headers on the Hub, S3-style XML on the CDN.

/// A Hub error: `{"error": message}` with `X-Error-Message` (and `X-Error-Code` when given).
pub(crate) fn hub_error(status: u16, code: Option<&str>, message: &str) -> Response {
    let body = format!("{{\"error\":{}}}", json_str(message));
    let mut resp = Response::new(status, "application/json; charset=utf-8", body);
    if let Some(code) = code {
        resp = resp.header("X-Error-Code", code);
    }
    resp.header("X-Error-Message", message)
}

/// A CDN error, as S3 words it.
pub(crate) fn cdn_error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>\n"
    );
    Response::new(status, "application/xml", body)
}

/// A redirect with the Hub's plain-text body.
pub(crate) fn redirect(status: u16, location: &str) -> Response {
    let text = if status == 302 {
        "Found"
    } else {
        "Temporary Redirect"
    };
    let body = format!("{text}. Redirecting to {location}");
    Response::new(status, "text/plain; charset=utf-8", body).header("Location", location)
}
