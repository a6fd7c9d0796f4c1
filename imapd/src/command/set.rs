//! Sequence sets (RFC 3501 §9 `sequence-set`): message numbers or UIDs
//! as the client wrote them, resolved against a mailbox view later.

/// A sequence-set element bound: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    /// A message sequence number or UID.
    Value(u32),
    /// `*`: the largest number in use.
    Star,
}

/// One `a:b` (or single `a`) range of a sequence set; bounds may be reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// First bound as written.
    pub start: SeqNum,
    /// Second bound as written (equal to `start` for a single number).
    pub end: SeqNum,
}

/// RFC 3501 `sequence-set`: a comma-separated list of ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(pub Vec<SeqRange>);

impl SequenceSet {
    /// Resolve against `max` (the value `*` stands for) into inclusive
    /// `(low, high)` ranges. With `max == 0`, `*` resolves to 0.
    pub fn resolve(&self, max: u32) -> Vec<(u32, u32)> {
        self.0
            .iter()
            .map(|r| {
                let a = match r.start {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => max,
                };
                let b = match r.end {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => max,
                };
                (a.min(b), a.max(b))
            })
            .collect()
    }

    /// Like [`SequenceSet::resolve`], but sorted and with overlapping or
    /// adjacent ranges merged, so callers can walk them in one pass.
    pub fn merged(&self, max: u32) -> Vec<(u32, u32)> {
        let mut r = self.resolve(max);
        r.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
        for (a, b) in r {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }

    /// True if `n` lies in the set (with `*` meaning `max`).
    pub fn contains(&self, n: u32, max: u32) -> bool {
        self.resolve(max).iter().any(|&(a, b)| a <= n && n <= b)
    }

    /// `$`, the saved search result (RFC 5182 §2.1, `seq-last-command`).
    /// Written as a set with no ranges, which the grammar never yields
    /// otherwise; the selection substitutes the saved messages
    /// (`Selection::resolve`), and anything that does not names nothing.
    pub fn saved() -> SequenceSet {
        SequenceSet(Vec::new())
    }

    /// Is this `$` (see [`SequenceSet::saved`])?
    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }
}
