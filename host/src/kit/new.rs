//! `sluice plugin new`: a plugin folder from the templates in `host/templates/` (compiled
//! into the binary), with its name and, for Rust, the path of the SDK filled in.
//!
//! The Rust template depends on the SDK by a path recorded here: the `plugins/sdk` folder of
//! the source tree this binary was built from (or `--sdk`, or `$SLUICE_SDK`). A path needs
//! no registry and no network, builds the exact SDK this host was tested with, and the
//! folder can live anywhere; the cost is that the tree must stay where it was (the path is
//! one line of the plugin's Cargo.toml). Python and JavaScript plugins carry their small
//! SDK module in the folder itself.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Lang, PluginKind};

/// `sluice plugin new` arguments.
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The plugin's name, kebab-case (`station-filter`); also its folder's.
    pub name: String,
    /// Which world it implements.
    #[arg(long, value_enum, default_value = "transform")]
    pub kind: PluginKind,
    /// Its language.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    /// The folder to create it in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The SDK crate a Rust plugin depends on (default: this build's `plugins/sdk`).
    #[arg(long, env = "SLUICE_SDK")]
    pub sdk: Option<PathBuf>,
}

/// One file of a template: its path in the new folder and its text.
type TemplateFile = (&'static str, &'static str);

macro_rules! template {
    ($dir:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $dir, "/", $path)))),*]
    };
}

const RUST_TRANSFORM: &[TemplateFile] = template!("rust-transform":
    "Cargo.toml", "README.md", "src/lib.rs",
    "tests/basic/case.yaml", "tests/basic/input.txt", "tests/basic/expected.jsonl",
    "tests/filtered/case.yaml", "tests/filtered/input.txt", "tests/filtered/expected.jsonl",
);

const RUST_WINDOW: &[TemplateFile] = template!("rust-window":
    "Cargo.toml", "README.md", "src/lib.rs",
    "tests/hourly/case.yaml", "tests/hourly/input.jsonl", "tests/hourly/expected.jsonl",
);

/// The template of `lang` and `kind`.
fn template(lang: Lang, kind: PluginKind) -> &'static [TemplateFile] {
    match (lang, kind) {
        (Lang::Rust, PluginKind::Transform) => RUST_TRANSFORM,
        (Lang::Rust, PluginKind::Window) => RUST_WINDOW,
        (Lang::Python | Lang::Js, kind) => super::tools::template(lang, kind),
    }
}

/// The SDK folder of the source tree this binary was built from.
fn built_in_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

/// Creates the plugin folder; returns its path.
pub fn scaffold(args: &NewArgs) -> anyhow::Result<PathBuf> {
    let name = &args.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Err(crate::cli::UserError(format!(
            "`{name}` is not a plugin name: use kebab-case (lowercase letters, digits and `-`, \
             starting with a letter), e.g. `station-filter`"
        ))
        .into());
    }
    let dir = args.dir.join(name);
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        return Err(crate::cli::UserError(format!(
            "`{}` exists and is not empty; choose another name or folder",
            dir.display()
        ))
        .into());
    }
    let files = template(args.lang, args.kind);
    let sdk = match args.lang {
        Lang::Rust => Some(sdk_path(args.sdk.as_deref())?),
        _ => None,
    };
    let world = match args.kind {
        PluginKind::Transform => "transform",
        PluginKind::Window => "window",
    };
    for (path, text) in files.iter().chain(super::tools::sdk(args.lang)) {
        let mut text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{world}}", world);
        if let Some(sdk) = &sdk {
            text = text.replace("{{sdk}}", &sdk.display().to_string());
        }
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("a template file is in a folder"))?;
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    let manifest = format!(
        "# What `sluice plugin build` needs to know about this folder.\nlang: {}\nworld: {world}\n",
        args.lang.name()
    );
    std::fs::write(dir.join("plugin.yaml"), manifest)?;
    Ok(dir)
}

/// The SDK a Rust plugin depends on: `requested`, else this build's own, made absolute.
fn sdk_path(requested: Option<&Path>) -> anyhow::Result<PathBuf> {
    let sdk = requested.map_or_else(built_in_sdk, Path::to_owned);
    let manifest = sdk.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(crate::cli::UserError(format!(
            "the sluice plugin SDK is not at `{}` (no Cargo.toml): pass `--sdk` (or set \
             $SLUICE_SDK) to the `plugins/sdk` folder of a sluice source tree",
            sdk.display()
        ))
        .into());
    }
    Ok(std::fs::canonicalize(&sdk)?)
}
