//! Integration tests of the client plumbing against the real native cluster: the secure
//! round trip, the topic's durability settings, and the ACL / authentication smoke checks.
mod helpers;
mod round_trip;
mod security;
