//! protocol-tests
