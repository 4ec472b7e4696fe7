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
    framework: BTreeMap<String, Layer>,
    banned: BTreeMap<Layer, BTreeSet<String>>,
}

impl Architecture {
    /// The Strata layering with the standard banned crates per layer, Strata's
    /// own crates placed as [`Architecture::framework_crate`]s, and no
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
        let framework = [
            ("strata-domain", Layer::Domain),
            ("strata-app-api", Layer::AppApi),
            ("strata-runtime", Layer::Runtime),
            ("strata-infrastructure", Layer::Infrastructure),
            ("strata-bff", Layer::Bff),
            ("strata-tests", Layer::Tests),
        ]
        .into_iter()
        .map(|(name, layer)| (package_key(name), layer))
        .collect();
        Architecture {
            composition_roots: BTreeMap::new(),
            classified: BTreeMap::new(),
            framework,
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

    /// Places the package `package_name`, when it is not a workspace member
    /// (a framework crate taken from a registry, from git or by path from
    /// another workspace), in `layer`.
    ///
    /// Such a crate is then a dependency target like a member of that layer:
    /// a domain crate may not depend on an infrastructure framework crate,
    /// and only composition-root files may name one. It is not searched for
    /// banned crates, because its own workspace checks it under its layer.
    pub fn framework_crate(mut self, package_name: impl AsRef<str>, layer: Layer) -> Self {
        self.framework
            .insert(package_key(package_name.as_ref()), layer);
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
        Ok(self.check(&self.metadata_for(dir.as_ref())?))
    }

    /// Like [`Architecture::check_workspace`], but checks only the members
    /// whose `Cargo.toml` lies under `dir`: one project in a workspace shared
    /// with others. Members elsewhere are not checked, yet still count under
    /// their layers as dependency targets.
    pub fn check_crates_under(&self, dir: impl AsRef<Path>) -> Result<Report, Error> {
        let dir = dir.as_ref();
        let metadata = self.metadata_for(dir)?;
        let scope = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Ok(self.check_within(&metadata, Some(&scope)))
    }

    /// Checks already loaded `cargo metadata` output, reading source files
    /// from the paths it names.
    ///
    /// The metadata must include the resolve graph (not `--no-deps`);
    /// without it the dependency rules report [`Rule::RuleMatchedNothing`].
    pub fn check(&self, metadata: &Metadata) -> Report {
        self.check_within(metadata, None)
    }

    fn metadata_for(&self, dir: &Path) -> Result<Metadata, Error> {
        let mut command = MetadataCommand::new();
        command.current_dir(dir);
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() {
            command.manifest_path(manifest);
        }
        command.exec().map_err(|source| Error::Metadata {
            dir: dir.to_path_buf(),
            source,
        })
    }

    fn check_within(&self, metadata: &Metadata, scope: Option<&Path>) -> Report {
        let workspace = Workspace::new(self, metadata, scope);
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

/// The crates being checked, and the other crates whose layer is known.
struct Workspace<'m> {
    root: String,
    root_path: &'m Path,
    /// The members being checked.
    members: BTreeMap<&'m PackageId, Member<'m>>,
    /// Members outside the checked directory and framework crates from
    /// outside the workspace: dependency targets only.
    others: BTreeMap<&'m PackageId, Member<'m>>,
}

struct Member<'m> {
    package: &'m Package,
    name: String,
    directory_name: String,
    layer: Option<Layer>,
    composition_root_files: Option<&'m [String]>,
}

impl<'m> Member<'m> {
    fn new(package: &'m Package, layer: impl FnOnce(&str, &str) -> Option<Layer>) -> Self {
        let name = package.name.to_string();
        let directory_name = package
            .manifest_path
            .parent()
            .and_then(|dir| dir.file_name())
            .unwrap_or_default()
            .to_owned();
        let layer = layer(&name, &directory_name);
        Member {
            package,
            name,
            directory_name,
            layer,
            composition_root_files: None,
        }
    }
}

impl<'m> Workspace<'m> {
    fn new(architecture: &'m Architecture, metadata: &'m Metadata, scope: Option<&Path>) -> Self {
        let mut members = BTreeMap::new();
        let mut others = BTreeMap::new();
        for package in metadata.workspace_packages() {
            let mut member = Member::new(package, |name, directory_name| {
                architecture
                    .classified
                    .get(name)
                    .copied()
                    .or_else(|| Layer::from_directory(directory_name))
            });
            member.composition_root_files = architecture
                .composition_roots
                .get(&member.name)
                .map(Vec::as_slice);
            if scope.is_none_or(|scope| is_under(member.directory(), scope)) {
                members.insert(&package.id, member);
            } else {
                others.insert(&package.id, member);
            }
        }
        let external = metadata
            .packages
            .iter()
            .filter(|package| !metadata.workspace_members.contains(&package.id));
        for package in external {
            let member = Member::new(package, |name, _| {
                architecture.framework.get(&package_key(name)).copied()
            });
            if member.layer.is_some() {
                others.insert(&package.id, member);
            }
        }
        Workspace {
            root: metadata.workspace_root.to_string(),
            root_path: metadata.workspace_root.as_std_path(),
            members,
            others,
        }
    }

    fn member_named(&self, name: &str) -> Option<&Member<'m>> {
        self.members.values().find(|member| member.name == name)
    }

    /// A checked member, or another crate with a known layer.
    fn member(&self, id: &PackageId) -> Option<&Member<'m>> {
        self.members.get(id).or_else(|| self.others.get(id))
    }

    /// Every crate with a known place: checked members and the others.
    fn every_crate(&self) -> impl Iterator<Item = &Member<'m>> {
        self.members.values().chain(self.others.values())
    }
}

fn is_under(dir: &Path, scope: &Path) -> bool {
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .starts_with(scope)
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
