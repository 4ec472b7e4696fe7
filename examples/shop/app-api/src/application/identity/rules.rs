//! `validator` rules for identity inputs, delegating to the domain's value objects.

use shop_domain::identity::{Email, Password};
use validator::ValidationError;

pub(super) fn email(email: &str) -> Result<(), ValidationError> {
    Email::parse(email)
        .map(drop)
        .map_err(|failure| failure.to_field_error())
}

pub(super) fn new_password(password: &Password) -> Result<(), ValidationError> {
    password
        .check_new()
        .map_err(|failure| failure.to_field_error())
}
