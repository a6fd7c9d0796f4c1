//! mua
