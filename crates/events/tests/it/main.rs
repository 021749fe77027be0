//! The wire contract's tests: golden samples, a table of bad inputs, and property tests.
mod bad_inputs;
mod golden;
mod helpers;
mod roundtrip;
