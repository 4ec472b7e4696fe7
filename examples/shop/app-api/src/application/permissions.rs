//! The permissions the shop's use cases require, and which role grants which.

use shop_domain::identity::{Role, User};
use strata_app_api::application::{Principal, PrincipalKind};
use strata_domain::Entity;

/// Change the catalog: create products, change prices.
pub const CATALOG_WRITE: &str = "catalog.write";
/// See any customer's wishlists (support staff).
pub const WISHLISTS_READ_ANY: &str = "wishlists.read_any";
/// Make accounts with a role of the service's choosing (the service itself, at
/// start-up).
pub const ACCOUNTS_PROVISION: &str = "accounts.provision";
/// Read the audit trail.
pub use strata_app_api::application::audit::AUDIT_READ;
/// See and retry the outbox's dead letters.
pub use strata_app_api::application::outbox::OUTBOX_OPERATE;
/// Read the sales report.
pub const REPORTS_READ: &str = "reports.read";
/// Count events in the sales report (its consumer).
pub const REPORTS_WRITE: &str = "reports.write";
/// Forget expired sessions (the service itself, on a schedule).
pub const SESSIONS_PURGE: &str = "sessions.purge";
/// See any customer's orders (support staff).
pub const ORDERS_READ_ANY: &str = "orders.read_any";
/// Settle orders whose transaction ended (the service itself, on a schedule).
pub const ORDERS_SETTLE: &str = "orders.settle";
/// Reserve, deduct and release stock for orders (the ordering service's
/// token, calling the inventory's branch).
pub const STOCK_RESERVE: &str = "inventory.reserve";
/// Give a new product its first stock (the inventory's consumer of catalog
/// events).
pub const STOCK_OPEN: &str = "inventory.open";
/// Freeze, debit and unfreeze money for orders (the ordering service's
/// token, calling the wallet's branch).
pub const MONEY_FREEZE: &str = "wallet.freeze";
/// See and repair distributed transactions.
pub use strata_app_api::application::transactions::TCC_OPERATE;

/// The principal the shop acts as for work no person asked for: start-up
/// provisioning, background jobs.
#[must_use]
pub fn system_principal() -> Principal {
    Principal::new("shop", PrincipalKind::Service)
        .with_permission(ACCOUNTS_PROVISION)
        .with_permission(SESSIONS_PURGE)
        .with_permission(ORDERS_SETTLE)
}

/// The principal ordering calls the inventory and the wallet as: its service
/// token carries these permissions only.
#[must_use]
pub fn ordering_principal() -> Principal {
    Principal::new("shop-ordering", PrincipalKind::Service)
        .with_permission(STOCK_RESERVE)
        .with_permission(MONEY_FREEZE)
}

/// The principal a signed-in `user` acts as: their id, role and the permissions
/// the role grants.
#[must_use]
pub fn principal_for(user: &User) -> Principal {
    let principal =
        Principal::new(user.id().to_string(), PrincipalKind::User).with_role(user.role().as_str());
    match user.role() {
        Role::Customer => principal,
        Role::Admin => principal
            .with_permission(CATALOG_WRITE)
            .with_permission(WISHLISTS_READ_ANY)
            .with_permission(AUDIT_READ)
            .with_permission(OUTBOX_OPERATE)
            .with_permission(REPORTS_READ)
            .with_permission(ORDERS_READ_ANY)
            .with_permission(TCC_OPERATE),
    }
}
