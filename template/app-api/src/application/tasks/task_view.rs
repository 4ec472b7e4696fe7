use domain::tasks::{Task, TaskId};
use serde::{Deserialize, Serialize};
use strata_domain::{AggregateRoot, Entity};

/// A task as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Task)]
pub struct TaskView {
    /// The task's id.
    #[schema(value_type = uuid::Uuid)]
    pub id: TaskId,
    /// What it is about.
    pub title: String,
    /// `open` or `done`.
    pub status: String,
    /// The version to send back when changing the task.
    pub version: u64,
}

impl From<&Task> for TaskView {
    fn from(task: &Task) -> Self {
        Self {
            id: task.id(),
            title: task.title().to_string(),
            status: task.status().as_str().to_owned(),
            version: task.version().value(),
        }
    }
}
