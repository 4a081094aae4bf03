//! The deny-all WASI granted to plugins that import WASI (those built with componentize-py or
//! componentize-js: a language runtime inside the component asks for clocks, randomness and
//! stdio). Only the interfaces of [`GRANTED`] may be imported; each is implemented with
//! nothing behind it: no environment variables, no arguments, no stdin, no preopened
//! folders, no network (every socket address is refused), and stdout and stderr go to the
//! host log, at most [`OUTPUT_CAP`] bytes per instance. Clocks and randomness are the host's.
//! A spec or an upload cannot grant more: there is no setting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The WASI interfaces (without version) a plugin may import, each granted deny-all.
pub const GRANTED: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// The most a plugin instance may write to stdout and stderr together; the rest is dropped
/// (the plugin does not see an error), with one warning in the log.
pub const OUTPUT_CAP: usize = 64 << 10;

/// Whether `import` (`wasi:clocks/wall-clock@0.2.3`) is a granted interface.
pub fn granted(import: &str) -> bool {
    let interface = import.split('@').next().unwrap_or(import);
    GRANTED.contains(&interface)
}

/// The WASI state of one plugin instance.
pub struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiState {
    /// Deny-all WASI for the plugin `plugin`: its stdout and stderr go to the log.
    pub fn new(plugin: &str) -> Self {
        let budget = Arc::new(AtomicUsize::new(OUTPUT_CAP));
        let stream = |name: &'static str| LogStream {
            plugin: plugin.into(),
            stream: name,
            budget: budget.clone(),
        };
        // The builder's defaults are deny-all already (no env, args, preopens or socket
        // addresses, closed stdin); they are spelled out so a new default cannot widen them.
        let ctx = WasiCtx::builder()
            .stdout(stream("stdout"))
            .stderr(stream("stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_blocking_current_thread(true)
            .build();
        Self {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiState {
    /// The view the linker's host functions use (a store type's `WasiView::ctx`).
    pub fn view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Adds the WASI interfaces to `linker` (the deny-all context decides what they do; the
/// import check decides which a component may name).
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)
}

/// stdout or stderr of a plugin: each write goes to the host log, line by line, until the
/// instance's budget is spent.
#[derive(Clone)]
struct LogStream {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<AtomicUsize>,
}

impl LogStream {
    fn log(&self, bytes: &[u8]) {
        let left = self.budget.load(Ordering::Relaxed);
        if left == 0 {
            return;
        }
        let take = bytes.len().min(left);
        self.budget.fetch_sub(take, Ordering::Relaxed);
        let text = String::from_utf8_lossy(&bytes[..take]);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(plugin = %self.plugin, stream = self.stream, "{line}");
        }
        if take < bytes.len() {
            tracing::warn!(plugin = %self.plugin, cap = OUTPUT_CAP,
                "The plugin wrote more than its output cap to stdout and stderr; the rest is dropped.");
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only the p2 stream is used (plugins are WASI 0.2 components).
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.log(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_deny_all_interfaces_are_granted() {
        assert!(granted("wasi:clocks/wall-clock@0.2.3"));
        assert!(granted("wasi:cli/stdout@0.2.0"));
        assert!(!granted("wasi:filesystem/preopens@0.2.0"));
        assert!(!granted("wasi:sockets/tcp@0.2.0"));
        assert!(!granted("wasi:http/outgoing-handler@0.2.0"));
        assert!(!granted("acme:evil/run"));
    }

    #[test]
    fn output_past_the_cap_is_dropped() {
        let mut stream = LogStream {
            plugin: "p".into(),
            stream: "stdout",
            budget: Arc::new(AtomicUsize::new(10)),
        };
        stream.write(Bytes::from_static(b"12345678\n")).unwrap();
        stream.write(Bytes::from_static(b"abcdef\n")).unwrap();
        assert_eq!(stream.budget.load(Ordering::Relaxed), 0);
        stream.write(Bytes::from_static(b"more")).unwrap();
    }
}
