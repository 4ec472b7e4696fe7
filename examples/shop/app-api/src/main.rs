//! `shop`: the sample shop — its API and web page — and the chores around it:
//! schema migrations, demo data, and showing the configuration. The command
//! line, exit statuses, signals and shutdown are the service runtime's.

fn main() -> std::process::ExitCode {
    strata_runtime::main::<shop_app_api::Shop>()
}
