use super::{AppError, Principal};

/// Who may run a use case. Every command and query declares one, so an endpoint
/// cannot be left open by forgetting to protect it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Anyone,
    /// Any signed-in caller.
    SignedIn,
    /// A signed-in caller granted this permission.
    Permission(&'static str),
}

impl Access {
    /// Whether `principal` may run a use case declaring this access.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] when a caller is needed and there is none;
    /// [`AppError::Forbidden`] when the caller lacks the permission.
    pub fn check(self, principal: Option<&Principal>) -> Result<(), AppError> {
        match (self, principal) {
            (Self::Anyone, _) => Ok(()),
            (Self::SignedIn | Self::Permission(_), None) => Err(AppError::Unauthenticated),
            (Self::SignedIn, Some(_)) => Ok(()),
            (Self::Permission(permission), Some(principal)) => {
                if principal.has_permission(permission) {
                    Ok(())
                } else {
                    Err(AppError::Forbidden(format!(
                        "this needs the `{permission}` permission"
                    )))
                }
            }
        }
    }
}

/// A rule about who may see a particular resource, applied by the dispatcher to
/// what a query answers, so handlers never repeat the check.
///
/// Register a query with one through
/// [`super::DispatcherBuilder::guarded_query`].
pub trait ResourcePolicy<T>: Send + Sync + 'static {
    /// `Ok` when `principal` may see `resource`.
    ///
    /// # Errors
    /// The answer to give instead of the resource.
    fn check(&self, principal: Option<&Principal>, resource: &T) -> Result<(), AppError>;
}

/// Something that belongs to one principal, such as a customer's order.
pub trait Owned {
    /// The kind of resource, for the not-found answer: `wishlist`.
    const KIND: &'static str;

    /// The subject of the principal it belongs to.
    fn owner(&self) -> &str;

    /// Its id, for the not-found answer.
    fn resource_id(&self) -> String;
}

/// Only the owner may see the resource, or a caller with the given permission
/// (such as support staff).
///
/// Anyone else gets 404 `not_found` — the same answer as for a resource that does
/// not exist — so the answer never reveals that someone else's resource exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerOr(pub &'static str);

impl<T: Owned> ResourcePolicy<T> for OwnerOr {
    fn check(&self, principal: Option<&Principal>, resource: &T) -> Result<(), AppError> {
        match principal {
            None => Err(AppError::Unauthenticated),
            Some(principal)
                if principal.subject() == resource.owner() || principal.has_permission(self.0) =>
            {
                Ok(())
            }
            Some(_) => Err(AppError::not_found(T::KIND, resource.resource_id())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::PrincipalKind;

    struct Note {
        owner: &'static str,
    }

    impl Owned for Note {
        const KIND: &'static str = "note";
        fn owner(&self) -> &str {
            self.owner
        }
        fn resource_id(&self) -> String {
            "n1".into()
        }
    }

    fn user(subject: &str) -> Principal {
        Principal::new(subject, PrincipalKind::User)
    }

    #[test]
    fn access_needs_a_caller_then_a_permission() {
        let reader = user("u1").with_permission("notes.read");
        assert!(Access::Anyone.check(None).is_ok());
        assert!(matches!(
            Access::SignedIn.check(None),
            Err(AppError::Unauthenticated)
        ));
        assert!(Access::SignedIn.check(Some(&reader)).is_ok());
        assert!(
            Access::Permission("notes.read")
                .check(Some(&reader))
                .is_ok()
        );
        assert!(matches!(
            Access::Permission("notes.write").check(Some(&reader)),
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            Access::Permission("notes.read").check(None),
            Err(AppError::Unauthenticated)
        ));
    }

    #[test]
    fn owners_and_privileged_callers_see_a_resource_others_are_told_it_is_not_there() {
        let note = Note { owner: "u1" };
        let policy = OwnerOr("notes.read_any");
        assert!(policy.check(Some(&user("u1")), &note).is_ok());
        assert!(
            policy
                .check(
                    Some(&user("staff").with_permission("notes.read_any")),
                    &note
                )
                .is_ok()
        );
        assert!(matches!(
            policy.check(Some(&user("u2")), &note),
            Err(AppError::NotFound { kind: "note", .. })
        ));
        assert!(matches!(
            policy.check(None, &note),
            Err(AppError::Unauthenticated)
        ));
    }
}
