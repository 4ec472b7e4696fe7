//! Identity use cases: register, sign in, refresh a session, sign out, and the
//! administrator account the service makes at start-up.

mod commands;
mod handlers;
mod rules;

use std::sync::Arc;

pub use commands::{
    EnsureAdministrator, PurgeExpiredSessions, RefreshOutcome, RefreshSession, RegisterCustomer,
    SessionToken, SignIn, SignOut, SignedIn, UserView,
};
pub use handlers::{Identity, IdentityPorts, IdentitySettings, Throttles};
use strata_app_api::application::DispatcherBuilder;

/// Registers every identity use case with `identity` as its handler.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, identity: Arc<Identity>) -> DispatcherBuilder {
    dispatcher
        .command::<RegisterCustomer>(identity.clone())
        .command::<SignIn>(identity.clone())
        .command::<RefreshSession>(identity.clone())
        .command::<SignOut>(identity.clone())
        .command::<EnsureAdministrator>(identity.clone())
        .command::<PurgeExpiredSessions>(identity)
}
