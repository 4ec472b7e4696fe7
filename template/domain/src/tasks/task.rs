use serde::Serialize;
use strata_domain::{
    AggregateRoot, AggregateState, DomainError, DomainEvent, Entity, Id, ValidationFailure, Version,
};

use super::TaskTitle;

/// A task's identity.
pub type TaskId = Id<Task>;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Still to do.
    Open,
    /// Done; a done task stays done.
    Done,
}

impl TaskStatus {
    /// The status as stored and shown: `open` or `done`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Done => "done",
        }
    }

    /// The status named `text`, if it names one.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "done" => Some(Self::Done),
            _ => None,
        }
    }
}

/// What happened to a task. The envelope around each event carries its type,
/// so the payload is the event's fields alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TaskEvent {
    /// The task was written down.
    Created {
        /// The new task.
        id: TaskId,
        /// Its title.
        title: TaskTitle,
    },
    /// The task was done.
    Completed {
        /// The task.
        id: TaskId,
    },
}

impl DomainEvent for TaskEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Created { .. } => "tasks.task_created",
            Self::Completed { .. } => "tasks.task_completed",
        }
    }
}

/// A task: the aggregate root of the tasks context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    id: TaskId,
    title: TaskTitle,
    status: TaskStatus,
    state: AggregateState<TaskEvent>,
}

impl Task {
    /// Writes down a new, open task.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming `title` when the title is not acceptable.
    pub fn create(title: &str) -> Result<Self, DomainError> {
        let title = TaskTitle::parse(title).map_err(|failure| {
            let mut named = ValidationFailure::default();
            named.absorb("title", failure);
            DomainError::Invalid(named)
        })?;
        let id = TaskId::generate();
        let mut task = Self {
            id,
            title: title.clone(),
            status: TaskStatus::Open,
            state: AggregateState::new(),
        };
        task.record(TaskEvent::Created { id, title });
        Ok(task)
    }

    /// Rebuilds a task that was saved before, at the version it was saved at.
    /// Used by repositories; records no event.
    #[must_use]
    pub fn restore(id: TaskId, title: TaskTitle, status: TaskStatus, version: Version) -> Self {
        Self {
            id,
            title,
            status,
            state: AggregateState::loaded(version),
        }
    }

    /// Marks the task done.
    ///
    /// # Errors
    /// `already_done` when it was done before: completing twice is a mistake the
    /// client should hear about, not a silent success.
    pub fn complete(&mut self) -> Result<(), DomainError> {
        if self.status == TaskStatus::Done {
            return Err(DomainError::RuleViolated {
                code: "already_done",
                message: format!("task {} is already done", self.id),
            });
        }
        self.status = TaskStatus::Done;
        self.record(TaskEvent::Completed { id: self.id });
        Ok(())
    }

    /// What the task is about.
    #[must_use]
    pub fn title(&self) -> &TaskTitle {
        &self.title
    }

    /// Where the task stands.
    #[must_use]
    pub fn status(&self) -> TaskStatus {
        self.status
    }
}

impl Entity for Task {
    type Id = TaskId;

    fn id(&self) -> TaskId {
        self.id
    }
}

impl AggregateRoot for Task {
    type Event = TaskEvent;
    const KIND: &'static str = "task";

    fn state(&self) -> &AggregateState<TaskEvent> {
        &self.state
    }

    fn state_mut(&mut self) -> &mut AggregateState<TaskEvent> {
        &mut self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved_task(status: TaskStatus) -> Task {
        Task::restore(
            TaskId::generate(),
            TaskTitle::parse("Water the plants").expect("valid"),
            status,
            Version::new(3),
        )
    }

    #[test]
    fn given_a_title_when_created_then_it_is_open_new_and_records_created() {
        let mut task = Task::create(" Water the plants ").expect("valid title");

        assert!(task.version().is_new());
        assert_eq!(task.status(), TaskStatus::Open);
        assert_eq!(
            task.take_events(),
            [TaskEvent::Created {
                id: task.id(),
                title: TaskTitle::parse("Water the plants").expect("valid"),
            }]
        );
    }

    #[test]
    fn given_a_blank_title_when_created_then_the_title_is_named() {
        let Err(DomainError::Invalid(failure)) = Task::create("   ") else {
            panic!("a blank title must be refused");
        };
        let fields: Vec<_> = failure
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["title"]);
    }

    #[test]
    fn given_an_open_task_when_completed_then_it_is_done_and_records_completed() {
        let mut task = saved_task(TaskStatus::Open);

        task.complete().expect("open tasks can be completed");

        assert_eq!(task.status(), TaskStatus::Done);
        assert_eq!(task.version(), Version::new(3));
        assert_eq!(task.take_events(), [TaskEvent::Completed { id: task.id() }]);
    }

    #[test]
    fn given_a_done_task_when_completed_again_then_it_is_refused_and_nothing_is_recorded() {
        let mut task = saved_task(TaskStatus::Done);

        let error = task.complete().expect_err("done tasks stay done");

        assert!(matches!(
            error,
            DomainError::RuleViolated {
                code: "already_done",
                ..
            }
        ));
        assert!(task.pending_events().is_empty());
    }

    #[test]
    fn a_status_reads_back_from_its_text() {
        for status in [TaskStatus::Open, TaskStatus::Done] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::parse("later"), None);
    }
}
