//! Use cases over [`Note`]s, run through Strata's standard middleware chain on
//! the real unit of work, with probes that let a test see what happened when.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_app_api::application::{
    Access, AppError, CachePolicy, Command, CommandHandler, Dispatcher, Invalidation, Principal,
    PrincipalKind, Query, QueryHandler, RequestContext, UseCaseContext, middleware,
};
use strata_app_api::application::{Cache, KeyRequirement};
use strata_domain::ports::{
    CacheStore, EventEnvelope, ManualClock, Outbox, Propagation, UnitOfWork, in_unit_of_work,
};
use strata_domain::{Id, Repository, RepositoryError};
use strata_infrastructure::{
    Database, DatabaseOptions, InMemoryCacheStore, SeaOrmAuditTrail, SeaOrmIdempotencyStore,
    SeaOrmOutbox, SeaOrmUnitOfWork,
};
use tokio::sync::{Notify, Semaphore};
use validator::Validate;

use crate::notes::{self, Note, SeaOrmNotes};

/// How a use case ends after its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Answers `Ok`.
    Succeed,
    /// Answers a business error.
    Fail,
    /// Panics.
    Panic,
}

fn end(then: Then) -> Result<(), AppError> {
    match then {
        Then::Succeed => Ok(()),
        Then::Fail => Err(planned_failure()),
        Then::Panic => panic!("the handler blew up mid-transaction"),
    }
}

/// The business error a use case told to fail answers.
#[must_use]
pub fn planned_failure() -> AppError {
    AppError::RuleViolated {
        code: "planned_failure",
        message: "the test asked this use case to fail".into(),
    }
}

/// Writes a note per text, then ends as told. Makes the note count stale.
#[derive(Debug, Validate)]
pub struct WriteNotes {
    /// What the notes say.
    pub texts: Vec<String>,
    /// How it ends.
    pub then: Then,
}

impl Command for WriteNotes {
    type Output = ();
    const NAME: &'static str = "notes.write_notes";
    const ACCESS: Access = Access::Anyone;

    fn invalidates(&self) -> Invalidation {
        Invalidation::none().key(COUNT_KEY)
    }
}

/// Writes a note, waits, then ends as told: a sibling that takes its time.
#[derive(Debug, Validate)]
pub struct WriteSlowly {
    /// What the note says.
    pub text: String,
    /// How long it waits after writing.
    pub pause: Duration,
    /// How it ends.
    pub then: Then,
}

impl Command for WriteSlowly {
    type Output = ();
    const NAME: &'static str = "notes.write_slowly";
    const ACCESS: Access = Access::Anyone;
}

/// What a nested use case does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inner {
    /// Joins the caller's unit of work, writes `text`, ends as told.
    Joined {
        /// What its note says.
        text: String,
        /// How it ends.
        then: Then,
    },
    /// Writes `text` in a unit of work of its own.
    New {
        /// What its note says.
        text: String,
    },
}

/// Writes a note, runs a nested use case, maybe catches its failure, then ends.
#[derive(Debug, Validate)]
pub struct WriteAndNest {
    /// What the outer note says.
    pub text: String,
    /// The nested use case.
    pub inner: Inner,
    /// Whether a failure of the nested use case is caught.
    pub catch_inner: bool,
    /// How the outer use case ends.
    pub then: Then,
}

impl Command for WriteAndNest {
    type Output = ();
    const NAME: &'static str = "notes.write_and_nest";
    const ACCESS: Access = Access::Anyone;
}

/// Writes a note in a unit of work of its own.
#[derive(Debug, Validate)]
pub struct WriteIndependently {
    /// What the note says.
    pub text: String,
}

impl Command for WriteIndependently {
    type Output = ();
    const NAME: &'static str = "notes.write_independently";
    const ACCESS: Access = Access::Anyone;
    const PROPAGATION: Propagation = Propagation::RequiresNew;
}

/// One of two nested use cases run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// What its note says.
    pub text: String,
    /// How long it waits after writing.
    pub pause: Duration,
    /// How it ends.
    pub then: Then,
}

/// Writes its own note, then runs two nested use cases at once
/// (`tokio::join!`), ignores their failures, and succeeds.
#[derive(Debug, Validate)]
pub struct WriteSiblings {
    /// What the outer note says.
    pub text: String,
    /// Whether the outer note is written while the siblings run, rather than
    /// before them.
    pub write_alongside: bool,
    /// The first sibling.
    pub first: Sibling,
    /// The second sibling.
    pub second: Sibling,
}

impl Command for WriteSiblings {
    type Output = ();
    const NAME: &'static str = "notes.write_siblings";
    const ACCESS: Access = Access::Anyone;
}

/// What an after-commit hook does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Records whether the note is visible from outside the unit of work.
    Observe,
    /// Panics.
    Panic,
    /// Wakes [`Probes::committed`], then takes a while.
    SignalThenPause,
    /// Counts itself in [`Probes::hooks_done`].
    Count,
}

/// Writes a note and registers after-commit hooks, in order, then ends.
#[derive(Debug, Validate)]
pub struct WriteWithHooks {
    /// What the note says.
    pub text: String,
    /// The hooks.
    pub hooks: Vec<HookKind>,
    /// How it ends.
    pub then: Then,
}

impl Command for WriteWithHooks {
    type Output = ();
    const NAME: &'static str = "notes.write_with_hooks";
    const ACCESS: Access = Access::Anyone;
}

/// Changes a note's text if it is still at `version`. Makes the note stale.
#[derive(Debug, Validate)]
pub struct EditNote {
    /// The note.
    pub id: Id<Note>,
    /// Its new text.
    pub text: String,
    /// The version it was read at.
    pub version: u64,
}

impl Command for EditNote {
    type Output = ();
    const NAME: &'static str = "notes.edit_note";
    const ACCESS: Access = Access::Anyone;

    fn invalidates(&self) -> Invalidation {
        Invalidation::none().key(note_key(self.id))
    }
}

/// [`EditNote`] in a unit of work of its own.
#[derive(Debug, Validate)]
pub struct EditIndependently {
    /// The note.
    pub id: Id<Note>,
    /// Its new text.
    pub text: String,
}

impl Command for EditIndependently {
    type Output = ();
    const NAME: &'static str = "notes.edit_independently";
    const ACCESS: Access = Access::Anyone;
    const PROPAGATION: Propagation = Propagation::RequiresNew;
}

/// Edits a note, then has [`EditIndependently`] edit the same note in a unit of
/// work of its own, and answers what that one answered.
#[derive(Debug, Validate)]
pub struct EditTwice {
    /// The note.
    pub id: Id<Note>,
}

impl Command for EditTwice {
    type Output = Result<(), String>;
    const NAME: &'static str = "notes.edit_twice";
    const ACCESS: Access = Access::Anyone;
}

/// Writes a note, asks the cached note count inside the command (recording what
/// it saw in [`Probes::counts_seen`]), then ends as told.
#[derive(Debug, Validate)]
pub struct WriteThenCount {
    /// What the note says.
    pub text: String,
    /// How it ends.
    pub then: Then,
}

impl Command for WriteThenCount {
    type Output = ();
    const NAME: &'static str = "notes.write_then_count";
    const ACCESS: Access = Access::Anyone;
}

/// Hands the writing of a note to a spawned task and answers what it met.
#[derive(Debug, Validate)]
pub struct WriteFromSpawnedTask {
    /// What the note says.
    pub text: String,
}

impl Command for WriteFromSpawnedTask {
    type Output = Result<(), String>;
    const NAME: &'static str = "notes.write_from_spawned_task";
    const ACCESS: Access = Access::Anyone;
}

/// Asks for the raw connection pool inside its unit of work and answers what it
/// met.
#[derive(Debug, Validate)]
pub struct UsePoolInside {
    /// Unused; commands need a field to derive their rules.
    pub reason: String,
}

impl Command for UsePoolInside {
    type Output = Result<(), String>;
    const NAME: &'static str = "notes.use_pool_inside";
    const ACCESS: Access = Access::Anyone;
}

/// Writes `text` on the main database, then `other_text` on the other one in
/// that database's own unit of work, then ends as told.
#[derive(Debug, Validate)]
pub struct WriteOnTwoDatabases {
    /// The main database's note.
    pub text: String,
    /// The other database's note.
    pub other_text: String,
    /// How it ends.
    pub then: Then,
}

impl Command for WriteOnTwoDatabases {
    type Output = ();
    const NAME: &'static str = "notes.write_on_two_databases";
    const ACCESS: Access = Access::Anyone;
}

/// Writes on the other database with no unit of work of that database running,
/// and answers what it met.
#[derive(Debug, Validate)]
pub struct WriteOnOtherDatabaseAlone {
    /// What the note says.
    pub text: String,
}

impl Command for WriteOnOtherDatabaseAlone {
    type Output = Result<(), String>;
    const NAME: &'static str = "notes.write_on_other_database_alone";
    const ACCESS: Access = Access::Anyone;
}

/// Writes one note, idempotently; optionally waits at [`Probes::gate`] first.
/// Answers the note's id.
#[derive(Debug, Validate, Serialize, Deserialize)]
pub struct WriteNoteOnce {
    /// What the note says.
    #[validate(length(min = 1, message = "must not be empty"))]
    pub text: String,
    /// Whether to wait at the gate (announcing it at [`Probes::entered`]).
    #[serde(skip)]
    pub wait: bool,
    /// Whether to panic instead of finishing (a holder that dies).
    #[serde(skip)]
    pub die: bool,
}

impl Command for WriteNoteOnce {
    type Output = String;
    const NAME: &'static str = "notes.write_note_once";
    const ACCESS: Access = Access::SignedIn;
}

/// [`WriteNoteOnce`] registered as requiring a key.
#[derive(Debug, Validate, Serialize, Deserialize)]
pub struct WriteNoteWithKey {
    /// What the note says.
    pub text: String,
}

impl Command for WriteNoteWithKey {
    type Output = String;
    const NAME: &'static str = "notes.write_note_with_key";
    const ACCESS: Access = Access::SignedIn;
}

/// Holds its unit of work open until [`Probes::gate`] lets it go.
#[derive(Debug, Validate)]
pub struct HoldUnitOfWork {
    /// Unused; commands need a field to derive their rules.
    pub reason: String,
}

impl Command for HoldUnitOfWork {
    type Output = ();
    const NAME: &'static str = "notes.hold_unit_of_work";
    const ACCESS: Access = Access::Anyone;
}

/// Its slow part outside any unit of work: tries to write there (refused),
/// waits at [`Probes::gate`], then writes its note through a nested command,
/// which begins a unit of work of its own. It makes the note count stale,
/// with no unit of work of its own to wait for.
#[derive(Debug, Validate)]
pub struct PrepareOutside {
    /// The note's text.
    pub text: String,
}

impl Command for PrepareOutside {
    type Output = ();
    const NAME: &'static str = "notes.prepare_outside";
    const ACCESS: Access = Access::Anyone;
    const PROPAGATION: Propagation = Propagation::NotSupported;

    fn invalidates(&self) -> Invalidation {
        Invalidation::none().key(COUNT_KEY)
    }
}

/// How many notes there are; cached under [`COUNT_KEY`].
#[derive(Debug, Validate)]
pub struct CountNotes {
    /// Unused; queries need a field to derive their rules.
    pub reason: String,
}

/// Where the note count is cached.
pub const COUNT_KEY: &str = "notes:count";

impl Query for CountNotes {
    type Output = u64;
    const NAME: &'static str = "notes.count_notes";
    const ACCESS: Access = Access::Anyone;

    fn cache_policy(&self) -> Option<CachePolicy> {
        Some(CachePolicy::new(COUNT_KEY, Duration::from_secs(60)))
    }
}

/// A note as read; cached under [`note_key`].
#[derive(Debug, Validate)]
pub struct ReadNote {
    /// The note.
    pub id: Id<Note>,
}

/// A note's text and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteView {
    /// What it says.
    pub text: String,
    /// Its version.
    pub version: u64,
}

/// Where a note is cached.
#[must_use]
pub fn note_key(id: Id<Note>) -> String {
    format!("note:{id}")
}

impl Query for ReadNote {
    type Output = NoteView;
    const NAME: &'static str = "notes.read_note";
    const ACCESS: Access = Access::Anyone;

    fn cache_policy(&self) -> Option<CachePolicy> {
        Some(CachePolicy::new(note_key(self.id), Duration::from_secs(60)))
    }
}

/// What the use cases and hooks report, for tests to look at.
#[derive(Debug)]
pub struct Probes {
    /// Per observing hook: whether it saw its note from outside.
    pub hook_saw: Mutex<Vec<bool>>,
    /// How many counting hooks have run.
    pub hooks_done: AtomicUsize,
    /// Woken by a signalling hook.
    pub committed: Notify,
    /// Handlers that wait, wait here for a permit.
    pub gate: Semaphore,
    /// Woken when a handler starts waiting at the gate.
    pub entered: Notify,
    /// The counts [`WriteThenCount`] saw inside its command.
    pub counts_seen: Mutex<Vec<u64>>,
    /// Per outbox append: whether the watched cache key was still cached then.
    pub cached_at_commit: Mutex<Vec<bool>>,
    /// The cache key the outbox watches.
    pub watched_key: Mutex<Option<String>>,
    /// Whether [`PrepareOutside`]'s write outside a unit of work was refused.
    pub outside_write_refused: AtomicBool,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            hook_saw: Mutex::default(),
            hooks_done: AtomicUsize::new(0),
            committed: Notify::new(),
            gate: Semaphore::new(0),
            entered: Notify::new(),
            counts_seen: Mutex::default(),
            cached_at_commit: Mutex::default(),
            watched_key: Mutex::default(),
            outside_write_refused: AtomicBool::new(false),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Probes {
    /// What observing hooks saw, in order.
    #[must_use]
    pub fn hook_saw(&self) -> Vec<bool> {
        lock(&self.hook_saw).clone()
    }

    /// What [`WriteThenCount`] saw, in order.
    #[must_use]
    pub fn counts_seen(&self) -> Vec<u64> {
        lock(&self.counts_seen).clone()
    }

    /// Per commit with events: whether the watched key was still cached.
    #[must_use]
    pub fn cached_at_commit(&self) -> Vec<bool> {
        lock(&self.cached_at_commit).clone()
    }

    /// Watches `key` at each outbox append from now on.
    pub fn watch(&self, key: String) {
        *lock(&self.watched_key) = Some(key);
    }

    /// Lets one waiting handler through.
    pub fn open_gate(&self) {
        self.gate.add_permits(1);
    }
}

/// An outbox that, as the events of a commit arrive (inside the transaction,
/// just before it commits), notes whether the watched cache key is still there.
struct WatchingOutbox {
    inner: SeaOrmOutbox,
    cache: Arc<InMemoryCacheStore>,
    probes: Arc<Probes>,
}

#[async_trait]
impl Outbox for WatchingOutbox {
    async fn append(&self, events: Vec<EventEnvelope>) -> Result<(), RepositoryError> {
        let watched = lock(&self.probes.watched_key).clone();
        if let Some(key) = watched {
            let cached = self
                .cache
                .get(&key)
                .await
                .map_err(RepositoryError::storage)?
                .is_some();
            lock(&self.probes.cached_at_commit).push(cached);
        }
        self.inner.append(events).await
    }
}

struct Handlers {
    notes: SeaOrmNotes,
    database: Database,
    unit_of_work: Arc<SeaOrmUnitOfWork>,
    other: Option<(SeaOrmNotes, Arc<SeaOrmUnitOfWork>)>,
    probes: Arc<Probes>,
}

impl Handlers {
    async fn write(&self, text: &str) -> Result<Note, AppError> {
        let mut note = Note::write(text);
        self.notes.save(&mut note).await?;
        Ok(note)
    }

    fn other(&self) -> Result<&(SeaOrmNotes, Arc<SeaOrmUnitOfWork>), AppError> {
        self.other
            .as_ref()
            .ok_or_else(|| AppError::Internal("the fixture has no other database".into()))
    }

    async fn edit(&self, id: Id<Note>, text: &str, version: Option<u64>) -> Result<(), AppError> {
        let mut note = self
            .notes
            .find(id)
            .await?
            .ok_or_else(|| AppError::not_found("note", id))?;
        if version.is_some_and(|version| version != note.version_value()) {
            return Err(AppError::Conflict {
                code: "stale_version",
                message: "the note changed since it was read".into(),
            });
        }
        note.edit(text);
        self.notes.save(&mut note).await?;
        Ok(())
    }
}

trait VersionValue {
    fn version_value(&self) -> u64;
}

impl VersionValue for Note {
    fn version_value(&self) -> u64 {
        strata_domain::AggregateRoot::version(self).value()
    }
}

#[async_trait]
impl CommandHandler<WriteNotes> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, command: WriteNotes) -> Result<(), AppError> {
        for text in &command.texts {
            self.write(text).await?;
        }
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<WriteSlowly> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, command: WriteSlowly) -> Result<(), AppError> {
        self.write(&command.text).await?;
        tokio::time::sleep(command.pause).await;
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<WriteAndNest> for Handlers {
    async fn handle(&self, cx: &UseCaseContext, command: WriteAndNest) -> Result<(), AppError> {
        self.write(&command.text).await?;
        let inner = match command.inner {
            Inner::Joined { text, then } => {
                cx.execute(WriteNotes {
                    texts: vec![text],
                    then,
                })
                .await
            }
            Inner::New { text } => cx.execute(WriteIndependently { text }).await,
        };
        if !command.catch_inner {
            inner?;
        }
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<WriteIndependently> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: WriteIndependently,
    ) -> Result<(), AppError> {
        self.write(&command.text).await.map(drop)
    }
}

#[async_trait]
impl CommandHandler<WriteSiblings> for Handlers {
    async fn handle(&self, cx: &UseCaseContext, command: WriteSiblings) -> Result<(), AppError> {
        let sibling = |sibling: Sibling| {
            cx.execute(WriteSlowly {
                text: sibling.text,
                pause: sibling.pause,
                then: sibling.then,
            })
        };
        if command.write_alongside {
            let (own, _, _) = tokio::join!(
                self.write(&command.text),
                sibling(command.first),
                sibling(command.second)
            );
            own?;
        } else {
            self.write(&command.text).await?;
            let _ = tokio::join!(sibling(command.first), sibling(command.second));
        }
        Ok(())
    }
}

#[async_trait]
impl CommandHandler<WriteWithHooks> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, command: WriteWithHooks) -> Result<(), AppError> {
        self.write(&command.text).await?;
        for kind in command.hooks {
            let probes = Arc::clone(&self.probes);
            let notes = self.notes.clone();
            let text = command.text.clone();
            self.unit_of_work.after_commit(Box::new(move || {
                Box::pin(async move {
                    match kind {
                        HookKind::Observe => {
                            // A task with no unit of work reads what is committed.
                            let visible = tokio::spawn(async move {
                                notes.count_saying(&text).await.map(|count| count == 1)
                            })
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or(false);
                            lock(&probes.hook_saw).push(visible);
                        }
                        HookKind::Panic => panic!("an after-commit hook blew up"),
                        HookKind::SignalThenPause => {
                            probes.committed.notify_one();
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        HookKind::Count => {
                            probes.hooks_done.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            }))?;
        }
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<EditNote> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, command: EditNote) -> Result<(), AppError> {
        self.edit(command.id, &command.text, Some(command.version))
            .await
    }
}

#[async_trait]
impl CommandHandler<EditIndependently> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: EditIndependently,
    ) -> Result<(), AppError> {
        self.edit(command.id, &command.text, None).await
    }
}

#[async_trait]
impl CommandHandler<EditTwice> for Handlers {
    async fn handle(
        &self,
        cx: &UseCaseContext,
        command: EditTwice,
    ) -> Result<Result<(), String>, AppError> {
        self.edit(command.id, "outer edit", None).await?;
        let inner = cx
            .execute(EditIndependently {
                id: command.id,
                text: "independent edit".into(),
            })
            .await;
        Ok(inner.map_err(|error| error.code().to_owned()))
    }
}

#[async_trait]
impl CommandHandler<WriteThenCount> for Handlers {
    async fn handle(&self, cx: &UseCaseContext, command: WriteThenCount) -> Result<(), AppError> {
        self.write(&command.text).await?;
        let count = cx
            .ask(CountNotes {
                reason: "inside a command".into(),
            })
            .await?;
        lock(&self.probes.counts_seen).push(count);
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<WriteFromSpawnedTask> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: WriteFromSpawnedTask,
    ) -> Result<Result<(), String>, AppError> {
        let notes = self.notes.clone();
        let written = tokio::spawn(async move {
            let mut note = Note::write(&command.text);
            notes.save(&mut note).await
        })
        .await
        .map_err(AppError::internal)?;
        Ok(written.map_err(|error| strata_app_api::application::error_chain(&error)))
    }
}

#[async_trait]
impl CommandHandler<UsePoolInside> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        _command: UsePoolInside,
    ) -> Result<Result<(), String>, AppError> {
        Ok(self
            .database
            .connection()
            .map(drop)
            .map_err(|error| strata_app_api::application::error_chain(&error)))
    }
}

#[async_trait]
impl CommandHandler<WriteOnTwoDatabases> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: WriteOnTwoDatabases,
    ) -> Result<(), AppError> {
        self.write(&command.text).await?;
        let (other_notes, other_unit_of_work) = self.other()?;
        in_unit_of_work(other_unit_of_work.as_ref(), Propagation::Required, async {
            let mut note = Note::write(&command.other_text);
            other_notes.save(&mut note).await.map_err(AppError::from)
        })
        .await?;
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<WriteOnOtherDatabaseAlone> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: WriteOnOtherDatabaseAlone,
    ) -> Result<Result<(), String>, AppError> {
        let (other_notes, _) = self.other()?;
        let mut note = Note::write(&command.text);
        Ok(other_notes
            .save(&mut note)
            .await
            .map_err(|error| strata_app_api::application::error_chain(&error)))
    }
}

#[async_trait]
impl CommandHandler<WriteNoteOnce> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: WriteNoteOnce,
    ) -> Result<String, AppError> {
        if command.wait {
            self.probes.entered.notify_one();
            let permit = self
                .probes
                .gate
                .acquire()
                .await
                .map_err(AppError::internal)?;
            permit.forget();
        }
        let note = self.write(&command.text).await?;
        assert!(!command.die, "the holder of the key died");
        Ok(strata_domain::Entity::id(&note).to_string())
    }
}

#[async_trait]
impl CommandHandler<WriteNoteWithKey> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: WriteNoteWithKey,
    ) -> Result<String, AppError> {
        let note = self.write(&command.text).await?;
        Ok(strata_domain::Entity::id(&note).to_string())
    }
}

#[async_trait]
impl CommandHandler<HoldUnitOfWork> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, _command: HoldUnitOfWork) -> Result<(), AppError> {
        self.probes.entered.notify_one();
        let permit = self
            .probes
            .gate
            .acquire()
            .await
            .map_err(AppError::internal)?;
        permit.forget();
        Ok(())
    }
}

#[async_trait]
impl CommandHandler<PrepareOutside> for Handlers {
    async fn handle(&self, cx: &UseCaseContext, command: PrepareOutside) -> Result<(), AppError> {
        let refused = self.write("outside").await.is_err();
        self.probes
            .outside_write_refused
            .store(refused, Ordering::SeqCst);
        self.probes.entered.notify_one();
        let permit = self
            .probes
            .gate
            .acquire()
            .await
            .map_err(AppError::internal)?;
        permit.forget();
        cx.execute(WriteNotes {
            texts: vec![command.text],
            then: Then::Succeed,
        })
        .await
    }
}

#[async_trait]
impl QueryHandler<CountNotes> for Handlers {
    async fn ask(&self, _cx: &UseCaseContext, _query: CountNotes) -> Result<u64, AppError> {
        Ok(self.notes.count().await?)
    }
}

#[async_trait]
impl QueryHandler<ReadNote> for Handlers {
    async fn ask(&self, _cx: &UseCaseContext, query: ReadNote) -> Result<NoteView, AppError> {
        let note = self
            .notes
            .find(query.id)
            .await?
            .ok_or_else(|| AppError::not_found("note", query.id))?;
        Ok(NoteView {
            text: note.text().to_owned(),
            version: note.version_value(),
        })
    }
}

/// How a [`Fixture`] is set up.
#[derive(Debug, Clone, Default)]
pub struct FixtureOptions {
    /// A second database, for the suites that work on two.
    pub other_database_url: Option<String>,
    /// How the databases manage connections.
    pub database: DatabaseOptions,
    /// A connection pool for the idempotency store other than the main one,
    /// for the suite that shows what a misplaced store does.
    pub idempotency_on_other_database: bool,
}

/// The notes use cases wired through the standard chain — caching,
/// idempotency keys, the unit of work — on real databases.
pub struct Fixture {
    /// Runs the use cases.
    pub dispatcher: Dispatcher,
    /// The main database's notes, read outside any unit of work.
    pub notes: SeaOrmNotes,
    /// The other database's notes, when there is one.
    pub other_notes: Option<SeaOrmNotes>,
    /// The main database.
    pub database: Database,
    /// Its outbox.
    pub outbox: SeaOrmOutbox,
    /// The cache store behind the query cache.
    pub cache: Arc<InMemoryCacheStore>,
    /// The idempotency store.
    pub idempotency: Arc<SeaOrmIdempotencyStore>,
    /// The clock the idempotency store tells time by.
    pub clock: ManualClock,
    /// The audit trail.
    pub audit: Arc<SeaOrmAuditTrail>,
    /// What happened inside.
    pub probes: Arc<Probes>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

impl Fixture {
    /// The fixture on the database at `url`, migrated.
    ///
    /// # Panics
    /// When a database cannot be opened or migrated.
    pub async fn start(url: &str, options: FixtureOptions) -> Self {
        let database = open(url, &options.database).await;
        let other = match &options.other_database_url {
            Some(url) => Some(open(url, &options.database).await),
            None => None,
        };
        let probes = Arc::new(Probes::default());
        let cache = Arc::new(InMemoryCacheStore::default());
        let clock = ManualClock::starting_now();
        let unit_of_work = Arc::new(
            SeaOrmUnitOfWork::new(database.clone()).with_outbox(Arc::new(WatchingOutbox {
                inner: SeaOrmOutbox::new(database.clone()),
                cache: Arc::clone(&cache),
                probes: Arc::clone(&probes),
            })),
        );
        let idempotency_database = match (&other, options.idempotency_on_other_database) {
            (Some(other), true) => other.clone(),
            _ => database.clone(),
        };
        let idempotency = Arc::new(
            SeaOrmIdempotencyStore::new(idempotency_database)
                .with_clock(Arc::new(clock.clone()))
                .with_retention(Duration::from_secs(24 * 60 * 60)),
        );
        let handlers = Arc::new(Handlers {
            notes: SeaOrmNotes::new(database.clone()),
            database: database.clone(),
            unit_of_work: Arc::clone(&unit_of_work),
            other: other.as_ref().map(|other| {
                (
                    SeaOrmNotes::new(other.clone()),
                    Arc::new(SeaOrmUnitOfWork::new(other.clone())),
                )
            }),
            probes: Arc::clone(&probes),
        });
        let audit = Arc::new(SeaOrmAuditTrail::new(database.clone()));
        let chain = middleware::Standard::new(unit_of_work)
            .with_cache(Arc::new(Cache::new(
                Arc::clone(&cache) as Arc<dyn CacheStore>
            )))
            .with_idempotency(Arc::clone(&idempotency) as _)
            .with_audit(Arc::clone(&audit) as _, Arc::new(clock.clone()))
            .build();
        let dispatcher = Dispatcher::builder()
            .middleware(chain)
            .command::<WriteNotes>(handlers.clone())
            .command::<WriteSlowly>(handlers.clone())
            .command::<WriteAndNest>(handlers.clone())
            .command::<WriteIndependently>(handlers.clone())
            .command::<WriteSiblings>(handlers.clone())
            .command::<WriteWithHooks>(handlers.clone())
            .command::<EditNote>(handlers.clone())
            .command::<EditIndependently>(handlers.clone())
            .command::<EditTwice>(handlers.clone())
            .command::<WriteThenCount>(handlers.clone())
            .command::<WriteFromSpawnedTask>(handlers.clone())
            .command::<UsePoolInside>(handlers.clone())
            .command::<WriteOnTwoDatabases>(handlers.clone())
            .command::<WriteOnOtherDatabaseAlone>(handlers.clone())
            .command::<HoldUnitOfWork>(handlers.clone())
            .command::<PrepareOutside>(handlers.clone())
            .idempotent_command::<WriteNoteOnce>(handlers.clone(), KeyRequirement::Optional)
            .idempotent_command::<WriteNoteWithKey>(handlers.clone(), KeyRequirement::Required)
            .query::<CountNotes>(handlers.clone())
            .query::<ReadNote>(handlers)
            .build();
        Self {
            dispatcher,
            notes: SeaOrmNotes::new(database.clone()),
            other_notes: other.map(SeaOrmNotes::new),
            outbox: SeaOrmOutbox::new(database.clone()),
            database,
            cache,
            idempotency,
            clock,
            audit,
            probes,
        }
    }

    /// Runs `command` for an anonymous caller with no key.
    ///
    /// # Errors
    /// What the use case answers.
    pub async fn run<C: Command>(&self, command: C) -> Result<C::Output, AppError> {
        self.dispatcher
            .execute(&RequestContext::background(), command)
            .await
    }

    /// Asks `query` for an anonymous caller.
    ///
    /// # Errors
    /// What the use case answers.
    pub async fn ask<Q: Query>(&self, query: Q) -> Result<Q::Output, AppError> {
        self.dispatcher
            .ask(&RequestContext::background(), query)
            .await
    }

    /// How many notes say `text`, committed.
    ///
    /// # Panics
    /// When the table cannot be read.
    pub async fn count_saying(&self, text: &str) -> u64 {
        self.notes.count_saying(text).await.expect("notes read")
    }

    /// Whether exactly one committed note says `text`.
    pub async fn exists(&self, text: &str) -> bool {
        self.count_saying(text).await == 1
    }
}

/// A request from the signed-in user `subject`, carrying `key`.
#[must_use]
pub fn user_request(subject: &str, key: &str) -> RequestContext {
    RequestContext::background()
        .with_principal(Principal::new(subject, PrincipalKind::User))
        .with_idempotency_key(key)
}

async fn open(url: &str, options: &DatabaseOptions) -> Database {
    let database = Database::connect_with(url, options)
        .await
        .expect("open the test database");
    notes::migrate(&database)
        .await
        .expect("migrate the test database");
    database
}
