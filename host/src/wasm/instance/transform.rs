//! A running `transform` plugin ([`TransformInstance`]): `init`, then `process` of each batch,
//! through the sandbox of its stage, for either contract version.

use super::*;

/// The bindings of a `transform` instance.
enum TransformWorld {
    V0_1(v0_1::Transform),
    V0_2(v0_2::Transform, Box<ColumnInput>),
}

/// A running `transform` plugin.
pub struct TransformInstance {
    sandbox: Sandbox,
    world: TransformWorld,
    output: Vec<RowField>,
    /// Whether a 0.2 output stays columns (the next step is a 0.2 plugin).
    columns: bool,
}

impl TransformInstance {
    /// Instantiates the plugin and calls `init(config, input)`.
    pub fn new(
        engine: &PluginEngine,
        component: &Component,
        plugin: &str,
        limits: &Limits,
        config: &str,
        input: &[RowField],
    ) -> Result<Self, PluginError> {
        let mut sandbox = Sandbox::new(engine, plugin, limits);
        let (world, output) = match sandbox.contract(engine, component)? {
            Contract::V0_1 => {
                let bindings = sandbox.instantiate(engine, component, "transform", |s, c, l| {
                    v0_1::Transform::instantiate(s, c, l)
                })?;
                let wit = schema::v0_1::to_wit(input);
                let init = bindings.call_init(&mut sandbox.store, config, &wit);
                let output = sandbox.schema(init, schema::v0_1::from_wit)?;
                (TransformWorld::V0_1(bindings), output)
            }
            Contract::V0_2 => {
                let bindings = sandbox.instantiate(engine, component, "transform", |s, c, l| {
                    v0_2::Transform::instantiate(s, c, l)
                })?;
                let wit = schema::v0_2::to_wit(input);
                let init = bindings.call_init(&mut sandbox.store, config, &wit);
                let output = sandbox.schema(init, schema::v0_2::from_wit)?;
                let columns = Box::new(ColumnInput::new(input));
                (TransformWorld::V0_2(bindings, columns), output)
            }
        };
        Ok(Self {
            sandbox,
            world,
            output,
            columns: false,
        })
    }

    /// Whether it is built for `sluice:plugin@0.2` (it takes and returns column batches).
    pub fn takes_columns(&self) -> bool {
        matches!(self.world, TransformWorld::V0_2(..))
    }

    /// Keeps the output of a 0.2 plugin as columns (for a 0.2 step after it) instead of
    /// packing it.
    pub fn keep_columns(&mut self, keep: bool) {
        self.columns = keep;
    }

    /// The schema of the rows this instance emits.
    pub fn output_schema(&self) -> &[RowField] {
        &self.output
    }

    /// Linear memory of the instance (bytes).
    pub fn memory_bytes(&self) -> usize {
        self.sandbox.store.data().memory
    }

    /// Processes one batch.
    pub fn process(&mut self, input: &Rows) -> Result<PluginOutput, PluginError> {
        let sandbox = &mut self.sandbox;
        let out = match &mut self.world {
            TransformWorld::V0_1(bindings) => {
                let rows = sandbox.packed(input)?;
                sandbox.arm();
                out1(bindings.call_process(&mut sandbox.store, &rows))
            }
            TransformWorld::V0_2(bindings, buffers) => {
                let batch = sandbox.columns(buffers, input)?;
                sandbox.arm();
                out2(bindings.call_process(&mut sandbox.store, batch))
            }
        };
        sandbox.finish(out, Some(input.len()), &self.output, self.columns)
    }
}
