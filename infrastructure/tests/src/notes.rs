//! A small aggregate with a table, a migration and a repository built the way
//! every Strata repository is: the subject of the property suites.

use async_trait::async_trait;
use sea_orm::entity::prelude::*;
use sea_orm::{PaginatorTrait, QueryFilter, Set};
use sea_orm_migration::prelude::{
    DeriveIden, DeriveMigrationName, MigrationTrait, MigratorTrait, SchemaManager, Table,
};
use sea_orm_migration::schema::{big_integer, pk_uuid, string_len};
use serde::Serialize;
use strata_domain::{
    AggregateRoot, AggregateState, DomainEvent, Entity, EventEnvelope, Id, Repository,
    RepositoryError, Version,
};
use strata_infrastructure::{Database, migrate_up, save_versioned, storage_error};

/// A note: a line of text, edited with optimistic concurrency.
#[derive(Debug, Clone)]
pub struct Note {
    id: Id<Note>,
    text: String,
    state: AggregateState<NoteEvent>,
}

/// What happens to a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NoteEvent {
    /// It was written.
    Written {
        /// Its text.
        text: String,
    },
    /// Its text changed.
    Edited {
        /// The new text.
        text: String,
    },
}

impl DomainEvent for NoteEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Written { .. } => "notes.note_written",
            Self::Edited { .. } => "notes.note_edited",
        }
    }
}

impl Note {
    /// A new note saying `text`.
    #[must_use]
    pub fn write(text: &str) -> Self {
        let mut note = Self {
            id: Id::generate(),
            text: text.to_owned(),
            state: AggregateState::new(),
        };
        note.record(NoteEvent::Written {
            text: text.to_owned(),
        });
        note
    }

    /// Changes its text.
    pub fn edit(&mut self, text: &str) {
        text.clone_into(&mut self.text);
        self.record(NoteEvent::Edited {
            text: text.to_owned(),
        });
    }

    /// Its text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Entity for Note {
    type Id = Id<Note>;

    fn id(&self) -> Self::Id {
        self.id
    }
}

impl AggregateRoot for Note {
    type Event = NoteEvent;
    const KIND: &'static str = "note";

    fn state(&self) -> &AggregateState<NoteEvent> {
        &self.state
    }

    fn state_mut(&mut self) -> &mut AggregateState<NoteEvent> {
        &mut self.state
    }
}

mod row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub text: String,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(DeriveMigrationName)]
struct CreateNotes;

#[async_trait]
impl MigrationTrait for CreateNotes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notes::Table)
                    .col(pk_uuid(Notes::Id))
                    .col(string_len(Notes::Text, 200))
                    .col(big_integer(Notes::Version))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Notes {
    Table,
    Id,
    Text,
    Version,
}

/// The notes table, after Strata's own.
#[derive(Debug)]
pub struct NotesMigrator;

#[async_trait]
impl MigratorTrait for NotesMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateNotes)]
    }
}

/// Brings `database` to the notes schema, Strata's tables included.
///
/// # Errors
/// When a migration fails.
pub async fn migrate(database: &Database) -> Result<(), DbErr> {
    migrate_up::<NotesMigrator>(database).await
}

/// Notes in one database, written through its unit of work.
#[derive(Debug, Clone)]
pub struct SeaOrmNotes {
    database: Database,
}

impl SeaOrmNotes {
    /// Notes in `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// How many notes say `text`, as this task sees them (inside its unit of
    /// work, or committed).
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn count_saying(&self, text: &str) -> Result<u64, RepositoryError> {
        let session = self.database.reader().await?;
        let count = row::Entity::find()
            .filter(row::Column::Text.eq(text))
            .count(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(count)
    }

    /// How many notes there are, as this task sees them.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn count(&self) -> Result<u64, RepositoryError> {
        let session = self.database.reader().await?;
        let count = row::Entity::find()
            .count(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(count)
    }

    /// How many notes say `text`, counted twice on one read session with
    /// `between` run after the first count: what a read of several statements
    /// sees of a commit made while it runs.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn count_saying_around(
        &self,
        text: &str,
        between: impl Future<Output = ()>,
    ) -> Result<(u64, u64), RepositoryError> {
        let session = self.database.reader().await?;
        let saying = || row::Entity::find().filter(row::Column::Text.eq(text));
        let before = saying().count(&session).await.map_err(storage_error)?;
        between.await;
        let after = saying().count(&session).await.map_err(storage_error)?;
        session.finish().await?;
        Ok((before, after))
    }

    /// Records an event on a read session, as a write's session would.
    ///
    /// # Errors
    /// What finishing the session answers.
    pub async fn record_while_reading(&self, text: &str) -> Result<(), RepositoryError> {
        let mut session = self.database.reader().await?;
        let mut note = Note::write(text);
        session.record(EventEnvelope::take_from(&mut note).map_err(RepositoryError::storage)?);
        session.finish().await
    }

    /// Writes `first` through a write session and, while holding it, saves
    /// `second` through the repository: as a repository does that writes
    /// through another one.
    ///
    /// # Errors
    /// What the database answers.
    pub async fn write_while_writing(
        &self,
        first: &str,
        second: &mut Note,
    ) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        row::ActiveModel {
            id: Set(Uuid::now_v7()),
            text: Set(first.to_owned()),
            version: Set(1),
        }
        .insert(&session)
        .await
        .map_err(storage_error)?;
        self.save(second).await?;
        session.finish().await
    }

    /// Writes a note saying `text` through a session it should not write on:
    /// for the tests that show such a write cannot be kept.
    ///
    /// # Errors
    /// What the database answers.
    pub async fn insert_while_reading(&self, text: &str) -> Result<(), RepositoryError> {
        let session = self.database.reader().await?;
        row::ActiveModel {
            id: Set(Uuid::now_v7()),
            text: Set(text.to_owned()),
            version: Set(1),
        }
        .insert(&session)
        .await
        .map_err(storage_error)?;
        session.finish().await
    }
}

#[async_trait]
impl Repository<Note> for SeaOrmNotes {
    async fn find(&self, id: Id<Note>) -> Result<Option<Note>, RepositoryError> {
        let session = self.database.reader().await?;
        let found = row::Entity::find_by_id(id.as_uuid())
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(found.map(|row| Note {
            id: Id::from_uuid(row.id),
            text: row.text,
            state: AggregateState::loaded(Version::new(u64::try_from(row.version).unwrap_or(0))),
        }))
    }

    async fn save(&self, note: &mut Note) -> Result<(), RepositoryError> {
        let (id, text) = (note.id.as_uuid(), note.text.clone());
        save_versioned(
            &self.database,
            note,
            id,
            (row::Column::Id, row::Column::Version),
            &[("id", "id")],
            move |version| row::ActiveModel {
                id: Set(id),
                text: Set(text),
                version: Set(version),
            },
        )
        .await
    }
}
