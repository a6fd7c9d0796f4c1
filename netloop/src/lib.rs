//! netloop
