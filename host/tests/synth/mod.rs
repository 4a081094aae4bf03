//! Tiny plugin components assembled in the test itself (a hand-written core module wrapped
//! by wit-component, as the plugin build does), to reach refusals no real plugin produces:
//! a trap in `init`, a wrong world, an incompatible WIT version, a denied import. They are
//! built from `wit/0.1/plugin.wit`, so they also go through the host's 0.1 adapter.

use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, GlobalSection, GlobalType, ImportSection, MemorySection, MemoryType, Module,
    TypeSection, ValType,
};
use wit_component::StringEncoding;
use wit_parser::Resolve;

/// What the component does and declares.
pub struct Synth {
    /// Metadata name.
    pub name: &'static str,
    /// Metadata version.
    pub version: &'static str,
    /// Metadata sample config.
    pub sample: &'static str,
    /// Whether `init` traps (`unreachable`) instead of answering `ok([])`.
    pub init_traps: bool,
    /// The WIT package version the component is built against.
    pub wit_version: &'static str,
    /// The world: `transform`, or `only-metadata` (exports `metadata` alone), or
    /// `with-import` (the transform world plus an imported host function).
    pub world: &'static str,
}

impl Default for Synth {
    fn default() -> Self {
        Self {
            name: "synth",
            version: "0.1.0",
            sample: "{}",
            init_traps: false,
            wit_version: "0.1.0",
            world: "transform",
        }
    }
}

const EXTRA_WORLDS: &str = r#"
world only-metadata {
    use types.{metadata};
    export metadata: func() -> metadata;
}
world with-import {
    use types.{schema, batch, output, metadata};
    import log: func(message: string);
    export metadata: func() -> metadata;
    export init: func(config: string, input: schema) -> result<schema, string>;
    export process: func(input: batch) -> result<output, string>;
}
"#;

impl Synth {
    /// The component bytes.
    pub fn build(&self) -> Vec<u8> {
        let wit_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/0.1/plugin.wit");
        let wit = std::fs::read_to_string(wit_path).unwrap().replace(
            "package sluice:plugin@0.1.0;",
            &format!("package sluice:plugin@{};", self.wit_version),
        );
        let mut resolve = Resolve::default();
        let package = resolve
            .push_str("plugin.wit", &format!("{wit}{EXTRA_WORLDS}"))
            .unwrap();
        let world = resolve.select_world(&[package], Some(self.world)).unwrap();
        let mut module = self.core_module();
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            StringEncoding::UTF8,
            false,
        )
        .unwrap();
        wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .unwrap()
            .encode()
            .unwrap()
    }

    /// Memory layout: the metadata record (five string pointers and lengths) at 16, the
    /// `ok([])` answer of `init` at 64, the strings from 256, the bump heap from 4096.
    fn core_module(&self) -> Vec<u8> {
        let transform = self.world != "only-metadata";
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        types.ty().function([ValType::I32; 4], [ValType::I32]);
        types.ty().function([ValType::I32; 2], []);
        let mut imports = ImportSection::new();
        if self.world == "with-import" {
            imports.import("$root", "log", EntityType::Function(2));
        }
        let imported = u32::from(self.world == "with-import");
        let mut functions = FunctionSection::new();
        let mut code = CodeSection::new();
        let mut exports = ExportSection::new();
        let mut add = |name: &str, ty: u32, body: Function| {
            let index = imported + functions.len();
            functions.function(ty);
            code.function(&body);
            exports.export(name, ExportKind::Func, index);
        };
        add("metadata", 0, constant(16));
        if transform {
            add(
                "init",
                1,
                if self.init_traps {
                    trap()
                } else {
                    constant(64)
                },
            );
            add("process", 1, trap());
        }
        add("cabi_realloc", 1, bump());
        exports.export("memory", ExportKind::Memory, 0);
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 2,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut globals = GlobalSection::new();
        let heap = GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        };
        globals.global(heap, &ConstExpr::i32_const(4096));
        let mut module = Module::new();
        module.section(&types);
        if imported > 0 {
            module.section(&imports);
        }
        module
            .section(&functions)
            .section(&memories)
            .section(&globals)
            .section(&exports)
            .section(&code)
            .section(&self.data());
        module.finish()
    }

    fn data(&self) -> DataSection {
        let strings = [
            self.name,
            self.version,
            "A test component.",
            "{}",
            self.sample,
        ];
        let (mut record, mut text) = (Vec::new(), Vec::new());
        for s in strings {
            record.extend((256 + text.len() as u32).to_le_bytes());
            record.extend((s.len() as u32).to_le_bytes());
            text.extend(s.as_bytes());
        }
        let mut data = DataSection::new();
        data.active(0, &ConstExpr::i32_const(16), record);
        // `result<list<field>, string>` ok: tag 0, then an empty list (pointer 0, length 0).
        data.active(0, &ConstExpr::i32_const(64), [0u8; 12]);
        data.active(0, &ConstExpr::i32_const(256), text);
        data
    }
}

fn constant(value: i32) -> Function {
    let mut f = Function::new([]);
    f.instructions().i32_const(value).end();
    f
}

fn trap() -> Function {
    let mut f = Function::new([]);
    f.instructions().unreachable().end();
    f
}

/// `cabi_realloc(old, old_size, align, new_size)`: a bump allocator that never frees.
fn bump() -> Function {
    let mut f = Function::new([(1, ValType::I32)]);
    f.instructions()
        // aligned = (heap + align - 1) & -align
        .global_get(0)
        .local_get(2)
        .i32_add()
        .i32_const(1)
        .i32_sub()
        .i32_const(0)
        .local_get(2)
        .i32_sub()
        .i32_and()
        .local_tee(4)
        .local_get(3)
        .i32_add()
        .global_set(0)
        .local_get(4)
        .end();
    f
}
