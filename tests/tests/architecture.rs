//! The architecture rules on this workspace, and on throwaway fixture
//! workspaces that each break exactly one rule.
//!
//! Fixtures stand in for crates.io crates with stub path crates of the same
//! package names (`tokio`, `sea-orm`, `axum`) kept outside the fixture's
//! members, so `cargo metadata --offline` resolves them without a registry
//! or a download cache.

use std::fs;
use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, MetadataCommand};
use strata_tests::architecture::{Architecture, Layer, Report, Rule, Violation};
use tempfile::TempDir;

#[test]
fn this_workspace_obeys_the_layering() {
    let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace root");
    let report = Architecture::standard()
        .composition_root("shop-app-api", ["src/main.rs", "src/bootstrap.rs"])
        .composition_root(
            "strata-template-app-api",
            ["src/main.rs", "src/bootstrap.rs"],
        )
        // The hand-written baseline bench/http.sh measures the shop against:
        // outside the layers, like a test, and using none of them.
        .classify("bare-shop", Layer::Tests)
        .check_workspace(workspace_root)
        .expect("cargo metadata runs on this workspace");
    report.assert_clean();
}

#[test]
fn the_good_fixture_is_clean() {
    let fixture = Fixture::good();
    fixture.check(fixture_architecture()).assert_clean();
}

#[test]
fn the_fixture_root_is_outside_any_other_workspace() {
    let fixture = Fixture::good();
    let metadata = fixture.metadata();
    let root = fixture
        .dir
        .path()
        .canonicalize()
        .expect("the fixture directory exists");
    let reported = Path::new(metadata.workspace_root.as_str())
        .canonicalize()
        .expect("the reported workspace root exists");
    assert_eq!(reported, root);
}

#[test]
fn check_workspace_finds_the_workspace_from_a_member_directory() {
    let fixture = Fixture::good();
    let report = fixture_architecture()
        .check_workspace(fixture.path("domain"))
        .expect("cargo metadata runs on the fixture");
    report.assert_clean();
}

#[test]
fn domain_depending_on_tokio_is_reported() {
    let fixture = Fixture::good();
    fixture.depend("domain", r#"tokio = { path = "../vendor/tokio" }"#);
    let report = fixture.check(fixture_architecture());
    assert_only(&report, Rule::DomainBannedCrate, "fixture-domain", "tokio");
}

#[test]
fn domain_depending_on_sea_orm_is_reported() {
    let fixture = Fixture::good();
    fixture.depend("domain", r#"sea-orm = { path = "../vendor/sea-orm" }"#);
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::DomainBannedCrate,
        "fixture-domain",
        "sea-orm",
    );
}

#[test]
fn domain_reaching_tokio_through_an_external_crate_reports_the_path() {
    let fixture = Fixture::good();
    fixture.depend(
        "domain",
        r#"fixture-helper = { path = "../vendor/helper" }"#,
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::DomainBannedCrate,
        "fixture-domain",
        "fixture-domain -> fixture-helper -> tokio",
    );
}

#[test]
fn a_banned_crate_among_build_dependencies_is_reported() {
    let fixture = Fixture::good();
    fixture.add_to_table(
        "domain",
        "build-dependencies",
        r#"tokio = { path = "../vendor/tokio" }"#,
    );
    let report = fixture.check(fixture_architecture());
    assert_only(&report, Rule::DomainBannedCrate, "fixture-domain", "tokio");
}

#[test]
fn a_banned_crate_among_dev_dependencies_is_allowed() {
    let fixture = Fixture::good();
    fixture.add_to_table(
        "domain",
        "dev-dependencies",
        r#"tokio = { path = "../vendor/tokio" }"#,
    );
    fixture.check(fixture_architecture()).assert_clean();
}

#[test]
fn an_extra_banned_crate_is_reported_without_descending_into_it() {
    let fixture = Fixture::good();
    fixture.depend(
        "domain",
        r#"fixture-helper = { path = "../vendor/helper" }"#,
    );
    let report = fixture.check(fixture_architecture().ban(Layer::Domain, "fixture_helper"));
    assert_only(
        &report,
        Rule::DomainBannedCrate,
        "fixture-domain",
        "fixture-helper",
    );
}

#[test]
fn app_api_depending_on_sea_orm_is_reported() {
    let fixture = Fixture::good();
    fixture.depend("app-api", r#"sea-orm = { path = "../vendor/sea-orm" }"#);
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::AppApiBannedCrate,
        "fixture-app-api",
        "sea-orm",
    );
}

#[test]
fn infrastructure_depending_on_axum_is_reported() {
    let fixture = Fixture::good();
    fixture.depend("infrastructure", r#"axum = { path = "../vendor/axum" }"#);
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::InfrastructureBannedCrate,
        "fixture-infrastructure",
        "axum",
    );
}

#[test]
fn domain_depending_on_app_api_breaks_the_layering() {
    let fixture = Fixture::good();
    // Cargo refuses a cycle of normal dependencies, so app-api gives up its
    // own workspace dependencies before domain may point at it.
    fixture.manifest("app-api", "fixture-app-api", &[]);
    fixture.depend("domain", r#"fixture-app-api = { path = "../app-api" }"#);
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::LayerDependency,
        "fixture-domain",
        "fixture-app-api",
    );
}

#[test]
fn bff_depending_on_domain_breaks_the_layering() {
    let fixture = Fixture::good();
    fixture.depend("frontend-bff", r#"fixture-domain = { path = "../domain" }"#);
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::LayerDependency,
        "fixture-bff",
        "fixture-domain",
    );
}

#[test]
fn app_api_that_is_not_the_composition_root_may_not_depend_on_infrastructure() {
    let fixture = Fixture::good();
    let report = fixture.check(Architecture::standard());
    assert_only(
        &report,
        Rule::LayerDependency,
        "fixture-app-api",
        "fixture-infrastructure",
    );
}

#[test]
fn a_dev_dependency_cycle_is_reported() {
    let fixture = Fixture::good();
    fixture.add_to_table(
        "domain",
        "dev-dependencies",
        r#"fixture-app-api = { path = "../app-api" }"#,
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::NoCycles,
        "fixture-app-api",
        "fixture-app-api -> fixture-domain -> fixture-app-api",
    );
    let violation = &report.violations()[0];
    assert!(
        violation
            .explanation
            .contains("fixture-app-api, fixture-domain, fixture-infrastructure"),
        "the explanation lists every crate of the cycle: {violation}"
    );
}

#[test]
fn an_unclassified_crate_is_reported() {
    let fixture = Fixture::good();
    fixture.add_member("utils", "fixture-utils");
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::UnclassifiedCrate,
        "fixture-utils",
        "directory utils",
    );
}

#[test]
fn an_explicitly_classified_crate_is_checked_under_its_layer() {
    let fixture = Fixture::good();
    fixture.add_member("utils", "fixture-utils");
    fixture.depend("utils", r#"tokio = { path = "../vendor/tokio" }"#);
    let report = fixture.check(fixture_architecture().classify("fixture-utils", Layer::Domain));
    assert_only(&report, Rule::DomainBannedCrate, "fixture-utils", "tokio");
}

#[test]
fn axum_imported_in_application_code_is_reported() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!("use axum::Router;\n{APPLICATION}"),
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApplicationNoHttp,
        "app-api/src/application/mod.rs",
        "axum",
    );
}

#[test]
fn axum_path_in_application_code_without_a_use_is_reported() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!("pub mod reply;\n{APPLICATION}"),
    );
    fixture.write(
        "app-api/src/application/reply.rs",
        "pub fn reply(total: u64) -> impl Sized {\n    axum::Json(total)\n}\n",
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApplicationNoHttp,
        "app-api/src/application/reply.rs",
        "axum",
    );
}

#[test]
fn every_spelling_of_a_crate_reference_is_seen() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!(
            "use {{axum}};\n\
             extern crate http;\n\
             pub fn body() -> ::hyper::body::Incoming {{\n    todo!()\n}}\n\
             #[tower::instrumented]\n\
             pub fn traced() {{\n    tracing::info!(\"{{:?}}\", headers::HeaderMap::new());\n}}\n\
             {APPLICATION}"
        ),
    );
    let report = fixture.check(fixture_architecture());
    let mut offending: Vec<&str> = report
        .violations()
        .iter()
        .map(|violation| {
            assert_eq!(violation.rule, Rule::ApplicationNoHttp, "{report}");
            violation.offending.as_str()
        })
        .collect();
    offending.sort_unstable();
    assert_eq!(
        offending,
        ["axum", "headers", "http", "hyper", "tower"],
        "{report}"
    );
}

#[test]
fn infrastructure_type_in_api_code_is_reported() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/api/mod.rs",
        &format!("use fixture_infrastructure::Repo;\n{API}"),
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApiNoInfrastructure,
        "app-api/src/api/mod.rs",
        "fixture_infrastructure",
    );
}

#[test]
fn infrastructure_in_application_code_is_reported() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!("pub type Store = fixture_infrastructure::Repo;\n{APPLICATION}"),
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApplicationNoInfrastructure,
        "app-api/src/application/mod.rs",
        "fixture_infrastructure",
    );
}

#[test]
fn a_renamed_infrastructure_crate_is_still_recognised() {
    let fixture = Fixture::good();
    fixture.manifest(
        "app-api",
        "fixture-app-api",
        &[
            r#"fixture-domain = { path = "../domain" }"#,
            r#"store = { package = "fixture-infrastructure", path = "../infrastructure" }"#,
        ],
    );
    fixture.write(
        "app-api/src/bootstrap.rs",
        "use fixture_app_api::application::PlaceOrder;\n\n\
         pub fn wire() -> PlaceOrder<store::Repo> {\n    PlaceOrder { orders: store::Repo }\n}\n",
    );
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!("use store::Repo as _;\n{APPLICATION}"),
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApplicationNoInfrastructure,
        "app-api/src/application/mod.rs",
        "store",
    );
}

#[test]
fn a_framework_infrastructure_crate_from_outside_the_workspace_is_still_infrastructure() {
    let fixture = Fixture::good();
    fixture.depend(
        "domain",
        r#"strata-infrastructure = { path = "../vendor/strata-infrastructure" }"#,
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::LayerDependency,
        "fixture-domain",
        "strata-infrastructure",
    );
}

#[test]
fn only_the_composition_root_may_name_the_service_runtime() {
    let fixture = Fixture::good();
    fixture.depend(
        "app-api",
        r#"strata-runtime = { path = "../vendor/strata-runtime" }"#,
    );
    fixture.write(
        "app-api/src/main.rs",
        "mod bootstrap;\n\n\
         fn main() {\n    let _ = strata_runtime::main;\n    let service = bootstrap::wire();\n    let _ = fixture_app_api::api::handle(&service, 1);\n}\n",
    );
    fixture.check(fixture_architecture()).assert_clean();

    fixture.write(
        "app-api/src/api/mod.rs",
        &format!("use strata_runtime::Startup as _;\n{API}"),
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApiNoInfrastructure,
        "app-api/src/api/mod.rs",
        "strata_runtime",
    );
}

#[test]
fn a_domain_crate_depending_on_the_service_runtime_is_reported() {
    let fixture = Fixture::good();
    fixture.depend(
        "domain",
        r#"strata-runtime = { path = "../vendor/strata-runtime" }"#,
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::LayerDependency,
        "fixture-domain",
        "strata-runtime",
    );
}

#[test]
fn a_runtime_crate_depending_on_a_crate_banned_for_it_is_reported() {
    let fixture = Fixture::good();
    fixture.add_member("runtime", "fixture-runtime");
    fixture.depend("runtime", r#"axum = { path = "../vendor/axum" }"#);
    let report = fixture.check(fixture_architecture().ban(Layer::Runtime, "axum"));
    assert_only(&report, Rule::RuntimeBannedCrate, "fixture-runtime", "axum");
}

#[test]
fn the_composition_root_may_wire_in_a_framework_infrastructure_crate() {
    let fixture = Fixture::good();
    fixture.depend(
        "app-api",
        r#"strata-infrastructure = { path = "../vendor/strata-infrastructure" }"#,
    );
    fixture.write(
        "app-api/src/bootstrap.rs",
        "use fixture_app_api::application::PlaceOrder;\n\
         use fixture_infrastructure::Repo;\n\n\
         pub fn wire() -> PlaceOrder<Repo> {\n    let _ = strata_infrastructure::connect;\n    PlaceOrder { orders: Repo }\n}\n",
    );
    fixture.check(fixture_architecture()).assert_clean();

    fixture.write(
        "app-api/src/application/mod.rs",
        &format!("use strata_infrastructure::Database as _;\n{APPLICATION}"),
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::ApplicationNoInfrastructure,
        "app-api/src/application/mod.rs",
        "strata_infrastructure",
    );
}

#[test]
fn only_the_crates_under_the_given_directory_are_checked() {
    let fixture = Fixture::good_under("services/orders");
    fixture.add_member("legacy", "fixture-legacy");

    let project = fixture_architecture()
        .check_crates_under(fixture.path("services/orders"))
        .expect("cargo metadata runs on the fixture");
    project.assert_clean();

    let whole = fixture_architecture()
        .check_workspace(fixture.path("services/orders"))
        .expect("cargo metadata runs on the fixture");
    assert_only(
        &whole,
        Rule::UnclassifiedCrate,
        "fixture-legacy",
        "directory legacy",
    );
}

#[test]
fn a_crate_outside_the_checked_directory_still_counts_under_its_layer() {
    let fixture = Fixture::good_under("services/orders");
    fixture.add_member("shared/infrastructure", "fixture-shared-store");
    fixture.depend(
        "services/orders/domain",
        r#"fixture-shared-store = { path = "../../../shared/infrastructure" }"#,
    );
    let report = fixture_architecture()
        .check_crates_under(fixture.path("services/orders"))
        .expect("cargo metadata runs on the fixture");
    assert_only(
        &report,
        Rule::LayerDependency,
        "fixture-domain",
        "fixture-shared-store",
    );
}

#[test]
fn infrastructure_outside_the_composition_root_files_is_reported() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/lib.rs",
        "pub mod api;\npub mod application;\n\n\
         pub fn default_store() -> fixture_infrastructure::Repo {\n    fixture_infrastructure::Repo\n}\n",
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::CompositionRootOnly,
        "app-api/src/lib.rs",
        "fixture_infrastructure",
    );
}

#[test]
fn a_missing_composition_root_crate_matches_nothing() {
    let fixture = Fixture::good();
    let metadata = fixture.metadata();
    let report = fixture_architecture()
        .composition_root("fixture-missing", ["src/main.rs"])
        .check(&metadata);
    assert_only(
        &report,
        Rule::RuleMatchedNothing,
        metadata.workspace_root.as_str(),
        "fixture-missing",
    );
}

#[test]
fn a_missing_composition_root_file_matches_nothing() {
    let fixture = Fixture::good();
    let report = fixture.check(Architecture::standard().composition_root(
        "fixture-app-api",
        ["src/main.rs", "src/bootstrap.rs", "src/wiring.rs"],
    ));
    assert_only(
        &report,
        Rule::RuleMatchedNothing,
        "fixture-app-api",
        "src/wiring.rs",
    );
}

#[test]
fn app_api_without_application_code_matches_nothing() {
    let fixture = Fixture::good();
    fs::remove_dir_all(fixture.path("app-api/src/application"))
        .expect("the fixture has application code to remove");
    fixture.write("app-api/src/lib.rs", "pub mod api;\n");
    fixture.write(
        "app-api/src/api/mod.rs",
        "pub fn health() -> u16 {\n    200\n}\n",
    );
    let report = fixture.check(fixture_architecture());
    assert_only(
        &report,
        Rule::RuleMatchedNothing,
        "fixture-app-api",
        "src/application/",
    );
}

#[test]
fn a_workspace_without_api_code_matches_nothing() {
    let fixture = Fixture::good();
    fs::remove_dir_all(fixture.path("app-api/src/api"))
        .expect("the fixture has API code to remove");
    fixture.write("app-api/src/lib.rs", "pub mod application;\n");
    fixture.write(
        "app-api/src/main.rs",
        "mod bootstrap;\n\nfn main() {\n    let _ = bootstrap::wire().run(1);\n}\n",
    );
    let metadata = fixture.metadata();
    let report = fixture_architecture().check(&metadata);
    assert_only(
        &report,
        Rule::RuleMatchedNothing,
        metadata.workspace_root.as_str(),
        "src/api/",
    );
}

#[test]
fn a_workspace_without_a_domain_crate_matches_nothing() {
    let fixture = Fixture::good();
    let metadata = fixture.metadata();
    let report = fixture_architecture()
        .classify("fixture-domain", Layer::Tests)
        .check(&metadata);
    assert!(
        report.violations().iter().any(|violation| {
            violation.rule == Rule::RuleMatchedNothing
                && violation.subject == metadata.workspace_root.as_str()
                && violation.offending == "domain crate"
        }),
        "a missing domain layer is reported:\n{report}"
    );
}

#[test]
fn an_unparseable_source_file_is_reported() {
    let fixture = Fixture::good();
    fixture.write("app-api/src/application/mod.rs", "pub fn place_order( {\n");
    let report = fixture.check(fixture_architecture());
    let [violation] = report.violations() else {
        panic!("expected exactly one violation:\n{report}");
    };
    assert_eq!(violation.rule, Rule::SourceUnparseable, "{report}");
    assert_eq!(
        violation.subject, "app-api/src/application/mod.rs",
        "{report}"
    );
}

#[test]
fn references_in_comments_and_string_literals_are_not_reported() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!(
            "//! Never `use axum::Router;` here.\n\
             // use axum::Router;\n\
             /* fixture_infrastructure::Repo */\n\
             /// Unlike `sea_orm::Database`, this stays in memory.\n\
             pub const ROUTE: &str = \"axum::Router\";\n\
             pub fn describe() -> String {{\n    format!(\"{{}} via {{}}\", \"hyper::Client\", r\"fixture_infrastructure::Repo\")\n}}\n\
             {APPLICATION}"
        ),
    );
    fixture.check(fixture_architecture()).assert_clean();
}

#[test]
fn a_local_module_path_is_not_a_crate_reference() {
    let fixture = Fixture::good();
    fixture.write(
        "app-api/src/application/mod.rs",
        &format!(
            "mod wire {{\n    pub struct Json;\n}}\n\
             pub fn local() -> self::wire::Json {{\n    crate::application::wire::Json\n}}\n\
             {APPLICATION}"
        ),
    );
    fixture.check(fixture_architecture()).assert_clean();
}

#[test]
fn violations_print_one_line_each() {
    let fixture = Fixture::good();
    fixture.depend("domain", r#"tokio = { path = "../vendor/tokio" }"#);
    let report = fixture.check(fixture_architecture());
    assert_eq!(
        report.to_string(),
        "fixture-domain: tokio: domain-banned-crate — the domain layer must not depend on an \
         async runtime, web framework, HTTP client, ORM, SQL driver or cache client\n"
    );
    let panic = std::panic::catch_unwind(|| report.assert_clean())
        .expect_err("assert_clean panics on a violation");
    let message = panic
        .downcast_ref::<String>()
        .expect("the panic carries a formatted message");
    assert!(
        message.contains("fixture-domain: tokio: domain-banned-crate — "),
        "{message}"
    );
}

/// The checker as a fixture's tests configure it.
fn fixture_architecture() -> Architecture {
    Architecture::standard()
        .composition_root("fixture-app-api", ["src/main.rs", "src/bootstrap.rs"])
}

#[track_caller]
fn assert_only(report: &Report, rule: Rule, subject: &str, offending: &str) {
    let [violation] = report.violations() else {
        panic!(
            "expected exactly one {rule} violation, found {}:\n{report}",
            report.violations().len()
        );
    };
    let Violation {
        subject: actual_subject,
        offending: actual_offending,
        rule: actual_rule,
        ..
    } = violation;
    assert_eq!(*actual_rule, rule, "{report}");
    assert_eq!(actual_subject, subject, "{report}");
    assert_eq!(actual_offending, offending, "{report}");
    assert!(
        violation
            .to_string()
            .starts_with(&format!("{subject}: {offending}: {rule} — ")),
        "{violation}"
    );
}

const APPLICATION: &str = "\
use fixture_domain::{Order, OrderRepository};

pub struct PlaceOrder<R> {
    pub orders: R,
}

impl<R: OrderRepository> PlaceOrder<R> {
    pub fn run(&self, id: u64) -> Option<Order> {
        self.orders.find(id)
    }
}
";

const API: &str = "\
use crate::application::PlaceOrder;

pub fn handle<R: fixture_domain::OrderRepository>(service: &PlaceOrder<R>, id: u64) -> u16 {
    if service.run(id).is_some() { 200 } else { 404 }
}
";

/// A throwaway workspace shaped like a Strata project, removed on drop.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    /// A workspace that obeys every rule.
    fn good() -> Self {
        Self::good_under(".")
    }

    /// A workspace that obeys every rule, its crates under `project` (a
    /// directory relative to the workspace root) as when several projects
    /// share one workspace.
    fn good_under(project: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strata-architecture-")
            .tempdir()
            .expect("a temporary directory for the fixture");
        let fixture = Fixture { dir };
        let at = |relative: &str| {
            if project == "." {
                relative.to_owned()
            } else {
                format!("{project}/{relative}")
            }
        };
        let members = [
            "domain",
            "app-api",
            "infrastructure",
            "frontend-bff",
            "tests",
        ]
        .map(|member| format!("\"{}\"", at(member)))
        .join(", ");
        fixture.write(
            "Cargo.toml",
            &format!(
                "[workspace]\n\
                 resolver = \"3\"\n\
                 members = [{members}]\n\
                 exclude = [\"{}\"]\n",
                at("vendor")
            ),
        );

        fixture.manifest(&at("domain"), "fixture-domain", &[]);
        fixture.write(
            &at("domain/src/lib.rs"),
            "pub struct Order {\n    pub id: u64,\n}\n\n\
             pub trait OrderRepository {\n    fn find(&self, id: u64) -> Option<Order>;\n}\n",
        );

        fixture.manifest(
            &at("infrastructure"),
            "fixture-infrastructure",
            &[r#"fixture-domain = { path = "../domain" }"#],
        );
        fixture.write(
            &at("infrastructure/src/lib.rs"),
            "use fixture_domain::{Order, OrderRepository};\n\n\
             pub struct Repo;\n\n\
             impl OrderRepository for Repo {\n    fn find(&self, id: u64) -> Option<Order> {\n        Some(Order { id })\n    }\n}\n",
        );

        fixture.manifest(
            &at("app-api"),
            "fixture-app-api",
            &[
                r#"fixture-domain = { path = "../domain" }"#,
                r#"fixture-infrastructure = { path = "../infrastructure" }"#,
            ],
        );
        fixture.write(
            &at("app-api/src/lib.rs"),
            "pub mod api;\npub mod application;\n",
        );
        fixture.write(&at("app-api/src/application/mod.rs"), APPLICATION);
        fixture.write(&at("app-api/src/api/mod.rs"), API);
        fixture.write(
            &at("app-api/src/main.rs"),
            "mod bootstrap;\n\n\
             fn main() {\n    let service = bootstrap::wire();\n    let _ = fixture_app_api::api::handle(&service, 1);\n}\n",
        );
        fixture.write(
            &at("app-api/src/bootstrap.rs"),
            "use fixture_app_api::application::PlaceOrder;\n\
             use fixture_infrastructure::Repo;\n\n\
             pub fn wire() -> PlaceOrder<Repo> {\n    PlaceOrder { orders: Repo }\n}\n",
        );

        fixture.manifest(&at("frontend-bff"), "fixture-bff", &[]);
        fixture.write(
            &at("frontend-bff/src/lib.rs"),
            "pub fn render(total: u64) -> String {\n    format!(\"total: {total}\")\n}\n",
        );

        fixture.manifest(
            &at("tests"),
            "fixture-tests",
            &[
                r#"fixture-app-api = { path = "../app-api" }"#,
                r#"fixture-bff = { path = "../frontend-bff" }"#,
                r#"fixture-domain = { path = "../domain" }"#,
                r#"fixture-infrastructure = { path = "../infrastructure" }"#,
            ],
        );
        fixture.write(&at("tests/src/lib.rs"), "pub use fixture_app_api as app;\n");

        for (dir, name) in [
            ("vendor/tokio", "tokio"),
            ("vendor/sea-orm", "sea-orm"),
            ("vendor/axum", "axum"),
        ] {
            fixture.manifest(&at(dir), name, &[]);
            fixture.write(&at(&format!("{dir}/src/lib.rs")), "");
        }
        fixture.manifest(
            &at("vendor/helper"),
            "fixture-helper",
            &[r#"tokio = { path = "../tokio" }"#],
        );
        fixture.write(&at("vendor/helper/src/lib.rs"), "pub use tokio;\n");
        // Strata's infrastructure crate as a generated project sees it: from
        // outside the workspace, with sea-orm behind it.
        fixture.manifest(
            &at("vendor/strata-infrastructure"),
            "strata-infrastructure",
            &[r#"sea-orm = { path = "../sea-orm" }"#],
        );
        fixture.write(&at("vendor/strata-infrastructure/src/lib.rs"), "");
        // Strata's service runtime, likewise: above app-api and infrastructure.
        fixture.manifest(
            &at("vendor/strata-runtime"),
            "strata-runtime",
            &[r#"fixture-helper = { path = "../helper" }"#],
        );
        fixture.write(
            &at("vendor/strata-runtime/src/lib.rs"),
            "pub fn main() {}\n",
        );
        fixture
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("fixture directories can be created");
        }
        fs::write(&path, contents).expect("fixture files can be written");
    }

    /// Writes `dir/Cargo.toml` for package `name`, replacing any earlier one.
    fn manifest(&self, dir: &str, name: &str, dependencies: &[&str]) {
        let mut text = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n"
        );
        for dependency in dependencies {
            text.push_str(dependency);
            text.push('\n');
        }
        self.write(&format!("{dir}/Cargo.toml"), &text);
    }

    fn depend(&self, dir: &str, dependency: &str) {
        self.add_to_table(dir, "dependencies", dependency);
    }

    /// Adds `line` to table `[table]` of `dir/Cargo.toml`, creating the table
    /// if the manifest lacks it.
    fn add_to_table(&self, dir: &str, table: &str, line: &str) {
        let relative = format!("{dir}/Cargo.toml");
        let text = fs::read_to_string(self.path(&relative)).expect("the fixture manifest exists");
        let header = format!("[{table}]\n");
        let text = match text.find(&header) {
            Some(at) => {
                let (before, after) = text.split_at(at + header.len());
                format!("{before}{line}\n{after}")
            }
            None => format!("{text}\n{header}{line}\n"),
        };
        self.write(&relative, &text);
    }

    fn add_member(&self, dir: &str, name: &str) {
        let manifest =
            fs::read_to_string(self.path("Cargo.toml")).expect("the fixture root exists");
        let manifest = manifest.replace("members = [", &format!("members = [\"{dir}\", "));
        self.write("Cargo.toml", &manifest);
        self.manifest(dir, name, &[]);
        self.write(&format!("{dir}/src/lib.rs"), "pub fn helper() {}\n");
    }

    fn metadata(&self) -> Metadata {
        MetadataCommand::new()
            .manifest_path(self.path("Cargo.toml"))
            .other_options(vec!["--offline".to_owned()])
            .exec()
            .expect("cargo metadata resolves the fixture offline")
    }

    fn check(&self, architecture: Architecture) -> Report {
        architecture.check(&self.metadata())
    }
}
