//! Integration tests of the security suite against the native cluster and the Firestore
//! emulator that `make test` starts.
mod secure_defaults;
mod suite;
