//! Distributed transactions: the [`Coordinator`] of TCC transactions and
//! sagas (tables in the initiating service's database, driven by the
//! initiator and finished by a recovery pass on any instance), the branch
//! [`HttpBranchTransport`], and the participants' [`SeaOrmTccBarrier`].
//!
//! States and barrier decisions are those of `docs/decisions/0016-tcc.md`.

mod barrier;
mod coordinator;
mod migration;
mod transport;

pub use barrier::{SeaOrmTccBarrier, decide};
pub use coordinator::{
    Alert, BranchSpec, BranchView, Coordinator, Faults, NoFaults, Outcome, Phase, TccError,
    TccSettings, TransactionCounts, TransactionState, TransactionView,
};
pub(crate) use migration::CreateTccTables;
pub use transport::{
    BRANCH_HEADER, BranchAnswer, BranchCall, BranchTransport, DEADLINE_HEADER, GID_HEADER,
    HttpBranchTransport, OP_HEADER, TokenSource,
};
