//! `Reader` queries for selected-mailbox work: message metadata for FETCH
//! (RFC 3501 §6.4.5), raw bytes via blob I/O, and CONDSTORE/QRESYNC-style
//! changes since a modseq (RFC 7162).
