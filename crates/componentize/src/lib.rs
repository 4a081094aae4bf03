//! Turning a plugin's core wasm module (built for `wasm32-unknown-unknown` against the SDK)
//! into a component of exactly its world of the `sluice:plugin` contract. Used by the build
//! of this repository's plugins (`crates/plugin-artifacts`) and by `sluice plugin build`,
//! so both make the same component from the same module.
//!
//! The contracts are the WIT texts of `wit/` (the current version) and `wit/0.1/` (the one
//! earlier version the host adapts), compiled into this crate.

use anyhow::{Context, Result, bail};
use wit_component::StringEncoding;
use wit_parser::{PackageId, Resolve};

/// `wit/plugin.wit`: the current contract.
pub const WIT_CURRENT: &str = include_str!("../../../wit/plugin.wit");
/// `wit/0.1/plugin.wit`: the earlier contract the host still runs.
pub const WIT_0_1: &str = include_str!("../../../wit/0.1/plugin.wit");

/// What a component was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Made {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// `transform` or `window`.
    pub world: &'static str,
    /// The contract version (`0.2.0`).
    pub contract: String,
}

/// The contract versions a plugin may be built against, parsed once.
pub struct Contracts {
    parsed: Vec<(Resolve, PackageId)>,
}

impl Contracts {
    /// The contracts compiled into this crate.
    pub fn builtin() -> Result<Self> {
        let mut parsed = Vec::new();
        for (name, text) in [
            ("wit/plugin.wit", WIT_CURRENT),
            ("wit/0.1/plugin.wit", WIT_0_1),
        ] {
            let mut resolve = Resolve::default();
            let package = resolve
                .push_str(name, text)
                .with_context(|| format!("reading {name}"))?;
            parsed.push((resolve, package));
        }
        Ok(Self { parsed })
    }

    /// Wraps `module` into a component of its world.
    ///
    /// Every module built with the SDK carries the `component-type` sections of both SDK
    /// bindgen sites (their imports only) besides the full world its export macro embeds;
    /// merged as they are, a transform plugin would also declare the window world's types.
    /// So the sections are replaced by the plugin's own world, read from the contract.
    pub fn componentize(&self, module: &[u8]) -> Result<Made> {
        let (stripped, bindgen) = wit_component::metadata::decode(module)?;
        let mut stripped = stripped.context(
            "the module has no component-type section: it was not built with the sluice \
             plugin SDK (its export_transform! or export_window! macro)",
        )?;
        let (world, version) = plugin_world(&bindgen.resolve)?;
        let (resolve, package) = self
            .parsed
            .iter()
            .find(|(resolve, package)| {
                let have = resolve.packages[*package].name.version.as_ref();
                have.map(ToString::to_string) == version
            })
            .with_context(|| {
                format!(
                    "the plugin is built for sluice:plugin@{}, which this build does not know",
                    version.as_deref().unwrap_or("?")
                )
            })?;
        let id = resolve.select_world(&[*package], Some(world))?;
        wit_component::embed_component_metadata(
            &mut stripped,
            resolve,
            id,
            StringEncoding::UTF8,
            false,
        )?;
        let bytes = wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&stripped)?
            .encode()?;
        Ok(Made {
            bytes,
            world,
            contract: version.unwrap_or_default(),
        })
    }
}

/// The world a plugin module exports, from the worlds named in its sections, and the
/// contract version of its package.
fn plugin_world(resolve: &Resolve) -> Result<(&'static str, Option<String>)> {
    let find = |name: &str| {
        resolve.worlds.iter().find_map(|(_, w)| {
            let package = w.package.map(|p| &resolve.packages[p].name);
            (w.name == name && package.is_some_and(|p| p.namespace == "sluice"))
                .then(|| package.and_then(|p| p.version.as_ref().map(ToString::to_string)))
        })
    };
    match (find("transform"), find("window")) {
        (Some(version), None) => Ok(("transform", version)),
        (None, Some(version)) => Ok(("window", version)),
        (Some(_), Some(_)) => bail!("the plugin exports both the transform and the window world"),
        (None, None) => {
            bail!("the plugin exports no world: call export_transform! or export_window!")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_contracts_parse_and_a_core_module_without_sections_is_refused() {
        let contracts = Contracts::builtin().unwrap();
        assert_eq!(contracts.parsed.len(), 2);
        // The smallest core module: magic and version, no sections.
        let error = contracts
            .componentize(b"\0asm\x01\0\0\0")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not built with the sluice plugin SDK"),
            "{error}"
        );
    }
}
