//! The service's black-box, persistence and architecture suites, in one test
//! binary so they link once.

// The futures of a whole service under test nest deeper than the compiler's
// default limit allows once the database driver supports every engine.
#![recursion_limit = "256"]

mod service {
    mod api;
    mod architecture;
    mod openapi;
    mod operability;
    mod persistence;
    mod web;
}
