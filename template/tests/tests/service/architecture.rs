//! The layering rules on this project's crates. A violation fails with one line
//! per finding, naming the crate or file, the dependency and the rule.

use std::path::Path;

use strata_tests::architecture::Architecture;

#[test]
fn the_project_obeys_the_layering() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the project's root directory");
    // Package names start with the project's name; deriving the composition
    // root's from this crate's keeps the test right after a rename.
    let app_api = env!("CARGO_PKG_NAME")
        .strip_suffix("-tests")
        .map(|name| format!("{name}-app-api"))
        .expect("the tests crate is named <project>-tests");
    Architecture::standard()
        .composition_root(app_api, ["src/main.rs", "src/bootstrap.rs"])
        .check_crates_under(project)
        .expect("cargo metadata runs on the project")
        .assert_clean();
}
