//! mailstore
