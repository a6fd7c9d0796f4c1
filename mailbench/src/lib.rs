//! mailbench
