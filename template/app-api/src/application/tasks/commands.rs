use domain::tasks::{TaskId, TaskTitle};
use serde::Serialize;
use strata_app_api::application::{Access, Command, Invalidation};
use strata_app_api::validator::{Validate, ValidationError};

use super::{TaskView, cache_keys};

/// Write down a new task. Serializable so that a retry with the same
/// `Idempotency-Key` can be told apart from a different request.
#[derive(Debug, Clone, PartialEq, Eq, Validate, Serialize)]
#[validate(crate = "strata_app_api::validator")]
pub struct CreateTask {
    /// What the task is about.
    #[validate(custom(function = "title"))]
    pub title: String,
}

impl Command for CreateTask {
    type Output = TaskView;
    const NAME: &'static str = "tasks.create_task";
    const ACCESS: Access = Access::Anyone;

    fn invalidates(&self) -> Invalidation {
        Invalidation::none().tag(cache_keys::TASK_LISTINGS)
    }
}

/// Mark a task done, provided nobody changed it since the client read it at
/// `expected_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Validate)]
#[validate(crate = "strata_app_api::validator")]
pub struct CompleteTask {
    /// The task.
    pub id: TaskId,
    /// The version the client last saw.
    pub expected_version: u64,
}

impl Command for CompleteTask {
    type Output = TaskView;
    const NAME: &'static str = "tasks.complete_task";
    const ACCESS: Access = Access::Anyone;

    fn invalidates(&self) -> Invalidation {
        Invalidation::none()
            .key(cache_keys::task(self.id))
            .tag(cache_keys::TASK_LISTINGS)
    }
}

/// The value object decides what a valid title is; this only asks it.
fn title(raw: &str) -> Result<(), ValidationError> {
    TaskTitle::parse(raw)
        .map(drop)
        .map_err(|failure| failure.to_field_error())
}
