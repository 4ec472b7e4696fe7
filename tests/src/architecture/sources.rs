//! Rules over the source of app-api and composition-root crates: which
//! crates the application, API and other modules may name.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use syn::buffer::{Cursor, TokenBuffer};
use syn::ext::IdentExt;
use syn::visit::{self, Visit};

use super::dependencies::is_linked;
use super::{Graph, Layer, Member, Rule, Violation, Workspace};

/// Crates that tie code to HTTP; application code stays transport-free.
const HTTP_CRATES: &[&str] = &["axum", "http", "hyper", "tower", "tower_http", "headers"];

/// Crates that tie code to a store; only infrastructure talks to one.
const PERSISTENCE_CRATES: &[&str] = &["sea_orm", "sqlx", "redis", "diesel"];

pub(super) fn check(workspace: &Workspace<'_>, graph: &Graph<'_>, violations: &mut Vec<Violation>) {
    let mut app_api_crates = 0;
    let mut api_files = 0;
    for (id, member) in &workspace.members {
        let is_app_api = member.layer == Some(Layer::AppApi);
        if !is_app_api && member.composition_root_files.is_none() {
            continue;
        }
        let names = CrateNames::for_member(workspace, graph, id);
        let files = SourceFiles::load(workspace, member, violations);
        let mut checker = FileChecker {
            names: &names,
            violations,
        };
        if is_app_api {
            app_api_crates += 1;
            api_files += files.count_under("api");
            checker.application_and_api(member, &files);
        }
        if let Some(root_files) = member.composition_root_files {
            checker.composition_root(member, &files, root_files);
        }
    }
    // Application code is required of every app-api crate, but a crate may
    // expose its HTTP surface under another module (the framework's own
    // app-api has `src/http/`), so API code is required of the workspace as
    // a whole. With no app-api crate at all the missing layer is reported.
    if app_api_crates > 0 && api_files == 0 {
        violations.push(Violation::new(
            workspace.root.clone(),
            "src/api/",
            Rule::RuleMatchedNothing,
            format!(
                "rule {} matched no files (expected src/api/ in an app-api crate)",
                Rule::ApiNoInfrastructure
            ),
        ));
    }
}

/// The names under which a member's source can reach each kind of
/// forbidden crate: lib names of the infrastructure and frontend-bff crates
/// with a known layer (members and framework crates), plus whatever the
/// member renamed them to.
struct CrateNames {
    infrastructure: BTreeSet<String>,
    bff: BTreeSet<String>,
}

impl CrateNames {
    fn for_member(
        workspace: &Workspace<'_>,
        graph: &Graph<'_>,
        id: &cargo_metadata::PackageId,
    ) -> Self {
        let mut names = CrateNames {
            infrastructure: BTreeSet::new(),
            bff: BTreeSet::new(),
        };
        for member in workspace.every_crate() {
            if let Some(set) = names.set_for(member.layer) {
                set.insert(member.name.replace('-', "_"));
                let libs =
                    member.package.targets.iter().filter(|target| {
                        target.is_lib() || target.is_rlib() || target.is_proc_macro()
                    });
                set.extend(libs.map(|target| target.name.replace('-', "_")));
            }
        }
        let renamed = graph.node(id).into_iter().flat_map(|node| &node.deps);
        for dep in renamed.filter(|dep| is_linked(dep)) {
            let layer = workspace.member(&dep.pkg).and_then(|target| target.layer);
            if let Some(set) = names.set_for(layer) {
                set.insert(dep.name.replace('-', "_"));
            }
        }
        names
    }

    /// The service runtime wires infrastructure in, so it counts as such: only
    /// a composition root names it.
    fn set_for(&mut self, layer: Option<Layer>) -> Option<&mut BTreeSet<String>> {
        match layer {
            Some(Layer::Infrastructure | Layer::Runtime) => Some(&mut self.infrastructure),
            Some(Layer::Bff) => Some(&mut self.bff),
            _ => None,
        }
    }
}

/// A parsed source file and the crates it names.
struct SourceFile {
    /// Relative to the crate directory, with `/` separators.
    relative: String,
    /// Relative to the workspace root, for reporting.
    display: String,
    references: BTreeSet<String>,
}

impl SourceFile {
    fn is_under(&self, module: &str) -> bool {
        self.relative == format!("src/{module}.rs")
            || self.relative.starts_with(&format!("src/{module}/"))
    }
}

struct SourceFiles {
    files: Vec<SourceFile>,
    /// Every `.rs` file found, parsed or not, so an unparseable file still
    /// counts as matched by the rules that cover it.
    found: Vec<String>,
}

impl SourceFiles {
    fn load(
        workspace: &Workspace<'_>,
        member: &Member<'_>,
        violations: &mut Vec<Violation>,
    ) -> Self {
        let crate_dir = member.directory();
        let display_of = |path: &Path| {
            path.strip_prefix(workspace.root_path)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/")
        };
        let mut paths = Vec::new();
        let mut unreadable = Vec::new();
        collect_rust_files(&crate_dir.join("src"), &mut paths, &mut unreadable);
        for (dir, error) in unreadable {
            violations.push(Violation::new(
                display_of(&dir),
                error,
                Rule::SourceUnparseable,
                Rule::SourceUnparseable.explanation(),
            ));
        }
        paths.sort();
        let mut files = Vec::new();
        let mut found = Vec::new();
        for path in paths {
            let relative = path
                .strip_prefix(crate_dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let display = display_of(&path);
            found.push(relative.clone());
            match references_in(&path) {
                Ok(references) => files.push(SourceFile {
                    relative,
                    display,
                    references,
                }),
                Err(problem) => violations.push(Violation::new(
                    display,
                    problem,
                    Rule::SourceUnparseable,
                    Rule::SourceUnparseable.explanation(),
                )),
            }
        }
        SourceFiles { files, found }
    }

    fn count_under(&self, module: &str) -> usize {
        self.found
            .iter()
            .filter(|relative| {
                **relative == format!("src/{module}.rs")
                    || relative.starts_with(&format!("src/{module}/"))
            })
            .count()
    }
}

fn collect_rust_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    unreadable: &mut Vec<(PathBuf, String)>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // A missing src/ leaves the rules with nothing to match, which is reported there.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
        Err(error) => {
            unreadable.push((dir.to_path_buf(), format!("unreadable directory: {error}")));
            return;
        }
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(error) => {
                unreadable.push((dir.to_path_buf(), format!("unreadable directory: {error}")));
                continue;
            }
        };
        if path.is_dir() {
            collect_rust_files(&path, files, unreadable);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

struct FileChecker<'a> {
    names: &'a CrateNames,
    violations: &'a mut Vec<Violation>,
}

impl FileChecker<'_> {
    fn application_and_api(&mut self, member: &Member<'_>, files: &SourceFiles) {
        if files.count_under("application") == 0 {
            self.matched_nothing(
                member,
                "src/application/",
                format!(
                    "rules {} and {} matched no files (expected src/application/ in crate {})",
                    Rule::ApplicationNoHttp,
                    Rule::ApplicationNoInfrastructure,
                    member.name
                ),
            );
        }
        for file in &files.files {
            if file.is_under("application") {
                self.report(file, Rule::ApplicationNoHttp, |name| {
                    HTTP_CRATES.contains(&name)
                });
                let names = self.names;
                self.report(file, Rule::ApplicationNoInfrastructure, |name| {
                    PERSISTENCE_CRATES.contains(&name)
                        || names.infrastructure.contains(name)
                        || names.bff.contains(name)
                });
            } else if file.is_under("api") {
                let names = self.names;
                self.report(file, Rule::ApiNoInfrastructure, |name| {
                    PERSISTENCE_CRATES.contains(&name) || names.infrastructure.contains(name)
                });
            }
        }
    }

    fn composition_root(
        &mut self,
        member: &Member<'_>,
        files: &SourceFiles,
        root_files: &[String],
    ) {
        for root_file in root_files {
            if !files.found.contains(root_file) {
                self.matched_nothing(
                    member,
                    root_file,
                    format!(
                        "the composition-root file {root_file} matched no file \
                         (expected it in crate {})",
                        member.name
                    ),
                );
            }
        }
        for file in &files.files {
            if root_files.contains(&file.relative) {
                continue;
            }
            // Application and API files already answer for these names under
            // their own rules; a second finding would say the same thing.
            let already: BTreeSet<&str> = self
                .violations
                .iter()
                .filter(|violation| violation.subject == file.display)
                .map(|violation| violation.offending.as_str())
                .collect();
            let names = self.names;
            let offending: Vec<String> = file
                .references
                .iter()
                .filter(|name| names.infrastructure.contains(*name) || names.bff.contains(*name))
                .filter(|name| !already.contains(name.as_str()))
                .cloned()
                .collect();
            for name in offending {
                self.violations.push(Violation::new(
                    file.display.clone(),
                    name,
                    Rule::CompositionRootOnly,
                    format!(
                        "{} ({} allows only {})",
                        Rule::CompositionRootOnly.explanation(),
                        member.name,
                        root_files.join(", ")
                    ),
                ));
            }
        }
    }

    fn report(&mut self, file: &SourceFile, rule: Rule, banned: impl Fn(&str) -> bool) {
        for name in file.references.iter().filter(|name| banned(name)) {
            self.violations.push(Violation::new(
                file.display.clone(),
                name.clone(),
                rule,
                rule.explanation(),
            ));
        }
    }

    fn matched_nothing(&mut self, member: &Member<'_>, expected: &str, explanation: String) {
        self.violations.push(Violation::new(
            member.name.clone(),
            expected,
            Rule::RuleMatchedNothing,
            explanation,
        ));
    }
}

fn references_in(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = fs::read_to_string(path).map_err(|error| format!("unreadable: {error}"))?;
    let file = syn::parse_file(&text).map_err(|error| format!("does not parse: {error}"))?;
    let mut references = References::default();
    references.visit_file(&file);
    Ok(references.crates)
}

/// Collects the first segment of every path that can name a crate. Only the
/// syntax tree is visited, so comments and string literals never count.
#[derive(Default)]
struct References {
    crates: BTreeSet<String>,
}

impl References {
    fn note(&mut self, ident: &syn::Ident) {
        self.crates.insert(ident.unraw().to_string());
    }

    fn note_use_tree(&mut self, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => self.note(&path.ident),
            syn::UseTree::Name(name) => self.note(&name.ident),
            syn::UseTree::Rename(rename) => self.note(&rename.ident),
            syn::UseTree::Group(group) => {
                group.items.iter().for_each(|item| self.note_use_tree(item))
            }
            syn::UseTree::Glob(_) => {}
        }
    }

    /// Macro arguments stay unparsed in the syntax tree, so paths in them
    /// are found from the tokens: an identifier followed by `::` that does
    /// not itself follow a `::` continuing an earlier path.
    fn scan(&mut self, mut cursor: Cursor<'_>) {
        let mut flat: Vec<Token> = Vec::new();
        while !cursor.eof() {
            if let Some((ident, next)) = cursor.ident() {
                flat.push(Token::Ident(ident));
                cursor = next;
            } else if let Some((punct, next)) = cursor.punct() {
                flat.push(match punct.as_char() {
                    ':' => Token::Colon,
                    '>' => Token::Angle,
                    _ => Token::Other,
                });
                cursor = next;
            } else if let Some((inside, _, _, next)) = cursor.any_group() {
                self.scan(inside);
                flat.push(Token::Other);
                cursor = next;
            } else if let Some((_, next)) = cursor.token_tree() {
                flat.push(Token::Other);
                cursor = next;
            } else {
                break;
            }
        }
        for (index, token) in flat.iter().enumerate() {
            let Token::Ident(ident) = token else { continue };
            let colons_after = flat[index + 1..]
                .iter()
                .take_while(|token| matches!(token, Token::Colon))
                .count();
            if colons_after != 2 {
                continue;
            }
            let colons_before = flat[..index]
                .iter()
                .rev()
                .take_while(|token| matches!(token, Token::Colon))
                .count();
            let before_colons = index
                .checked_sub(colons_before + 1)
                .and_then(|at| flat.get(at));
            let continues_a_path =
                colons_before == 2 && matches!(before_colons, Some(Token::Ident(_) | Token::Angle));
            if !continues_a_path {
                self.note(ident);
            }
        }
    }
}

enum Token {
    Ident(syn::Ident),
    Colon,
    Angle,
    Other,
}

impl<'ast> Visit<'ast> for References {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        // A lone identifier is a local item or binding; a crate is only
        // reached through `krate::item` or `::krate`.
        if (path.leading_colon.is_some() || path.segments.len() > 1)
            && let Some(first) = path.segments.first()
        {
            self.note(&first.ident);
        }
        visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        for attribute in &item.attrs {
            self.visit_attribute(attribute);
        }
        // Only the first segment of each tree names a crate; later segments
        // are items inside it and must not be mistaken for crates.
        self.note_use_tree(&item.tree);
    }

    fn visit_item_extern_crate(&mut self, item: &'ast syn::ItemExternCrate) {
        self.note(&item.ident);
        visit::visit_item_extern_crate(self, item);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan(TokenBuffer::new2(mac.tokens.clone()).begin());
        visit::visit_macro(self, mac);
    }

    fn visit_meta_list(&mut self, list: &'ast syn::MetaList) {
        self.scan(TokenBuffer::new2(list.tokens.clone()).begin());
        visit::visit_meta_list(self, list);
    }
}
