//! Runs the service — the API and, unless turned off, the web page — and the
//! chores around it: schema migrations, demo data, and showing the
//! configuration. The command line, exit statuses, signals and shutdown are the
//! service runtime's.

fn main() -> std::process::ExitCode {
    strata_runtime::main::<app_api::App>()
}
