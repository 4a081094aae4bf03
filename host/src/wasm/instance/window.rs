//! A running `window` plugin ([`WindowInstance`]): `init` with the window spec, then
//! `process` of each batch with the watermark, `advance`, `snapshot` and `restore`, through
//! the sandbox of its stage, for either contract version.

use super::*;

/// The bindings of a `window` instance.
enum WindowWorld {
    V0_1(v0_1::Window),
    V0_2(v0_2::Window, Box<ColumnInput>),
}

/// A running `window` plugin.
pub struct WindowInstance {
    sandbox: Sandbox,
    world: WindowWorld,
    output: Vec<RowField>,
}

impl WindowInstance {
    /// Instantiates the plugin and calls `init(config, input, window)`.
    pub fn new(
        engine: &PluginEngine,
        component: &Component,
        plugin: &str,
        limits: &Limits,
        config: &str,
        input: &[RowField],
        window: &WindowSpec,
    ) -> Result<Self, PluginError> {
        let mut sandbox = Sandbox::new(engine, plugin, limits);
        let (world, output) = match sandbox.contract(engine, component)? {
            Contract::V0_1 => {
                let bindings = sandbox.instantiate(engine, component, "window", |s, c, l| {
                    v0_1::Window::instantiate(s, c, l)
                })?;
                let wit = schema::v0_1::to_wit(input);
                let init = bindings.call_init(&mut sandbox.store, config, &wit, window);
                let output = sandbox.schema(init, schema::v0_1::from_wit)?;
                (WindowWorld::V0_1(bindings), output)
            }
            Contract::V0_2 => {
                let bindings = sandbox.instantiate(engine, component, "window", |s, c, l| {
                    v0_2::Window::instantiate(s, c, l)
                })?;
                let wit = schema::v0_2::to_wit(input);
                let spec = v0_2::WindowSpec {
                    event_time: window.event_time.clone(),
                    size: window.size,
                    slide: window.slide,
                };
                let init = bindings.call_init(&mut sandbox.store, config, &wit, &spec);
                let output = sandbox.schema(init, schema::v0_2::from_wit)?;
                let columns = Box::new(ColumnInput::new(input));
                (WindowWorld::V0_2(bindings, columns), output)
            }
        };
        Ok(Self {
            sandbox,
            world,
            output,
        })
    }

    /// Whether it is built for `sluice:plugin@0.2` (it takes column batches).
    pub fn takes_columns(&self) -> bool {
        matches!(self.world, WindowWorld::V0_2(..))
    }

    /// The schema of the rows this instance emits.
    pub fn output_schema(&self) -> &[RowField] {
        &self.output
    }

    /// Linear memory of the instance (bytes).
    pub fn memory_bytes(&self) -> usize {
        self.sandbox.store.data().memory
    }

    /// Adds one batch of on-time rows.
    pub fn process(&mut self, input: &Rows, watermark: i64) -> Result<PluginOutput, PluginError> {
        let sandbox = &mut self.sandbox;
        let out = match &mut self.world {
            WindowWorld::V0_1(bindings) => {
                let rows = sandbox.packed(input)?;
                sandbox.arm();
                out1(bindings.call_process(&mut sandbox.store, &rows, watermark))
            }
            WindowWorld::V0_2(bindings, buffers) => {
                let batch = sandbox.columns(buffers, input)?;
                sandbox.arm();
                out2(bindings.call_process(&mut sandbox.store, batch, watermark))
            }
        };
        sandbox.finish(out, Some(input.len()), &self.output, false)
    }

    /// Emits the windows that end at or before `watermark`.
    pub fn advance(&mut self, watermark: i64) -> Result<PluginOutput, PluginError> {
        let sandbox = &mut self.sandbox;
        sandbox.arm();
        let out = match &self.world {
            WindowWorld::V0_1(bindings) => {
                out1(bindings.call_advance(&mut sandbox.store, watermark))
            }
            WindowWorld::V0_2(bindings, _) => {
                out2(bindings.call_advance(&mut sandbox.store, watermark))
            }
        };
        sandbox.finish(out, None, &self.output, false)
    }

    /// Serialises the plugin's state.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, PluginError> {
        let sandbox = &mut self.sandbox;
        sandbox.arm();
        let state = match &self.world {
            WindowWorld::V0_1(bindings) => bindings.call_snapshot(&mut sandbox.store),
            WindowWorld::V0_2(bindings, _) => bindings.call_snapshot(&mut sandbox.store),
        };
        state.map_err(|e| sandbox.trap(e))
    }

    /// Replaces the plugin's state.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let sandbox = &mut self.sandbox;
        sandbox.arm();
        let restored = match &self.world {
            WindowWorld::V0_1(bindings) => bindings.call_restore(&mut sandbox.store, state),
            WindowWorld::V0_2(bindings, _) => bindings.call_restore(&mut sandbox.store, state),
        };
        restored
            .map_err(|e| sandbox.trap(e))?
            .map_err(|message| PluginError::Guest {
                plugin: sandbox.plugin.clone(),
                message,
            })
    }
}
