//! The promises of `strata-infrastructure`, in one test binary so it links once.

mod infrastructure {
    mod audit;
    mod bus;
    mod cache;
    mod idempotency;
    mod invalidation;
    mod outbox;
    mod tcc;
    mod unit_of_work;
}
