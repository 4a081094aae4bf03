//! Running plugin instances: one wasmtime store per pipeline stage ([`Sandbox`]), with its
//! memory cap, per-call epoch deadline, output-size cap and cap on what the host copies out of
//! a call. The calls of each world, for plugins of either contract version
//! (`sluice:plugin@0.2` column batches, with the input laid out by [`super::adapt`];
//! `sluice:plugin@0.1` packed rows as they are), are in `transform` and `window`.

use std::time::Duration;

use sluice_plugin_sdk::rows::Field as RowField;
use wasmtime::component::{Component, Linker};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

use super::PluginError;
use super::adapt::ColumnInput;
use super::bindings::{Batch, WindowSpec, v0_1, v0_2};
use super::engine::{EPOCH_TICK, PluginEngine};
use super::inspect::{Contract, contract};
use super::rows::Rows;
use super::schema;

mod transform;
mod window;

pub use transform::TransformInstance;
pub use window::WindowInstance;

/// Linear memories one plugin instance may create: a component built from `wit/` has one,
/// and so do the language runtimes componentize-py and componentize-js make (their many
/// modules share it). The memory cap applies to each.
const MEMORIES: usize = 2;
/// Tables one instance may create (a module's function table and the component's shims; a
/// Python runtime links a dozen modules, each with its table).
const TABLES: usize = 32;
/// Core instances one component may create: 1-3 for a Rust plugin, ~100 for a Python runtime
/// (libpython, libc and their shims are each an instance).
const INSTANCES: usize = 256;
/// Elements one table may hold (a function table of a large plugin has a few thousand).
const TABLE_ELEMENTS: usize = 100_000;

/// Resource limits of one plugin instance.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Cap on the instance's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call.
    pub call_timeout: Duration,
    /// Cap on the bytes of rows one call may return.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(5),
            max_output_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// The host's default ceilings: no spec may grant a plugin more (`sluice run
    /// --max-plugin-memory`, `--max-call-timeout`, `--max-plugin-output`).
    pub fn ceilings() -> Self {
        Self {
            memory_bytes: 1 << 30,
            call_timeout: Duration::from_secs(60),
            max_output_bytes: 1 << 30,
        }
    }

    /// The most bytes the host copies out of one call (wasmtime's hostcall fuel, which
    /// counts the host's copy of every string and list lifted): three times the memory
    /// limit. Every result that fits in the plugin's memory passes (a list of failures or
    /// fields takes at most 2.7 times its guest size on the host), so a window state or an
    /// output as large as the memory allows is never refused for its size here; results
    /// that name the same guest bytes many times (strings or lists sharing memory, which
    /// the canonical ABI allows) cannot make the host allocate without bound.
    pub fn copy_budget(&self) -> usize {
        self.memory_bytes.saturating_mul(3)
    }

    /// What in `self` is over `ceilings`: the spec key (`memory`, `call_timeout`,
    /// `max_output`) and a sentence naming the host option that raises it.
    pub fn over(&self, ceilings: &Limits) -> Vec<(&'static str, String)> {
        let mut over = Vec::new();
        if self.memory_bytes > ceilings.memory_bytes {
            over.push((
                "memory",
                format!(
                    "{} bytes is over this host's ceiling of {} bytes (sluice run \
                     --max-plugin-memory)",
                    self.memory_bytes, ceilings.memory_bytes
                ),
            ));
        }
        if self.call_timeout > ceilings.call_timeout {
            over.push((
                "call_timeout",
                format!(
                    "{} is over this host's ceiling of {} (sluice run --max-call-timeout)",
                    seconds(self.call_timeout),
                    seconds(ceilings.call_timeout)
                ),
            ));
        }
        if self.max_output_bytes > ceilings.max_output_bytes {
            over.push((
                "max_output",
                format!(
                    "{} bytes is over this host's ceiling of {} bytes (sluice run \
                     --max-plugin-output)",
                    self.max_output_bytes, ceilings.max_output_bytes
                ),
            ));
        }
        over
    }
}

/// `d` as `90s` or `250ms`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The output of one call, in host types.
#[derive(Debug)]
pub struct PluginOutput {
    /// The rows: packed, or the columns of a 0.2 plugin kept for a 0.2 step after it.
    pub rows: Rows,
    /// Input index of each output row (empty for window results).
    pub origins: Vec<u32>,
    /// Per-record failures: input index and reason.
    pub failures: Vec<(u32, String)>,
}

struct HostState {
    limits: StoreLimits,
    /// Linear memory granted to the instance so far (bytes), for status and metrics.
    memory: usize,
    /// Deny-all WASI, used only by plugins that import it.
    wasi: super::wasi::WasiState,
}

impl wasmtime_wasi::WasiView for HostState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.wasi.view()
    }
}

/// The store's limits, noting the memory they grant.
impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if granted {
            self.memory = (self.memory + desired).saturating_sub(current);
        }
        Ok(granted)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// What both worlds share: the store, the plugin's identity and its limits.
struct Sandbox {
    store: Store<HostState>,
    plugin: String,
    limits: Limits,
}

impl Sandbox {
    fn new(engine: &PluginEngine, plugin: &str, limits: &Limits) -> Self {
        let state = HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(INSTANCES)
                .memories(MEMORIES)
                .tables(TABLES)
                .table_elements(TABLE_ELEMENTS)
                .trap_on_grow_failure(true)
                .build(),
            memory: 0,
            wasi: super::wasi::WasiState::new(plugin),
        };
        let mut store = Store::new(engine.engine(), state);
        if engine.enforces_limits() {
            store.limiter(|s| s);
            store.set_hostcall_fuel(limits.copy_budget());
        } else {
            store.set_hostcall_fuel(usize::MAX);
        }
        store.epoch_deadline_trap();
        Self {
            store,
            plugin: plugin.to_owned(),
            limits: limits.clone(),
        }
    }

    /// Links and instantiates `component` as `world` with `instantiate` (within a call's
    /// deadline), then arms the deadline for the `init` call that follows.
    fn instantiate<B>(
        &mut self,
        engine: &PluginEngine,
        component: &Component,
        world: &str,
        instantiate: impl FnOnce(
            &mut Store<HostState>,
            &Component,
            &Linker<HostState>,
        ) -> wasmtime::Result<B>,
    ) -> Result<B, PluginError> {
        // Instantiating runs the component's start functions (a language runtime's set-up):
        // they get a call's time budget too.
        self.arm();
        let incompatible = |e: wasmtime::Error| PluginError::incompatible(&self.plugin, world, &e);
        let linker = super::sandbox::linker(engine, component).map_err(incompatible)?;
        let bindings = instantiate(&mut self.store, component, &linker).map_err(incompatible)?;
        self.arm();
        Ok(bindings)
    }

    /// The output schema from the result of an `init` call (`init` of either version).
    fn schema<F>(
        &self,
        init: wasmtime::Result<Result<Vec<F>, String>>,
        from_wit: impl FnOnce(&[F]) -> Vec<RowField>,
    ) -> Result<Vec<RowField>, PluginError> {
        let schema = init
            .map_err(|e| self.trap(e))?
            .map_err(|message| PluginError::Init {
                plugin: self.plugin.clone(),
                message,
            })?;
        Ok(from_wit(&schema))
    }

    /// The contract `component` is built for.
    fn contract(
        &self,
        engine: &PluginEngine,
        component: &Component,
    ) -> Result<Contract, PluginError> {
        contract(engine, component).map_err(|e| PluginError::Load {
            path: self.plugin.clone(),
            message: e.to_string(),
        })
    }

    /// Arms the deadline for the next call.
    fn arm(&mut self) {
        let ticks = (self.limits.call_timeout.as_micros() / EPOCH_TICK.as_micros()).max(1);
        self.store.set_epoch_deadline(ticks as u64 + 1);
    }

    fn trap(&self, error: wasmtime::Error) -> PluginError {
        let message = trap_message(&error);
        let limit = if message.contains("interrupt") {
            Some(format!(
                "exceeded its time limit of {:?} per call",
                self.limits.call_timeout
            ))
        } else if message.contains("memory") && message.contains("grow") {
            Some(format!(
                "exceeded its memory limit of {} bytes",
                self.limits.memory_bytes
            ))
        } else if message.contains(FUEL_EXHAUSTED) {
            Some(format!(
                "returned more than {} bytes for the host to copy, three times its memory \
                 limit of {} bytes (strings or lists that share memory)",
                self.limits.copy_budget(),
                self.limits.memory_bytes
            ))
        } else {
            None
        };
        match limit {
            Some(what) => PluginError::Limit {
                plugin: self.plugin.clone(),
                what,
            },
            None => PluginError::Trap {
                plugin: self.plugin.clone(),
                message,
            },
        }
    }

    /// The output of a call over `inputs` input records (`None`: no input), checked at the
    /// boundary (see `output`; a 0.2 output is packed unless `columns`): malformed output is
    /// a limit breach of the plugin.
    fn finish(
        &self,
        out: wasmtime::Result<Result<CallOutput, String>>,
        inputs: Option<usize>,
        schema: &[RowField],
        columns: bool,
    ) -> Result<PluginOutput, PluginError> {
        let out = out
            .map_err(|e| self.trap(e))?
            .map_err(|message| PluginError::Guest {
                plugin: self.plugin.clone(),
                message,
            })?;
        let max = self.limits.max_output_bytes;
        let checked = match out {
            CallOutput::V0_1(out) => super::output::check(out, inputs, max, schema),
            CallOutput::V0_2(out) => {
                super::output::check_columns(out, inputs, max, schema, !columns)
            }
        };
        checked.map_err(|what| PluginError::Limit {
            plugin: self.plugin.clone(),
            what,
        })
    }

    /// The input of a 0.2 call: a column batch as it is, packed rows laid out in `buffers`.
    fn columns<'a>(
        &self,
        buffers: &'a mut ColumnInput,
        rows: &'a Rows,
    ) -> Result<&'a v0_2::Batch, PluginError> {
        match rows {
            Rows::Columns(c) => Ok(&c.batch),
            Rows::Packed(b) => buffers.fill(b).map_err(|message| PluginError::Guest {
                plugin: self.plugin.clone(),
                message: format!("the host could not lay out its {message}"),
            }),
        }
    }

    /// The input of a 0.1 call: packed rows, a column batch read into them.
    fn packed<'a>(&self, rows: &'a Rows) -> Result<std::borrow::Cow<'a, Batch>, PluginError> {
        rows.to_packed().map_err(|e| PluginError::Guest {
            plugin: self.plugin.clone(),
            message: format!("its input does not read as rows: {}", e.message),
        })
    }
}

/// What a call of either version returned.
enum CallOutput {
    V0_1(v0_1::Output),
    V0_2(v0_2::Output),
}

/// The output of a call, whichever version made it.
fn out1(
    r: wasmtime::Result<Result<v0_1::Output, String>>,
) -> wasmtime::Result<Result<CallOutput, String>> {
    r.map(|r| r.map(CallOutput::V0_1))
}

fn out2(
    r: wasmtime::Result<Result<v0_2::Output, String>>,
) -> wasmtime::Result<Result<CallOutput, String>> {
    r.map(|r| r.map(CallOutput::V0_2))
}

/// What wasmtime says when a call's results are over the store's hostcall fuel.
const FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// What a trap says, without the wasm backtrace: the trap code when there is one (a Rust
/// panic is the `unreachable` instruction), else the error chain on one line.
fn trap_message(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => {
            let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
            chain.join(": ").replace('\n', " ")
        }
    }
}
