//! HTTP helpers of host/tests/dashboard.rs: a hand-written HTTP/1.1 client for plain GETs
//! and a server-sent-events reader that timestamps every event on arrival.

#![allow(dead_code, reason = "each test uses a part of the helpers")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// Sends `GET path` over HTTP/1.1 to 127.0.0.1:`port`; returns (status, headers, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader)?;
    let mut body = Vec::new();
    if headers.contains("transfer-encoding: chunked") {
        while let Some(chunk) = read_chunk(&mut reader)? {
            body.extend(chunk);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// Reads the status line and the headers (lower-cased, one per line).
fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, String)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok((status, headers));
        }
        headers.push_str(&line.trim().to_ascii_lowercase());
        headers.push('\n');
    }
}

/// One chunk of a chunked body; `None` after the last one.
fn read_chunk(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let size = line.trim().split(';').next().unwrap_or("");
    let size = usize::from_str_radix(size, 16)
        .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
    if size == 0 {
        return Ok(None);
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk)?;
    chunk.truncate(size);
    Ok(Some(chunk))
}

/// One server-sent event: when it arrived and its JSON data.
#[derive(Clone, Debug)]
pub struct Event {
    pub at: Instant,
    pub data: Json,
}

/// Reads a live endpoint on a thread until finished or dropped, keeping every event.
pub struct SseReader {
    pub events: Arc<Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
    /// The connection, to shut down (which ends the thread's blocking read).
    socket: TcpStream,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl SseReader {
    /// Connects to `path` on 127.0.0.1:`port`; fails unless it answers 200 with SSE.
    pub fn connect(port: u16, path: &str) -> Result<SseReader, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let socket = stream.try_clone().map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).map_err(|e| e.to_string())?;
        if status != 200 || !headers.contains("content-type: text/event-stream") {
            return Err(format!("{path} answered {status} with headers\n{headers}"));
        }
        let chunked = headers.contains("transfer-encoding: chunked");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (e, s) = (events.clone(), stop.clone());
        let thread = std::thread::spawn(move || read_events(reader, chunked, &e, &s));
        Ok(SseReader {
            events,
            stop,
            socket,
            thread: Some(thread),
        })
    }

    /// A copy of the events so far.
    pub fn snapshot(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Stops reading; returns the events and the reader's error, if it had one.
    pub fn finish(mut self) -> (Vec<Event>, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        let error = self.thread.take().and_then(|t| t.join().ok()?.err());
        (self.snapshot(), error)
    }
}

impl Drop for SseReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// The reader thread: de-chunks the body, splits it into lines, keeps each `data:` line.
fn read_events(
    mut reader: BufReader<TcpStream>,
    chunked: bool,
    events: &Mutex<Vec<Event>>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let (mut pending, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
    loop {
        let read = if chunked {
            read_chunk(&mut reader).map(|c| c.map(|c| pending.extend(c)).is_some())
        } else {
            reader.read(&mut buf).map(|n| {
                pending.extend_from_slice(&buf[..n]);
                n > 0
            })
        };
        match read {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(_) if stop.load(Ordering::Relaxed) => return Ok(()),
            Err(e) => return Err(format!("reading the live stream: {e}")),
        }
        let at = Instant::now();
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                let data = serde_json::from_str(data.trim_start())
                    .map_err(|e| format!("an event is not JSON ({e}): {data}"))?;
                events.lock().unwrap().push(Event { at, data });
            }
        }
    }
}
