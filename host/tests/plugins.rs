//! The plugin registry on the real built components: world detection, metadata, the compile
//! cache, version resolution, and clear refusals of files that are not plugins.

use std::path::{Path, PathBuf};

use sluice_host::wasm::{Kind, PluginEngine, Registry, load_bytes};

fn plugin_dir() -> PathBuf {
    PathBuf::from(sluice_plugin_artifacts::PLUGIN_DIR)
}

#[test]
fn loads_both_plugins_with_their_worlds_and_metadata() {
    let engine = PluginEngine::new(None).unwrap();
    let (registry, errors) = Registry::load_dirs(&engine, &[plugin_dir()]);
    assert!(errors.is_empty(), "{errors:?}");
    let parse = registry.resolve("turnstile-parse@^0.1").unwrap();
    assert_eq!(parse.kind, Kind::Transform);
    assert_eq!(parse.version.to_string(), "0.1.0");
    assert_eq!(parse.hash.len(), 64);
    let window = registry.resolve("turnstile-window").unwrap();
    assert_eq!(window.kind, Kind::Window);
    let err = registry.resolve("turnstile-parse@^2").err().unwrap();
    assert!(
        err.contains("no version of `turnstile-parse` matches `^2` (installed: 0.1.0)"),
        "{err}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Some(cache.path().to_owned())).unwrap();
    let (first, _) = Registry::load_dirs(&engine, &[plugin_dir()]);
    let cached: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().collect();
    let plugins = std::fs::read_dir(plugin_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .count();
    assert_eq!(cached.len(), plugins, "one artifact per plugin");
    let engine = PluginEngine::new(Some(cache.path().to_owned())).unwrap();
    let (second, errors) = Registry::load_dirs(&engine, &[plugin_dir()]);
    assert!(errors.is_empty(), "{errors:?}");
    let hashes = |r: &Registry| r.all().map(|p| p.hash.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&first), hashes(&second));
}

#[test]
fn files_that_are_not_plugins_are_refused_with_the_reason() {
    let engine = PluginEngine::new(None).unwrap();
    let at = Path::new("x.wasm");
    let err = load_bytes(&engine, b"hello", at).err().unwrap();
    assert!(err.contains("not a WebAssembly file"), "{err}");

    let bytes = std::fs::read(plugin_dir().join("turnstile-parse.wasm")).unwrap();
    let err = load_bytes(&engine, &bytes[..bytes.len() / 2], at)
        .err()
        .unwrap();
    assert!(err.contains("not a valid WebAssembly component"), "{err}");

    // A core module (the plugin before it is wrapped as a component) is refused too.
    let core = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let err = load_bytes(&engine, &core, at).err().unwrap();
    assert!(
        err.contains("a core WebAssembly module, not a component"),
        "{err}"
    );
}
