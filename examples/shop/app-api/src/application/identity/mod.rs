//! Identity use cases: register, sign in, refresh a session, sign out.

mod commands;
mod handlers;
mod rules;

use std::sync::Arc;

pub use commands::{
    RefreshOutcome, RefreshSession, RegisterCustomer, SessionToken, SignIn, SignOut, SignedIn,
    UserView,
};
pub(crate) use handlers::create_user;
pub use handlers::{Identity, IdentitySettings, SignInThrottles};
use strata_app_api::application::DispatcherBuilder;

/// Registers every identity use case with `identity` as its handler.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, identity: Arc<Identity>) -> DispatcherBuilder {
    dispatcher
        .command::<RegisterCustomer>(identity.clone())
        .command::<SignIn>(identity.clone())
        .command::<RefreshSession>(identity.clone())
        .command::<SignOut>(identity)
}
