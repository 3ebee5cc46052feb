//! Breaker states, their persisted names, and the closed table of legal transitions.
//!
//! The names (`closed|open|half_open|forced_open|disabled`) are stored in DynamoDB and read by
//! every instance and dashboard: they never change and never come from `Debug`.

use std::fmt;
use std::str::FromStr;

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Calls flow; outcomes are counted and may trip the breaker.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// A limited number of probe calls decide between closing and reopening.
    HalfOpen,
    /// An operator refuses all calls until told otherwise.
    ForcedOpen,
    /// Calls flow and outcomes are counted (metrics only); it never trips.
    Disabled,
}

impl State {
    /// Every state.
    pub const ALL: [State; 5] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::ForcedOpen,
        Self::Disabled,
    ];

    /// The persisted name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored state name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown breaker state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A transition not in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal breaker transition {from} -> {to}")]
pub struct IllegalTransition {
    /// The current state.
    pub from: State,
    /// The refused target.
    pub to: State,
}

/// Every legal `from → to` pair; anything else is refused.
///
/// `HalfOpen → HalfOpen` renews a probe round whose permits expired (a probe holder died), so a
/// lost probe never wedges the breaker. `Open → Closed` is an operator reset; operators may also switch directly between
/// `ForcedOpen` and `Disabled`.
pub const TRANSITIONS: [(State, State); 16] = {
    use State::*;
    [
        (Closed, Open),
        (Closed, ForcedOpen),
        (Closed, Disabled),
        (Open, HalfOpen),
        (Open, Closed),
        (Open, ForcedOpen),
        (Open, Disabled),
        (HalfOpen, Closed),
        (HalfOpen, Open),
        (HalfOpen, HalfOpen),
        (HalfOpen, ForcedOpen),
        (HalfOpen, Disabled),
        (ForcedOpen, Closed),
        (ForcedOpen, Disabled),
        (Disabled, Closed),
        (Disabled, ForcedOpen),
    ]
};

/// Checks `from → to` against [`TRANSITIONS`].
///
/// # Errors
/// [`IllegalTransition`] for any pair not listed.
pub fn check_transition(from: State, to: State) -> Result<(), IllegalTransition> {
    if TRANSITIONS.contains(&(from, to)) {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_names_round_trip_and_are_exactly_the_documented_ones() {
        let names: Vec<_> = State::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["closed", "open", "half_open", "forced_open", "disabled"]);
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert_eq!("Open".parse::<State>(), Err(UnknownState("Open".into())));
    }

    #[test]
    fn transition_table_refuses_every_unlisted_pair() {
        let mut legal = 0;
        for from in State::ALL {
            for to in State::ALL {
                if check_transition(from, to).is_ok() {
                    legal += 1;
                }
            }
        }
        assert_eq!(legal, TRANSITIONS.len());
        for (from, to) in [
            (State::Closed, State::HalfOpen),
            (State::Closed, State::Closed),
            (State::Open, State::Open),
            (State::ForcedOpen, State::Open),
            (State::ForcedOpen, State::HalfOpen),
            (State::Disabled, State::Open),
            (State::Disabled, State::HalfOpen),
        ] {
            assert_eq!(check_transition(from, to), Err(IllegalTransition { from, to }));
        }
    }

    #[test]
    fn operators_can_always_reach_forced_open_disabled_and_back_to_closed() {
        for from in [State::Closed, State::Open, State::HalfOpen] {
            assert!(check_transition(from, State::ForcedOpen).is_ok());
            assert!(check_transition(from, State::Disabled).is_ok());
        }
        assert!(check_transition(State::ForcedOpen, State::Closed).is_ok());
        assert!(check_transition(State::Disabled, State::Closed).is_ok());
    }
}
