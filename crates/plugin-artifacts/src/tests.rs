//! Checks the built components: each exists, needs nothing from the host, and exports its
//! world. (`tests/components.rs` instantiates them with an empty linker.)

use super::*;
use wit_component::DecodedWasm;
use wit_parser::WorldItem;

/// What a component's world imports and exports, by name.
struct Shape {
    /// Imports the host would have to provide: functions, or interfaces with functions.
    host_imports: Vec<String>,
    /// Every import, including type-only ones.
    imports: Vec<String>,
    exports: Vec<String>,
}

fn shape(path: &str) -> Shape {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let DecodedWasm::Component(resolve, world) = wit_component::decode(&bytes).unwrap() else {
        panic!("{path} is not a component");
    };
    let world = &resolve.worlds[world];
    let needs_host = |item: &WorldItem| match item {
        WorldItem::Function(_) => true,
        WorldItem::Interface { id, .. } => !resolve.interfaces[*id].functions.is_empty(),
        WorldItem::Type { .. } => false,
    };
    let name = |k| resolve.name_world_key(k);
    Shape {
        host_imports: world
            .imports
            .iter()
            .filter(|(_, i)| needs_host(i))
            .map(|(k, _)| name(k))
            .collect(),
        imports: world.imports.keys().map(name).collect(),
        exports: world.exports.keys().map(name).collect(),
    }
}

#[test]
fn every_plugin_is_listed_and_built() {
    let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["passthrough", "turnstile-parse", "turnstile-window"]
    );
    for (name, path) in ALL {
        assert!(path.starts_with(PLUGIN_DIR) && path.ends_with(&format!("{name}.wasm")));
        assert!(std::path::Path::new(path).is_file(), "{path} is missing");
    }
}

#[test]
fn transform_component_needs_nothing_and_exports_its_world() {
    let s = shape(TURNSTILE_PARSE);
    assert!(s.host_imports.is_empty(), "imports: {:?}", s.host_imports);
    // Only the types the world `use`s, nothing of the window world.
    assert_eq!(
        s.imports,
        [
            "sluice:plugin/types@0.2.0",
            "schema",
            "batch",
            "output",
            "metadata"
        ]
    );
    assert_eq!(s.exports, ["metadata", "init", "process"]);
}

#[test]
fn window_component_needs_nothing_and_exports_its_world() {
    let s = shape(TURNSTILE_WINDOW);
    assert!(s.host_imports.is_empty(), "imports: {:?}", s.host_imports);
    assert_eq!(s.imports[0], "sluice:plugin/types@0.2.0");
    let expected = [
        "metadata", "init", "process", "advance", "snapshot", "restore",
    ];
    assert_eq!(s.exports, expected);
}

#[test]
fn the_test_plugins_are_built_for_their_contracts() {
    // hostile and hostile-window use `sluice-plugin-sdk-v0_1`: the build wraps them with the
    // world of wit/0.1/, and the host runs them through its 0.1 adapter. The variant
    // turnstile-window-v2 (version 0.2.0) is built against the current contract.
    for (name, path) in TEST_ONLY {
        if *name == "turnstile-window-v2" {
            assert_eq!(shape(path).imports[0], shape(TURNSTILE_WINDOW).imports[0]);
            assert_ne!(
                std::fs::read(path).unwrap(),
                std::fs::read(TURNSTILE_WINDOW).unwrap()
            );
            continue;
        }
        let s = shape(path);
        assert!(
            s.host_imports.is_empty(),
            "{name} imports: {:?}",
            s.host_imports
        );
        assert_eq!(s.imports[0], "sluice:plugin/types@0.1.0", "{name}");
    }
    assert_eq!(TEST_ONLY.len(), 3);
}
