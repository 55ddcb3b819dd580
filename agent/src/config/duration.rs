//! Durations written with units ("250ms", "30s", "1h").

use std::time::Duration;

use serde::Deserialize;

/// The longest duration a config file may hold. Durations are added to monotonic
/// instants (`now + election_timeout`, a drain's end, a hook's deadline), and an
/// `Instant` plus an absurd duration overflows, which would abort the agent at start or
/// at the first timer instead of refusing the file. Ten years is beyond any sensible
/// value and far from that limit, even multiplied by the small factors the core applies.
/// (A year of 365.25 days, as humantime reads "10years".)
pub const MAX: Duration = Duration::from_secs(10 * 31_557_600);

/// A duration parsed from a string with units. Bare numbers are refused: "is 5 seconds or
/// milliseconds?" is not a question a config file should leave open; so is anything over
/// `MAX` (ten years), at parse time, so the error names the key's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let d = humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (write it like \"250ms\" or \"30s\")"
            ))
        })?;
        if d > MAX {
            return Err(serde::de::Error::custom(format!(
                "duration {s:?} is too long: at most 10 years (the agent adds durations to its clock readings)"
            )));
        }
        Ok(Dur(d))
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
