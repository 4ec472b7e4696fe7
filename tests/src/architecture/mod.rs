//! The architecture rule checker: configure an [`Architecture`], check a
//! workspace, read the [`Report`].
//!
//! ```no_run
//! use strata_tests::architecture::{Architecture, Layer};
//!
//! # fn main() -> Result<(), strata_tests::architecture::Error> {
//! let report = Architecture::standard()
//!     .composition_root("shop-app-api", ["src/main.rs", "src/bootstrap.rs"])
//!     .classify("shop-xtask", Layer::Tests)
//!     .ban(Layer::Domain, "chrono")
//!     .check_workspace(env!("CARGO_MANIFEST_DIR"))?;
//! for violation in report.violations() {
//!     eprintln!("{violation}");
//! }
//! report.assert_clean();
//! # Ok(())
//! # }
//! ```

mod dependencies;
mod layer;
mod report;
mod rule;
mod sources;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, MetadataCommand, Node, Package, PackageId};

pub use layer::Layer;
pub use report::{Report, Violation};
pub use rule::Rule;

/// Why a workspace could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `cargo metadata` could not be run or its output could not be read.
    #[error("`cargo metadata` failed for the workspace containing {}: {source}", dir.display())]
    Metadata {
        /// The directory the check started from.
        dir: PathBuf,
        /// What `cargo metadata` reported.
        #[source]
        source: cargo_metadata::Error,
    },
}

/// The rules to check, built from [`Architecture::standard`] and refined
/// with the builder methods.
#[derive(Debug, Clone)]
pub struct Architecture {
    composition_roots: BTreeMap<String, Vec<String>>,
    classified: BTreeMap<String, Layer>,
    banned: BTreeMap<Layer, BTreeSet<String>>,
}

impl Architecture {
    /// The Strata layering with the standard banned crates per layer and no
    /// composition root.
    pub fn standard() -> Self {
        let mut banned: BTreeMap<Layer, BTreeSet<String>> = BTreeMap::new();
        let defaults: [(Layer, &[&str]); 4] = [
            (
                Layer::Domain,
                &[
                    "tokio",
                    "async-std",
                    "axum",
                    "actix-web",
                    "hyper",
                    "tower",
                    "reqwest",
                    "sea-orm",
                    "sqlx",
                    "diesel",
                    "redis",
                ],
            ),
            (Layer::AppApi, &["sea-orm", "sqlx", "diesel", "redis"]),
            (Layer::Infrastructure, &["axum"]),
            (Layer::Bff, &["sea-orm", "sqlx"]),
        ];
        for (layer, names) in defaults {
            banned
                .entry(layer)
                .or_default()
                .extend(names.iter().map(|name| package_key(name)));
        }
        Architecture {
            composition_roots: BTreeMap::new(),
            classified: BTreeMap::new(),
            banned,
        }
    }

    /// Names a composition-root crate: it may also depend on infrastructure
    /// and frontend-bff crates, but within it only `files` (paths relative
    /// to the crate's directory, such as `src/main.rs`) may name them.
    ///
    /// The crate and each file must exist, or the check reports
    /// [`Rule::RuleMatchedNothing`].
    pub fn composition_root<I, S>(mut self, crate_name: impl Into<String>, files: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let files = files
            .into_iter()
            .map(|file| file.into().replace('\\', "/"))
            .collect();
        self.composition_roots.insert(crate_name.into(), files);
        self
    }

    /// Places the workspace crate named `crate_name` in `layer` whatever its
    /// directory is called.
    ///
    /// The crate must exist, or the check reports [`Rule::RuleMatchedNothing`].
    pub fn classify(mut self, crate_name: impl Into<String>, layer: Layer) -> Self {
        self.classified.insert(crate_name.into(), layer);
        self
    }

    /// Bans the external package `package_name` (as named on crates.io)
    /// from the dependency closure of every crate of `layer`.
    pub fn ban(mut self, layer: Layer, package_name: impl AsRef<str>) -> Self {
        self.banned
            .entry(layer)
            .or_default()
            .insert(package_key(package_name.as_ref()));
        self
    }

    /// Runs `cargo metadata` for the workspace that contains `dir` and checks it.
    ///
    /// The `CARGO` environment variable, set when running under cargo,
    /// chooses the cargo binary.
    pub fn check_workspace(&self, dir: impl AsRef<Path>) -> Result<Report, Error> {
        let dir = dir.as_ref();
        let mut command = MetadataCommand::new();
        command.current_dir(dir);
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() {
            command.manifest_path(manifest);
        }
        let metadata = command.exec().map_err(|source| Error::Metadata {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(self.check(&metadata))
    }

    /// Checks already loaded `cargo metadata` output, reading source files
    /// from the paths it names.
    ///
    /// The metadata must include the resolve graph (not `--no-deps`);
    /// without it the dependency rules report [`Rule::RuleMatchedNothing`].
    pub fn check(&self, metadata: &Metadata) -> Report {
        let workspace = Workspace::new(self, metadata);
        let mut violations = Vec::new();
        self.check_configuration(&workspace, &mut violations);
        match &metadata.resolve {
            Some(resolve) => {
                let graph = Graph::new(metadata, &resolve.nodes);
                dependencies::check(self, &workspace, &graph, &mut violations);
                sources::check(&workspace, &graph, &mut violations);
            }
            None => violations.push(Violation::new(
                workspace.root.clone(),
                "resolve graph",
                Rule::RuleMatchedNothing,
                "the dependency rules matched no dependency graph \
                 (expected cargo metadata output without --no-deps)",
            )),
        }
        Report::new(violations)
    }

    fn check_configuration(&self, workspace: &Workspace<'_>, violations: &mut Vec<Violation>) {
        for member in workspace.members.values() {
            if member.layer.is_none() {
                violations.push(Violation::new(
                    member.name.clone(),
                    format!("directory {}", member.directory_name),
                    Rule::UnclassifiedCrate,
                    Rule::UnclassifiedCrate.explanation(),
                ));
            }
        }
        for layer in Layer::ALL {
            let has_rule = self
                .banned
                .get(&layer)
                .is_some_and(|names| !names.is_empty());
            let has_crate = workspace
                .members
                .values()
                .any(|member| member.layer == Some(layer));
            if has_rule && !has_crate {
                violations.push(Violation::new(
                    workspace.root.clone(),
                    format!("{layer} crate"),
                    Rule::RuleMatchedNothing,
                    format!(
                        "rule {} matched no crates (expected a workspace member \
                         in a directory named {layer})",
                        Rule::banned_crate(layer)
                    ),
                ));
            }
        }
        for name in self.composition_roots.keys() {
            if workspace.member_named(name).is_none() {
                violations.push(Violation::new(
                    workspace.root.clone(),
                    name.clone(),
                    Rule::RuleMatchedNothing,
                    format!(
                        "rule {} matched no crates (expected the composition-root crate \
                         {name} in the workspace)",
                        Rule::CompositionRootOnly
                    ),
                ));
            }
        }
        for (name, layer) in &self.classified {
            if workspace.member_named(name).is_none() {
                violations.push(Violation::new(
                    workspace.root.clone(),
                    name.clone(),
                    Rule::RuleMatchedNothing,
                    format!(
                        "the classification of {name} as {layer} matched no crates \
                         (expected {name} in the workspace)"
                    ),
                ));
            }
        }
    }

    fn banned_for(&self, layer: Layer) -> Option<&BTreeSet<String>> {
        self.banned.get(&layer).filter(|names| !names.is_empty())
    }
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture::standard()
    }
}

/// Package names compare equal whether spelled with `-` or `_`, as cargo
/// treats them.
fn package_key(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// The workspace members with their layers and roles.
struct Workspace<'m> {
    root: String,
    root_path: &'m Path,
    members: BTreeMap<&'m PackageId, Member<'m>>,
}

struct Member<'m> {
    package: &'m Package,
    name: String,
    directory_name: String,
    layer: Option<Layer>,
    composition_root_files: Option<&'m [String]>,
}

impl<'m> Workspace<'m> {
    fn new(architecture: &'m Architecture, metadata: &'m Metadata) -> Self {
        let members = metadata
            .workspace_packages()
            .into_iter()
            .map(|package| {
                let name = package.name.to_string();
                let directory_name = package
                    .manifest_path
                    .parent()
                    .and_then(|dir| dir.file_name())
                    .unwrap_or_default()
                    .to_owned();
                let layer = architecture
                    .classified
                    .get(&name)
                    .copied()
                    .or_else(|| Layer::from_directory(&directory_name));
                let composition_root_files =
                    architecture.composition_roots.get(&name).map(Vec::as_slice);
                let member = Member {
                    package,
                    name,
                    directory_name,
                    layer,
                    composition_root_files,
                };
                (&package.id, member)
            })
            .collect();
        Workspace {
            root: metadata.workspace_root.to_string(),
            root_path: metadata.workspace_root.as_std_path(),
            members,
        }
    }

    fn member_named(&self, name: &str) -> Option<&Member<'m>> {
        self.members.values().find(|member| member.name == name)
    }

    fn member(&self, id: &PackageId) -> Option<&Member<'m>> {
        self.members.get(id)
    }
}

impl Member<'_> {
    fn directory(&self) -> &Path {
        self.package
            .manifest_path
            .parent()
            .map_or_else(|| Path::new("."), |dir| dir.as_std_path())
    }
}

/// The resolve graph, indexed by package id.
struct Graph<'m> {
    packages: HashMap<&'m PackageId, &'m Package>,
    nodes: HashMap<&'m PackageId, &'m Node>,
}

impl<'m> Graph<'m> {
    fn new(metadata: &'m Metadata, nodes: &'m [Node]) -> Self {
        Graph {
            packages: metadata
                .packages
                .iter()
                .map(|package| (&package.id, package))
                .collect(),
            nodes: nodes.iter().map(|node| (&node.id, node)).collect(),
        }
    }

    fn name(&self, id: &PackageId) -> String {
        self.packages
            .get(id)
            .map_or_else(|| id.repr.clone(), |package| package.name.to_string())
    }

    fn node(&self, id: &PackageId) -> Option<&'m Node> {
        self.nodes.get(id).copied()
    }
}
