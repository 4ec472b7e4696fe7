//! The permissions the shop's use cases require, and which role grants which.

use shop_domain::identity::{Role, User};
use strata_app_api::application::{Principal, PrincipalKind};
use strata_domain::Entity;

/// Change the catalog: create products, change prices.
pub const CATALOG_WRITE: &str = "catalog.write";
/// See any customer's wishlists (support staff).
pub const WISHLISTS_READ_ANY: &str = "wishlists.read_any";

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
            .with_permission(WISHLISTS_READ_ANY),
    }
}
